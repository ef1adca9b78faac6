package kerndat

import (
	"bytes"
	"debug/elf"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/internal/arch/x86"
)

func TestTinyELF32(t *testing.T) {
	b := tinyELF32()
	if len(b) != 52+2*32+12 { // Elf32_Ehdr, two Elf32_Phdr, the code
		t.Errorf("%d bytes", len(b))
	}
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if f.Class != elf.ELFCLASS32 || f.Machine != elf.EM_386 || f.Type != elf.ET_EXEC {
		t.Errorf("class %v machine %v type %v", f.Class, f.Machine, f.Type)
	}
	if len(f.Progs) != 2 || f.Progs[0].Type != elf.PT_LOAD || f.Progs[0].Filesz != uint64(len(b)) {
		t.Fatalf("program headers %+v", f.Progs)
	}
	// Without PT_GNU_STACK an ia32 exec sets READ_IMPLIES_EXEC.
	if s := f.Progs[1]; s.Type != elf.PT_GNU_STACK || s.Flags&elf.PF_X != 0 {
		t.Errorf("stack program header %+v", s.ProgHeader)
	}
	p := f.Progs[0]
	if f.Entry < p.Vaddr || f.Entry >= p.Vaddr+p.Memsz || p.Flags&elf.PF_X == 0 {
		t.Errorf("entry %#x outside the executable segment %#x+%#x", f.Entry, p.Vaddr, p.Memsz)
	}
	code := b[f.Entry-p.Vaddr:]
	if !bytes.HasSuffix(code, []byte{0xcd, 0x80}) || code[0] != 0xb8 || code[1] != 1 || code[6] != ia32ExitCode {
		t.Errorf("code % x", code)
	}
	if abi, err := x86.ExecutableABI(bytes.NewReader(b)); abi != x86.ABI32 || err != nil {
		t.Errorf("ExecutableABI: %v, %v", abi, err)
	}
}

func TestResultString(t *testing.T) {
	for _, tc := range []struct {
		r    Result
		want string
	}{
		{Result{Name: "ptrace seize/interrupt", OK: true}, "ok    ptrace seize/interrupt"},
		{Result{Name: "ia32 emulation", Detail: "32-bit exec refused"}, "FAIL  ia32 emulation: 32-bit exec refused"},
		{Result{Name: "kernel version", OK: true, Detail: "Linux 6.18"}, "ok    kernel version: Linux 6.18"},
	} {
		if got := tc.r.String(); got != tc.want {
			t.Errorf("%q, want %q", got, tc.want)
		}
	}
	if !RequiredOK([]Result{{OK: true, Required: true}, {OK: false, Required: false}}) {
		t.Error("RequiredOK false with only an optional failure")
	}
	if RequiredOK([]Result{{OK: true}, {OK: false, Required: true}}) {
		t.Error("RequiredOK true with a required failure")
	}
}

func TestCmdlineAndLogMatch(t *testing.T) {
	for _, s := range []string{
		"32-bit emulation disabled. You can reenable with ia32_emulation=on",
		"pvm-pv: IA-32 emulation off: the host runs 64-bit user code only",
	} {
		if !isIA32LogLine(s) {
			t.Errorf("%q not matched", s)
		}
	}
	if isIA32LogLine("x86/fpu: Supporting XSAVE feature 0x002: 'SSE registers'") {
		t.Error("unrelated line matched")
	}
}

func byName(rs []Result) map[string]Result {
	m := map[string]Result{}
	for _, r := range rs {
		m[r.Name] = r
	}
	return m
}

func TestProbe(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the probes need root")
	}
	start := time.Now()
	rs := Probe()
	took := time.Since(start)
	for _, r := range rs {
		t.Log(r)
	}
	t.Logf("probes took %v", took)
	m := byName(rs)
	if len(m) != len(rs) {
		t.Error("duplicate probe names")
	}
	for _, n := range []string{nameKernel, nameRoot, nameSysResource, nameSeize, nameRegs, nameInject, nameVMReadv,
		namePagemap, nameMapFiles, nameRseq, nameMMMap, nameClone3, nameTimeNS, nameCPU, nameVDSO64, nameIA32, nameVDSO32, nameCompat} {
		r, ok := m[n]
		if !ok {
			t.Errorf("no result for %s", n)
			continue
		}
		if !r.OK && r.Detail == "" {
			t.Errorf("%s failed without a reason", n)
		}
	}
	for _, n := range []string{nameRoot, nameSeize, nameRegs, nameInject, namePagemap, nameMapFiles, nameMMMap} {
		if !m[n].Required {
			t.Errorf("%s is not required", n)
		}
	}
	for _, n := range []string{nameIA32, nameVDSO32, nameCompat, nameSysResource, nameKernel, nameTimeNS, nameCPU} {
		if m[n].Required {
			t.Errorf("%s is required", n)
		}
	}
	if !RequiredOK(rs) {
		t.Error("a required probe failed as root")
	}
	// ia32: either it works, or all three ia32 probes fail and say why.
	ia := m[nameIA32]
	if !ia.OK {
		if strings.Contains(ia.Detail, "ENOEXEC") && !strings.Contains(ia.Detail, "compat (ia32) checkpoint/restore will not work") {
			t.Errorf("ia32 failure does not say what follows: %s", ia.Detail)
		}
		for _, n := range []string{nameVDSO32, nameCompat} {
			if m[n].OK {
				t.Errorf("%s ok although ia32 emulation fails", n)
			}
		}
	}
	// Every helper was reaped.
	var ws unix.WaitStatus
	if pid, err := unix.Wait4(-1, &ws, unix.WNOHANG|unix.WALL, nil); err != unix.ECHILD {
		t.Errorf("a child is left after the probes: wait4 = %d, %v", pid, err)
	}
	// Cached: the second call runs nothing and returns the same. A run
	// anew would not: the vDSO probes report where ASLR put the vDSO.
	again := Probe()
	if !reflect.DeepEqual(again, rs) {
		t.Errorf("second Probe differs from the first: %v", again)
	}
	again[0].Name = "changed"
	if Probe()[0].Name == "changed" {
		t.Error("the cache is shared with callers")
	}
}
