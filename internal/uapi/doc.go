//go:build linux && amd64

// Package uapi holds the Linux user-space ABI that ckpt passes to the
// kernel and that golang.org/x/sys/unix lacks: constants under their
// kernel names and structs that marshal themselves, each citing its
// header under include/uapi/linux. Layouts are those of x86_64, little
// endian; ia32 tasks get them through 64-bit syscalls.
//
// Constants that golang.org/x/sys/unix has are used from there and not
// repeated here. The x86 ABI (registers, user_desc, sigaction, xstate,
// syscall numbers) lives in internal/arch/x86.
package uapi
