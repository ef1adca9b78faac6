//go:build linux && amd64

package kerndat

import (
	"debug/elf"
	"encoding/binary"
)

// ia32ExitCode is what the tiny ia32 program exits with.
const ia32ExitCode = 42

// tinyELF32 returns a minimal static ELF32 EM_386 executable that calls
// exit(42) with int $0x80: an ELF header, one PT_LOAD program header
// mapping the whole file at 0x08048000, and 12 bytes of code. The headers
// are Elf32_Ehdr and Elf32_Phdr (include/uapi/linux/elf.h), as debug/elf
// declares them.
func tinyELF32() []byte {
	const base = 0x08048000
	ehsize := uint16(binary.Size(elf.Header32{}))
	phsize := uint16(binary.Size(elf.Prog32{}))
	codeOff := uint32(ehsize + phsize)
	code := []byte{
		0xb8, 0x01, 0x00, 0x00, 0x00, // mov $1, %eax (__NR_exit)
		0xbb, ia32ExitCode, 0x00, 0x00, 0x00, // mov $42, %ebx
		0xcd, 0x80, // int $0x80
	}
	size := codeOff + uint32(len(code))
	eh := elf.Header32{
		Type: uint16(elf.ET_EXEC), Machine: uint16(elf.EM_386), Version: uint32(elf.EV_CURRENT),
		Entry: base + codeOff, Phoff: uint32(ehsize), Ehsize: ehsize, Phentsize: phsize, Phnum: 1,
	}
	copy(eh.Ident[:], elf.ELFMAG)
	eh.Ident[elf.EI_CLASS] = byte(elf.ELFCLASS32)
	eh.Ident[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	eh.Ident[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	eh.Ident[elf.EI_OSABI] = byte(elf.ELFOSABI_NONE)
	ph := elf.Prog32{
		Type: uint32(elf.PT_LOAD), Vaddr: base, Paddr: base, Filesz: size, Memsz: size,
		Flags: uint32(elf.PF_R | elf.PF_X), Align: 0x1000,
	}
	b, err := binary.Append(nil, binary.LittleEndian, eh)
	if err == nil {
		b, err = binary.Append(b, binary.LittleEndian, ph)
	}
	if err != nil {
		panic(err) // fixed-size structs always encode
	}
	return append(b, code...)
}
