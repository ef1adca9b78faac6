//go:build linux && amd64

package dump

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/inject"
	"github.com/ckpt/ckpt/internal/kinds/fd"
	"github.com/ckpt/ckpt/internal/procfs"
)

// injectFiles runs fn, for a kind of file that must make a syscall
// inside the frozen task (fd.Task.Inject), with syscalls injected into
// its leader and a page of scratch data there; then the page is
// unmapped and the leader put back as it was (also if the dump fails
// or panics, through the undo stack). The memory is dumped already: the
// page comes and goes after it.
func (t *task) injectFiles(fn func(fd.Injector) error) (err error) {
	if len(t.threads) == 0 || t.threads[0].Tid != t.pid {
		return errors.New("no leader thread to inject into")
	}
	vmas, err := procfs.ReadSmaps(t.pid)
	if err != nil {
		return err
	}
	code, err := scratchCodeAddr(vmas)
	if err != nil {
		return err
	}
	inj, err := inject.BeginUndo(t.s.Undo, t.threads[0], code)
	if err != nil {
		return fmt.Errorf("prepare injection: %w", err)
	}
	defer func() {
		if eerr := inj.End(); eerr != nil && err == nil {
			err = fmt.Errorf("finish injection: %w", eerr)
		}
	}()
	in := &fileInjector{t: t, inj: inj}
	data, err := in.Syscall(x86.SysMmap, 0, x86.PageSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS, ^uint64(0), 0)
	if err != nil {
		return fmt.Errorf("map scratch data: %w", err)
	}
	in.data = data
	unmap := t.s.Push(fmt.Sprintf("unmap scratch data %#x in %d", data, t.pid), func() error {
		_, err := inj.Syscall(x86.SysMunmap, data, x86.PageSize)
		return err
	})
	defer func() {
		if uerr := unmap.Run(); uerr != nil && err == nil {
			err = uerr
		}
	}()
	return fn(in)
}

// fileInjector is fd.Injector over an injection into a task's leader.
type fileInjector struct {
	t    *task
	inj  *inject.Task
	data uint64
}

func (f *fileInjector) Compat() bool    { return f.t.abi == x86.ABI32 }
func (f *fileInjector) Scratch() uint64 { return f.data }

func (f *fileInjector) Syscall(s x86.Syscall, args ...uint64) (uint64, error) {
	if f.Compat() {
		return f.inj.Syscall32(s, args...)
	}
	return f.inj.Syscall(s, args...)
}

func (f *fileInjector) Write(addr uint64, b []byte) error { return f.t.threads[0].WriteBytes(addr, b) }

func (f *fileInjector) Read(addr uint64, n int) ([]byte, error) {
	return f.t.threads[0].ReadBytes(addr, n)
}
