//go:build linux && amd64

package x86

import (
	"debug/elf"
	"errors"
	"fmt"
	"io"
)

// ABI is what kind of x86 program an executable is.
type ABI int

// Executable ABIs.
const (
	ABIUnknown ABI = iota
	ABI64          // ELFCLASS64, EM_X86_64
	ABI32          // ELFCLASS32, EM_386 (ia32, runs in compat mode)
	ABIX32         // ELFCLASS32, EM_X86_64 (x32: 64-bit mode, 32-bit pointers)
)

func (a ABI) String() string {
	return [...]string{"unknown", "x86_64", "ia32", "x32"}[a]
}

// ErrX32 is returned for x32 executables, which ckpt does not support.
var ErrX32 = errors.New("x32 tasks are not supported: ckpt handles x86_64 and ia32 programs only; rebuild the program for -m64 or -m32")

// ExecutableABI reads the ELF header of an executable and tells its ABI.
func ExecutableABI(r io.ReaderAt) (ABI, error) {
	f, err := elf.NewFile(r)
	if err != nil {
		return ABIUnknown, fmt.Errorf("read ELF header: %w", err)
	}
	switch {
	case f.Class == elf.ELFCLASS64 && f.Machine == elf.EM_X86_64:
		return ABI64, nil
	case f.Class == elf.ELFCLASS32 && f.Machine == elf.EM_386:
		return ABI32, nil
	case f.Class == elf.ELFCLASS32 && f.Machine == elf.EM_X86_64:
		return ABIX32, nil
	}
	return ABIUnknown, fmt.Errorf("ELF %v %v is not an x86 program", f.Class, f.Machine)
}
