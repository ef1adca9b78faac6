package kerndat

import (
	"debug/elf"
	"encoding/binary"
)

// ia32ExitCode is what the tiny ia32 program exits with.
const ia32ExitCode = 42

// tinyELF32 returns a minimal static ELF32 EM_386 executable that calls
// exit(42) with int $0x80: an ELF header, one PT_LOAD program header
// mapping the whole file at 0x08048000, and 12 bytes of code. Layouts are
// Elf32_Ehdr and Elf32_Phdr of the System V ABI (include/uapi/linux/elf.h).
func tinyELF32() []byte {
	const (
		base    = 0x08048000
		ehsize  = 52
		phsize  = 32
		codeOff = ehsize + phsize
	)
	code := []byte{
		0xb8, 0x01, 0x00, 0x00, 0x00, // mov $1, %eax (__NR_exit)
		0xbb, ia32ExitCode, 0x00, 0x00, 0x00, // mov $42, %ebx
		0xcd, 0x80, // int $0x80
	}
	b := make([]byte, codeOff+len(code))
	le := binary.LittleEndian
	copy(b, elf.ELFMAG)
	b[elf.EI_CLASS] = byte(elf.ELFCLASS32)
	b[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	b[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	b[elf.EI_OSABI] = byte(elf.ELFOSABI_NONE)
	le.PutUint16(b[16:], uint16(elf.ET_EXEC))
	le.PutUint16(b[18:], uint16(elf.EM_386))
	le.PutUint32(b[20:], uint32(elf.EV_CURRENT))
	le.PutUint32(b[24:], base+codeOff) // e_entry
	le.PutUint32(b[28:], ehsize)       // e_phoff
	le.PutUint32(b[32:], 0)            // e_shoff
	le.PutUint32(b[36:], 0)            // e_flags
	le.PutUint16(b[40:], ehsize)       // e_ehsize
	le.PutUint16(b[42:], phsize)       // e_phentsize
	le.PutUint16(b[44:], 1)            // e_phnum
	le.PutUint16(b[46:], 0)            // e_shentsize
	le.PutUint16(b[48:], 0)            // e_shnum
	le.PutUint16(b[50:], 0)            // e_shstrndx
	ph := b[ehsize:]
	le.PutUint32(ph[0:], uint32(elf.PT_LOAD))
	le.PutUint32(ph[4:], 0)                          // p_offset
	le.PutUint32(ph[8:], base)                       // p_vaddr
	le.PutUint32(ph[12:], base)                      // p_paddr
	le.PutUint32(ph[16:], uint32(len(b)))            // p_filesz
	le.PutUint32(ph[20:], uint32(len(b)))            // p_memsz
	le.PutUint32(ph[24:], uint32(elf.PF_R|elf.PF_X)) // p_flags
	le.PutUint32(ph[28:], 0x1000)                    // p_align
	copy(b[codeOff:], code)
	return b
}
