//go:build linux && amd64

package kerndat

import "github.com/ckpt/ckpt/internal/arch/x86"

// ia32ExitCode is what the tiny ia32 program exits with.
const ia32ExitCode = 42

// tinyELF32 returns a minimal static ELF32 EM_386 executable that calls
// exit(42) with int $0x80 (x86.TinyELF32; the restore's ia32 helper is
// built the same way).
func tinyELF32() []byte {
	return x86.TinyELF32(x86.ExitCode32(ia32ExitCode))
}
