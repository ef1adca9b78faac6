//go:build linux && amd64

package x86

import (
	"debug/elf"
	"encoding/binary"
)

// ELF32Base is where TinyELF32 maps its one segment: the traditional
// load address of ia32 executables.
const ELF32Base = 0x08048000

// IA32PageOffset is TASK_SIZE of a task whose mm an ia32 exec made
// (arch/x86/include/asm/page_64_types.h: IA32_PAGE_OFFSET, the top of
// the 32-bit address space less a guard page): with TIF_ADDR32 no
// mapping can reach above it, whatever syscall asks.
const IA32PageOffset = 0xffffe000

// ExitCode32 is ia32 code that calls exit(status) with int $0x80.
func ExitCode32(status byte) []byte {
	return []byte{
		0xb8, 0x01, 0x00, 0x00, 0x00, // mov $1, %eax (__NR_exit)
		0xbb, status, 0x00, 0x00, 0x00, // mov $status, %ebx
		0xcd, 0x80, // int $0x80
	}
}

// TinyELF32 returns a minimal static ELF32 EM_386 executable that runs
// code: an ELF header, a PT_LOAD program header mapping the whole file
// (read and execute) at ELF32Base, a PT_GNU_STACK one (a non-executable
// stack: without it an ia32 exec sets READ_IMPLIES_EXEC in the
// personality, which clone passes on, and every PROT_READ mapping of a
// task restored from it would come out executable), and the code, where
// the entry point is. The headers are Elf32_Ehdr and Elf32_Phdr
// (include/uapi/linux/elf.h), as debug/elf declares them.
func TinyELF32(code []byte) []byte {
	ehsize := uint16(binary.Size(elf.Header32{}))
	phsize := uint16(binary.Size(elf.Prog32{}))
	codeOff := uint32(ehsize + 2*phsize)
	size := codeOff + uint32(len(code))
	eh := elf.Header32{
		Type: uint16(elf.ET_EXEC), Machine: uint16(elf.EM_386), Version: uint32(elf.EV_CURRENT),
		Entry: ELF32Base + codeOff, Phoff: uint32(ehsize), Ehsize: ehsize, Phentsize: phsize, Phnum: 2,
	}
	copy(eh.Ident[:], elf.ELFMAG)
	eh.Ident[elf.EI_CLASS] = byte(elf.ELFCLASS32)
	eh.Ident[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	eh.Ident[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	eh.Ident[elf.EI_OSABI] = byte(elf.ELFOSABI_NONE)
	ph := elf.Prog32{
		Type: uint32(elf.PT_LOAD), Vaddr: ELF32Base, Paddr: ELF32Base, Filesz: size, Memsz: size,
		Flags: uint32(elf.PF_R | elf.PF_X), Align: 0x1000,
	}
	stack := elf.Prog32{Type: uint32(elf.PT_GNU_STACK), Flags: uint32(elf.PF_R | elf.PF_W), Align: 16}
	b, err := binary.Append(nil, binary.LittleEndian, eh)
	if err == nil {
		b, err = binary.Append(b, binary.LittleEndian, ph)
	}
	if err == nil {
		b, err = binary.Append(b, binary.LittleEndian, stack)
	}
	if err != nil {
		panic(err) // fixed-size structs always encode
	}
	return append(b, code...)
}
