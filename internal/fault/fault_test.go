package fault

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	t.Setenv(Env, " vdso-trampolines, vdso-drop=__vdso_getcpu,vdso-drop=getcpu,clocks-behind=90m")
	if err := Check(); err != nil {
		t.Fatal(err)
	}
	if !On(VDSOTrampolines) || On(VDSODrop) || On("vdso") {
		t.Error("On")
	}
	if got := Values(VDSODrop); !slices.Equal(got, []string{"__vdso_getcpu", "getcpu"}) {
		t.Errorf("Values(vdso-drop) = %q", got)
	}
	if d, err := Behind(); err != nil || d != 90*time.Minute {
		t.Errorf("Behind() = %v, %v", d, err)
	}
}

func TestEmpty(t *testing.T) {
	t.Setenv(Env, "")
	if err := Check(); err != nil || On(VDSOTrampolines) || len(Values(VDSODrop)) != 0 {
		t.Errorf("empty CKPT_FAULT: %v", err)
	}
	if d, err := Behind(); d != 0 || err != nil {
		t.Errorf("Behind() = %v, %v", d, err)
	}
}

func TestCheckRefuses(t *testing.T) {
	for env, want := range map[string]string{
		"vdso-trampoline":    "unknown fault",
		"vdso-drop":          "needs a value",
		"vdso-trampolines=1": "takes no value",
		"clocks-behind=1x":   "clocks-behind=1x",
	} {
		t.Setenv(Env, env)
		if err := Check(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CKPT_FAULT=%s: %v, want %q", env, err, want)
		}
	}
}
