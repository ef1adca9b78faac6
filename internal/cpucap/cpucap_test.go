package cpucap

import "testing"

func TestValues(t *testing.T) {
	for _, v := range append([]string{""}, Values...) {
		if err := Check(v); err != nil {
			t.Errorf("Check(%q): %v", v, err)
		}
	}
	if err := Check("sse"); err == nil {
		t.Error("Check(sse) accepted it")
	}
	if Records(None) || !Records("") || !Records(FPU) {
		t.Error("Records")
	}
	if ComparesInstructions(FPU) || ComparesInstructions(None) || !ComparesInstructions("") || !ComparesInstructions(All) {
		t.Error("ComparesInstructions")
	}
}
