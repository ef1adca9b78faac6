package vdso

import (
	"encoding/binary"
	"fmt"
	"os"
	"strings"
	"testing"
)

// selfVDSO reads this process's own vDSO.
func selfVDSO(t *testing.T) []byte {
	t.Helper()
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(maps), "\n") {
		if !strings.HasSuffix(l, "[vdso]") {
			continue
		}
		var start, end uint64
		if _, err := fmt.Sscanf(l, "%x-%x", &start, &end); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open("/proc/self/mem")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		b := make([]byte, end-start)
		if _, err := f.ReadAt(b, int64(start)); err != nil {
			t.Fatal(err)
		}
		return b
	}
	t.Skip("no [vdso]")
	return nil
}

func TestParseOwnVDSO(t *testing.T) {
	im, err := Parse(selfVDSO(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"__vdso_clock_gettime", "__vdso_gettimeofday", "__vdso_time", "__vdso_getcpu"} {
		if _, ok := im.Symbols[want]; !ok {
			t.Errorf("no %s in %v", want, im.Names())
		}
	}
	if !Same(im, im) {
		t.Error("an image differs from itself")
	}
}

func TestTrampolines(t *testing.T) {
	old := &Image{Size: 8192, Symbols: map[string]uint64{"a": 0x100, "b": 0x200}}
	near := &Image{Size: 8192, Symbols: map[string]uint64{"a": 0x300, "b": 0x400}}
	ps, err := Trampolines(old, near, 0x7f0000000000, 0x7f0000100000)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if p.Code[0] != 0xe9 {
			t.Fatalf("near jump not rel32: % x", p.Code)
		}
		src := 0x7f0000000000 + p.Off
		rel := int32(binary.LittleEndian.Uint32(p.Code[1:]))
		dst := uint64(int64(src+5) + int64(rel))
		want := map[uint64]uint64{0x100: 0x7f0000100300, 0x200: 0x7f0000100400}[p.Off]
		if dst != want {
			t.Errorf("jump from %#x lands at %#x, want %#x", src, dst, want)
		}
	}
	far, err := Trampolines(old, near, 0x10000, 0x7f0000100000)
	if err != nil {
		t.Fatal(err)
	}
	if far[0].Code[0] != 0x48 || binary.LittleEndian.Uint64(far[0].Code[2:]) != 0x7f0000100300 {
		t.Errorf("far jump: % x", far[0].Code)
	}
	if _, err := Trampolines(old, &Image{Symbols: map[string]uint64{"a": 1}}, 0, 0); err == nil || !strings.Contains(err.Error(), "no b") {
		t.Errorf("missing symbol: %v", err)
	}
	if Same(old, near) {
		t.Error("different offsets reported the same")
	}
}
