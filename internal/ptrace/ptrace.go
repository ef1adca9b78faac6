//go:build linux && amd64

package ptrace

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/internal/arch/x86"
)

func ptrace(req int, pid int, addr, data uintptr) (uintptr, error) {
	for {
		r, _, e := unix.Syscall6(unix.SYS_PTRACE, uintptr(req), uintptr(pid), addr, data, 0, 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return r, e
		}
		return r, nil
	}
}

// ptracePtr is ptrace with a pointer as data. The pointer stays an
// unsafe.Pointer until the syscall itself: a uintptr made earlier would
// not follow the buffer if the goroutine's stack is moved meanwhile.
func ptracePtr(req int, pid int, addr uintptr, data unsafe.Pointer) (uintptr, error) {
	for {
		r, _, e := unix.Syscall6(unix.SYS_PTRACE, uintptr(req), uintptr(pid), addr, uintptr(data), 0, 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return r, e
		}
		return r, nil
	}
}

// ptracePtr2 is ptrace with pointers as both addr and data.
func ptracePtr2(req int, pid int, addr, data unsafe.Pointer) (uintptr, error) {
	for {
		r, _, e := unix.Syscall6(unix.SYS_PTRACE, uintptr(req), uintptr(pid), uintptr(addr), uintptr(data), 0, 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return r, e
		}
		return r, nil
	}
}

// seize attaches to pid without stopping it, with the given options
// (x/sys's PtraceSeize passes none).
func seize(pid int, options int) error {
	_, err := ptrace(unix.PTRACE_SEIZE, pid, 0, uintptr(options))
	return err
}

// interrupt stops a seized task (PTRACE_INTERRUPT).
func interrupt(pid int) error {
	_, err := ptrace(unix.PTRACE_INTERRUPT, pid, 0, 0)
	return err
}

// setOptions sets ptrace options on a tracee attached with PTRACE_TRACEME.
func setOptions(pid int, options int) error {
	_, err := ptrace(unix.PTRACE_SETOPTIONS, pid, 0, uintptr(options))
	return err
}

// detach lets the tracee go, delivering sig (0 for none).
func detach(pid int, sig int) error {
	_, err := ptrace(unix.PTRACE_DETACH, pid, 0, uintptr(sig))
	return err
}

// cont resumes a stopped tracee, delivering sig (0 for none).
func cont(pid int, sig int) error {
	_, err := ptrace(unix.PTRACE_CONT, pid, 0, uintptr(sig))
	return err
}

// contSyscall resumes a stopped tracee until its next syscall-enter or
// syscall-exit stop (PTRACE_SYSCALL).
func contSyscall(pid int, sig int) error {
	_, err := ptrace(unix.PTRACE_SYSCALL, pid, 0, uintptr(sig))
	return err
}

// getRegs reads general registers in the tracer's 64-bit layout with raw
// PTRACE_GETREGS, valid for native and compat tracees. (x/sys's
// PtraceGetRegs uses GETREGSET, whose layout follows the tracee's mode.)
func getRegs(pid int) (x86.Regs, error) {
	var r x86.Regs
	_, err := ptracePtr(unix.PTRACE_GETREGS, pid, 0, unsafe.Pointer(&r))
	return r, err
}

// setRegs writes general registers with raw PTRACE_SETREGS; cs may switch
// between 0x23 and 0x33.
func setRegs(pid int, r *x86.Regs) error {
	_, err := ptracePtr(unix.PTRACE_SETREGS, pid, 0, unsafe.Pointer(r))
	return err
}

// getRegset reads a register set (PTRACE_GETREGSET) into buf and returns
// the length the kernel filled.
func getRegset(pid int, nt int, buf []byte) (int, error) {
	iov := unix.Iovec{Base: &buf[0]}
	iov.SetLen(len(buf))
	_, err := ptracePtr(unix.PTRACE_GETREGSET, pid, uintptr(nt), unsafe.Pointer(&iov))
	return int(iov.Len), err
}

// setRegset writes a register set (PTRACE_SETREGSET).
func setRegset(pid int, nt int, buf []byte) error {
	iov := unix.Iovec{Base: &buf[0]}
	iov.SetLen(len(buf))
	_, err := ptracePtr(unix.PTRACE_SETREGSET, pid, uintptr(nt), unsafe.Pointer(&iov))
	return err
}

// XstateBufSize is large enough for any NT_X86_XSTATE regset (AMX tiles
// included, which need about 11 KiB).
const XstateBufSize = 16384

// getXstate returns the task's xsave area (NT_X86_XSTATE).
func getXstate(pid int) ([]byte, error) {
	buf := make([]byte, XstateBufSize)
	n, err := getRegset(pid, unix.NT_X86_XSTATE, buf)
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}

