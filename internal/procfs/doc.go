//go:build linux && amd64

// Package procfs parses the Linux /proc files a checkpoint/restore tool needs
// to describe a running task: maps, smaps, status, stat, fdinfo, limits,
// auxv, pagemap and personality, plus directory listings of fds and threads.
//
// Every ParseX function is pure: it takes the complete contents of one /proc
// file as a byte slice and returns typed data, or an error that names the
// offending line number and field. Parsers never panic, whatever the input
// (they are fuzzed). The ReadX functions are thin wrappers that read
// /proc/PID/... with os.ReadFile and hand the bytes to the matching parser;
// their errors are prefixed with "read /proc/PID/FILE: ".
//
// The formats follow proc(5) and the kernel sources that generate them
// (fs/proc/task_mmu.c, fs/proc/array.c, fs/proc/base.c, fs/proc/fd.c), as of
// Linux 6.18 on x86_64.
package procfs
