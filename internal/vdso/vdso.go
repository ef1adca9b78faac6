// Package vdso reads the symbol tables of vDSO images (with debug/elf) and
// builds the trampolines that let a restored task keep calling the entry
// points of the vDSO it was dumped with when the running kernel's vDSO
// differs: every exported entry of the old image jumps to the same symbol
// of the new one.
package vdso

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"sort"
)

// Image is a parsed vDSO.
type Image struct {
	Size    int
	Class   elf.Class
	Symbols map[string]uint64 // exported function -> offset in the image
}

// Parse reads the dynamic symbols of a vDSO image.
func Parse(b []byte) (*Image, error) {
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("vDSO ELF: %w", err)
	}
	defer f.Close()
	// Symbol values are addresses in the image's link layout; the image
	// starts at the vaddr of its first PT_LOAD (0 on x86).
	base := uint64(0)
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD {
			base = p.Vaddr - p.Off
			break
		}
	}
	syms, err := f.DynamicSymbols()
	if err != nil {
		return nil, fmt.Errorf("vDSO symbols: %w", err)
	}
	im := &Image{Size: len(b), Class: f.Class, Symbols: map[string]uint64{}}
	for _, s := range syms {
		if elf.ST_TYPE(s.Info) != elf.STT_FUNC || s.Section == elf.SHN_UNDEF {
			continue
		}
		if b := elf.ST_BIND(s.Info); b != elf.STB_GLOBAL && b != elf.STB_WEAK {
			continue
		}
		im.Symbols[s.Name] = s.Value - base
	}
	return im, nil
}

// Names returns the exported symbols, sorted.
func (im *Image) Names() []string {
	out := make([]string, 0, len(im.Symbols))
	for n := range im.Symbols {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Same reports whether two images export the same symbols at the same
// offsets and have the same size: then the old entry points are valid in
// the new image mapped at the old address.
func Same(a, b *Image) bool {
	if a.Size != b.Size || len(a.Symbols) != len(b.Symbols) {
		return false
	}
	for n, off := range a.Symbols {
		if o, ok := b.Symbols[n]; !ok || o != off {
			return false
		}
	}
	return true
}

// Patch is bytes to write at an offset of the old image.
type Patch struct {
	Off  uint64
	Code []byte
}

// Trampolines returns, for every symbol of old, a jump from its entry in
// the old image (mapped at oldBase) to the same symbol of the new image
// (mapped at newBase). A symbol the new image lacks is an error naming it.
func Trampolines(old, new *Image, oldBase, newBase uint64) ([]Patch, error) {
	var out []Patch
	for _, name := range old.Names() {
		off := old.Symbols[name]
		noff, ok := new.Symbols[name]
		if !ok {
			return nil, fmt.Errorf("the vDSO of this kernel has no %s, which the dumped task's vDSO exported", name)
		}
		src := oldBase + off
		dst := newBase + noff
		out = append(out, Patch{Off: off, Code: jump(src, dst, old.Class == elf.ELFCLASS32)})
	}
	return out, nil
}

// jump encodes a jump from src to dst: jmp rel32 (e9) when it reaches,
// which it always does in 32-bit code, else movabs $dst,%rax; jmp *%rax
// (rax is not an argument register of any vDSO function).
func jump(src, dst uint64, is32 bool) []byte {
	rel := int64(dst) - int64(src+5)
	if is32 || (rel >= -1<<31 && rel < 1<<31) {
		b := []byte{0xe9, 0, 0, 0, 0}
		binary.LittleEndian.PutUint32(b[1:], uint32(int32(rel)))
		return b
	}
	b := []byte{0x48, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xe0}
	binary.LittleEndian.PutUint64(b[2:], dst)
	return b
}