// getSigmask returns the blocked mask; during sigsuspend and friends the
// kernel returns the mask to be restored afterwards.
func getSigmask(pid int) (uint64, error) {
	var m uint64
	_, err := ptracePtr(unix.PTRACE_GETSIGMASK, pid, 8, unsafe.Pointer(&m))
	return m, err
}

// setSigmask sets the blocked mask.
func setSigmask(pid int, m uint64) error {
	_, err := ptracePtr(unix.PTRACE_SETSIGMASK, pid, 8, unsafe.Pointer(&m))
	return err
}

// SiginfoSize is sizeof(siginfo_t) in the tracer's (64-bit) layout.
const SiginfoSize = 128

// peekSiginfoShared is PTRACE_PEEKSIGINFO_SHARED (include/uapi/linux/ptrace.h).
const peekSiginfoShared = 1

// peekSiginfo returns the queued signals of a stopped task without
// dequeuing them: the thread's own queue, or with shared the process-wide
// one. Each entry is a raw 64-bit siginfo_t.
func peekSiginfo(pid int, shared bool) ([][]byte, error) {
	type args struct {
		off   uint64
		flags uint32
		nr    int32
	}
	const batch = 32
	var out [][]byte
	buf := make([]byte, batch*SiginfoSize)
	for {
		a := args{off: uint64(len(out)), nr: batch}
		if shared {
			a.flags = peekSiginfoShared
		}
		n, err := ptracePtr2(unix.PTRACE_PEEKSIGINFO, pid, unsafe.Pointer(&a), unsafe.Pointer(&buf[0]))
		if err != nil {
			return nil, err
		}
		for i := 0; i < int(n); i++ {
			out = append(out, append([]byte(nil), buf[i*SiginfoSize:(i+1)*SiginfoSize]...))
		}
		if int(n) < batch {
			return out, nil
		}
	}
}

// getThreadArea reads GDT TLS entry idx (PTRACE_GET_THREAD_AREA) as a raw
// struct user_desc.
func getThreadArea(pid int, idx int) ([]byte, error) {
	b := make([]byte, x86.UserDescSize)
	_, err := ptracePtr(unix.PTRACE_GET_THREAD_AREA, pid, uintptr(idx), unsafe.Pointer(&b[0]))
	return b, err
}

// setThreadArea writes GDT TLS entry idx (PTRACE_SET_THREAD_AREA).
func setThreadArea(pid int, idx int, desc []byte) error {
	if len(desc) < x86.UserDescSize {
		return errors.New("short user_desc")
	}
	_, err := ptracePtr(unix.PTRACE_SET_THREAD_AREA, pid, uintptr(idx), unsafe.Pointer(&desc[0]))
	return err
}

// RseqConfig is struct ptrace_rseq_configuration (include/uapi/linux/ptrace.h).
type RseqConfig struct {
	Addr      uint64
	Len       uint32
	Signature uint32
	Flags     uint32
	_         uint32
}

// getRseqConfig reads the task's rseq registration; Addr is 0 if none.
func getRseqConfig(pid int) (RseqConfig, error) {
	var c RseqConfig
	_, err := ptracePtr(unix.PTRACE_GET_RSEQ_CONFIGURATION, pid, unsafe.Sizeof(c), unsafe.Pointer(&c))
	return c, err
}

// pokeData writes one word into the tracee, ignoring page protection
// (how debuggers set breakpoints in text).
func pokeData(pid int, addr uint64, word uint64) error {
	_, err := ptrace(unix.PTRACE_POKEDATA, pid, uintptr(addr), uintptr(word))
	return err
}

// peekData reads one word from the tracee.
func peekData(pid int, addr uint64) (uint64, error) {
	var w uint64
	_, err := ptracePtr(unix.PTRACE_PEEKDATA, pid, uintptr(addr), unsafe.Pointer(&w))
	return w, err
}

// writeBytes writes b at addr with PEEK/POKE, for a few bytes of code in
// pages that may be read-only.
func writeBytes(pid int, addr uint64, b []byte) error {
	for off := 0; off < len(b); off += 8 {
		a := addr + uint64(off)
		w, err := peekData(pid, a)
		if err != nil {
			return fmt.Errorf("peek %#x: %w", a, err)
		}
		var wb [8]byte
		binary.LittleEndian.PutUint64(wb[:], w)
		copy(wb[:], b[off:])
		if err := pokeData(pid, a, binary.LittleEndian.Uint64(wb[:])); err != nil {
			return fmt.Errorf("poke %#x: %w", a, err)
		}
	}
	return nil
}

// readBytes reads n bytes at addr with PEEKDATA.
func readBytes(pid int, addr uint64, n int) ([]byte, error) {
	out := make([]byte, 0, n+8)
	for off := 0; off < n; off += 8 {
		w, err := peekData(pid, addr+uint64(off))
		if err != nil {
			return nil, fmt.Errorf("peek %#x: %w", addr+uint64(off), err)
		}
		out = binary.LittleEndian.AppendUint64(out, w)
	}
	return out[:n], nil
}
