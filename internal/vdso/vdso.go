//go:build linux && amd64

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
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
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

// Trampolines returns, for every symbol of old that new has, a jump from
// its entry in the old image (mapped at oldBase) to the same symbol of the
// new image (mapped at newBase). Missing lists the symbols of old that new
// lacks, but for aliases: a name whose entry is also the entry of a symbol
// new has is covered by that symbol's jump.
func Trampolines(old, new *Image, oldBase, newBase uint64) (patches []Patch, missing []string) {
	covered := map[uint64]bool{}
	for _, name := range old.Names() {
		off := old.Symbols[name]
		noff, ok := new.Symbols[name]
		if !ok {
			continue
		}
		covered[off] = true
		patches = append(patches, Patch{Off: off, Code: jump(oldBase+off, newBase+noff, old.Class == elf.ELFCLASS32)})
	}
	for _, name := range old.Names() {
		if _, ok := new.Symbols[name]; !ok && !covered[old.Symbols[name]] {
			missing = append(missing, name)
		}
	}
	return patches, missing
}

// Trap is the code put at the entry of a symbol the new vDSO lacks and
// nothing refers to: ud2, so that a call faults at once instead of
// running the old code against vvar pages that are gone.
var Trap = []byte{0x0f, 0x0b}

// HideSymbols marks the named dynamic symbols of the ELF image b as
// undefined (st_shndx = SHN_UNDEF), in place, so that a program that
// looks them up in the image later (glibc, the Go runtime) finds them
// absent and falls back to the system call.
func HideSymbols(b []byte, names []string) error {
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("vDSO ELF: %w", err)
	}
	defer f.Close()
	ds := f.SectionByType(elf.SHT_DYNSYM)
	if ds == nil {
		return fmt.Errorf("vDSO ELF: no .dynsym")
	}
	syms, err := f.DynamicSymbols()
	if err != nil {
		return fmt.Errorf("vDSO symbols: %w", err)
	}
	// Elf64_Sym is 24 bytes with st_shndx at 6; Elf32_Sym is 16 bytes
	// with st_shndx at 14 (<elf.h>).
	entSize, shndxOff := uint64(24), uint64(6)
	if f.Class == elf.ELFCLASS32 {
		entSize, shndxOff = 16, 14
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	for i, s := range syms {
		if !want[s.Name] {
			continue
		}
		// DynamicSymbols leaves out the null symbol at index 0.
		at := ds.Offset + uint64(i+1)*entSize + shndxOff
		if at+2 > uint64(len(b)) {
			return fmt.Errorf("vDSO ELF: symbol %s lies outside the image", s.Name)
		}
		f.ByteOrder.PutUint16(b[at:], uint16(elf.SHN_UNDEF))
		delete(want, s.Name)
	}
	for n := range want {
		return fmt.Errorf("vDSO ELF: no symbol %s to hide", n)
	}
	return nil
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

// Own returns the image of this process's own vDSO, read through
// /proc/self/mem.
func Own() ([]byte, error) {
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return nil, err
	}
	for _, l := range strings.Split(string(maps), "\n") {
		if !strings.HasSuffix(l, "[vdso]") {
			continue
		}
		var start, end uint64
		if _, err := fmt.Sscanf(l, "%x-%x", &start, &end); err != nil {
			return nil, fmt.Errorf("maps line %q: %w", l, err)
		}
		f, err := os.Open("/proc/self/mem")
		if err != nil {
			return nil, err
		}
		defer f.Close()
		b := make([]byte, end-start)
		if _, err := f.ReadAt(b, int64(start)); err != nil {
			return nil, fmt.Errorf("read the vDSO: %w", err)
		}
		return b, nil
	}
	return nil, errors.New("this process has no [vdso]")
}
