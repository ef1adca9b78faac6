//go:build linux && amd64

package ptrace

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Mem reads and writes a tracee's memory. Bulk reads use
// process_vm_readv; what that refuses (PROT_NONE or unreadable pages) and
// all writes go through /proc/PID/mem, which the tracer may use on any
// private mapping whatever its protection.
type Mem struct {
	pid int
	f   *os.File
}

// OpenMem opens the memory of pid for reading and writing.
func OpenMem(pid int) (*Mem, error) {
	f, err := os.OpenFile(fmt.Sprintf("/proc/%d/mem", pid), os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	return &Mem{pid: pid, f: f}, nil
}

// Close releases the memory file.
func (m *Mem) Close() error { return m.f.Close() }

// ReadAt fills b from the tracee's address addr.
func (m *Mem) ReadAt(b []byte, addr uint64) error {
	if len(b) == 0 {
		return nil
	}
	local := []unix.Iovec{{Base: &b[0]}}
	local[0].SetLen(len(b))
	remote := []unix.RemoteIovec{{Base: uintptr(addr), Len: len(b)}}
	n, err := unix.ProcessVMReadv(m.pid, local, remote, 0)
	if err == nil && n == len(b) {
		return nil
	}
	if n < 0 {
		n = 0
	}
	return m.readProc(b[n:], addr+uint64(n))
}

func (m *Mem) readProc(b []byte, addr uint64) error {
	for len(b) > 0 {
		n, err := m.f.ReadAt(b, int64(addr))
		if n == 0 && err != nil {
			return fmt.Errorf("read memory at %#x: %w", addr, err)
		}
		b = b[n:]
		addr += uint64(n)
	}
	return nil
}

// WriteAt writes b at the tracee's address addr.
func (m *Mem) WriteAt(b []byte, addr uint64) error {
	for len(b) > 0 {
		n, err := m.f.WriteAt(b, int64(addr))
		if n == 0 && err != nil {
			return fmt.Errorf("write memory at %#x: %w", addr, err)
		}
		b = b[n:]
		addr += uint64(n)
	}
	return nil
}
