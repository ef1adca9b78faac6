package vdso

import (
	"encoding/binary"
	"testing"
)

// selfVDSO reads this process's own vDSO.
func selfVDSO(t *testing.T) []byte {
	t.Helper()
	b, err := Own()
	if err != nil {
		t.Fatal(err)
	}
	return b
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
	ps, missing := Trampolines(old, near, 0x7f0000000000, 0x7f0000100000)
	if len(missing) != 0 || len(ps) != 2 {
		t.Fatalf("%d patches, missing %v", len(ps), missing)
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
	far, _ := Trampolines(old, near, 0x10000, 0x7f0000100000)
	if far[0].Code[0] != 0x48 || binary.LittleEndian.Uint64(far[0].Code[2:]) != 0x7f0000100300 {
		t.Errorf("far jump: % x", far[0].Code)
	}
	if ps, missing := Trampolines(old, &Image{Symbols: map[string]uint64{"a": 1}}, 0, 0); len(ps) != 1 || len(missing) != 1 || missing[0] != "b" {
		t.Errorf("missing symbol: %d patches, missing %v", len(ps), missing)
	}
	// An alias at the offset of a symbol the new image has is covered.
	aliased := &Image{Size: 8192, Symbols: map[string]uint64{"a": 0x100, "__vdso_a": 0x100, "c": 0x300}}
	if ps, missing := Trampolines(aliased, &Image{Symbols: map[string]uint64{"__vdso_a": 0x40}}, 0x1000, 0x2000); len(ps) != 1 || len(missing) != 1 || missing[0] != "c" {
		t.Errorf("alias: %d patches, missing %v", len(ps), missing)
	}
	if Same(old, near) {
		t.Error("different offsets reported the same")
	}
}

func TestHideSymbols(t *testing.T) {
	b := selfVDSO(t)
	im, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	names := im.Names()
	if len(names) < 2 {
		t.Fatalf("own vDSO exports %v", names)
	}
	hidden := names[0]
	cp := append([]byte(nil), b...)
	if err := HideSymbols(cp, []string{hidden}); err != nil {
		t.Fatal(err)
	}
	after, err := Parse(cp)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := after.Symbols[hidden]; ok {
		t.Errorf("%s still defined after HideSymbols", hidden)
	}
	if len(after.Symbols) != len(im.Symbols)-1 {
		t.Errorf("%d symbols left of %d, want one fewer", len(after.Symbols), len(im.Symbols))
	}
	if err := HideSymbols(cp, []string{"no_such_symbol"}); err == nil {
		t.Error("hiding an unknown symbol succeeded")
	}
}
