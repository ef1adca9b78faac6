package x86

import (
	"reflect"
	"testing"
)

func TestMissingInstructions(t *testing.T) {
	dumped := make([]uint32, NumCapWords)
	here := make([]uint32, NumCapWords)
	dumped[CapWord7EBX] = 1<<5 | 1<<16 // avx2, avx512f
	dumped[CapWord1ECX] = 1 << 28      // avx
	here[CapWord7EBX] = 1 << 5
	here[CapWord1ECX] = 1 << 28
	here[CapWord7ECX] = 1 << 9 // vaes: here only, no matter
	got := MissingInstructions(dumped, 0xe7, here, 0x7)
	want := []string{"avx512f", "xsave AVX-512 ZMM upper halves", "xsave AVX-512 ZMM16-31", "xsave AVX-512 opmask"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if m := MissingInstructions(dumped, 0x7, dumped, 0x7); len(m) != 0 {
		t.Errorf("same CPU: %q", m)
	}
	// A short capability list from an image is not an index error.
	if m := MissingInstructions(dumped, 0, here[:2], 0); len(m) != 3 {
		t.Errorf("short list here: %q", m)
	}
}
