//go:build linux && amd64

package restore

import (
	"fmt"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/fdinfo"
	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/kinds/fd"
	"github.com/ckpt/ckpt/internal/model"
	"github.com/ckpt/ckpt/internal/procfs"
)

// restoreFiles builds the dumped fd table. Fds that shared an open file
// description with the parent's (inherited across fork) are taken from
// the table the process inherited, so offsets stay shared; dup'ed fds are
// dup'ed again; the kind of each other file makes it anew. Every other fd
// is closed.
func (r *restorer) restoreFiles() error {
	maxFd := 2
	for _, f := range r.im.Fds {
		maxFd = max(maxFd, int(f.GetFd()))
	}
	r.maxFd = maxFd
	// Inherited descriptions this process needs move above every dumped
	// fd number first, so placing the others cannot close them.
	moved := map[uint32]int{}
	keep := map[int]bool{}
	for _, f := range r.im.Fds {
		id := f.GetId()
		if fd.Inherited(r.im.Tree, f) {
			keep[int(f.GetFd())] = true // inherited stdio stays in place
			continue
		}
		from, ok := r.inherited[id]
		if !ok {
			continue
		}
		if _, done := moved[id]; done {
			continue
		}
		got, err := r.inj.Syscall(x86.SysFcntl, uint64(from), unix.F_DUPFD, uint64(maxFd+1))
		if err != nil {
			return fmt.Errorf("fd %d: take inherited fd %d: %w", f.GetFd(), from, err)
		}
		moved[id] = int(got)
		keep[int(got)] = true
	}
	cur, err := procfs.ListFds(r.pid)
	if err != nil {
		return err
	}
	for _, f := range cur {
		if !keep[f.Num] {
			if _, err := r.inj.Syscall(x86.SysClose, uint64(f.Num)); err != nil {
				return fmt.Errorf("close inherited fd %d: %w", f.Num, err)
			}
		}
	}
	r.fdIDs = map[uint32]int{}
	type fixup struct {
		num   int
		fixer fd.Fixer
		file  *fdinfo.FileEntry
	}
	var fixups []fixup
	for _, f := range r.im.Fds {
		num := int(f.GetFd())
		id := f.GetId()
		cloexec := f.GetFlags()&model.FdCloexec != 0
		from, ok := r.fdIDs[id]
		if !ok {
			from, ok = moved[id]
		}
		if ok && !fd.Inherited(r.im.Tree, f) {
			var dflags uint64
			if cloexec {
				dflags = unix.O_CLOEXEC
			}
			if _, err := r.inj.Syscall(x86.SysDup3, uint64(from), uint64(num), dflags); err != nil {
				return fmt.Errorf("fd %d: dup3 of fd %d: %w", num, from, err)
			}
			r.fdIDs[id] = num
			continue
		}
		kind, err := r.kinds.ForEntry(r.im.Tree, f)
		if err != nil {
			return err
		}
		file := r.im.Tree.Files[id]
		if err := kind.Open(r, num, cloexec, file); err != nil {
			return err
		}
		if err := fd.RestoreOwner(r, num, file); err != nil {
			return err
		}
		if fx, ok := kind.(fd.Fixer); ok {
			fixups = append(fixups, fixup{num, fx, file})
		}
		r.fdIDs[id] = num
	}
	for _, tmp := range moved {
		if _, err := r.inj.Syscall(x86.SysClose, uint64(tmp)); err != nil {
			return fmt.Errorf("close fd %d: %w", tmp, err)
		}
	}
	if err := r.kinds.Finish(r); err != nil {
		return err
	}
	for _, fx := range fixups {
		if err := fx.fixer.Fixup(r, fx.num, fx.file); err != nil {
			return err
		}
	}
	return nil
}

// restoreLocks takes the process's file locks again (--file-locks). It
// runs late in rebuild, after every step that opens and closes a file in
// the task (mapping files, the exe for PR_SET_MM_MAP): closing an fd of
// a file drops the process's POSIX locks on it.
func (r *restorer) restoreLocks() error {
	if !r.opts.FileLocks {
		return nil
	}
	return fd.RestoreLocks(r, r.im.Pid, r.im.Fds)
}

// The restorer is what kinds of files see of the task being restored
// (fd.Restorer).
var _ fd.Restorer = (*restorer)(nil)

func (r *restorer) Pid() int          { return r.pid }
func (r *restorer) Compat() bool      { return r.im.Compat }
func (r *restorer) MaxFd() int        { return r.maxFd }
func (r *restorer) Dump() *model.Dump { return r.im.Tree }

func (r *restorer) Syscall(s x86.Syscall, args ...uint64) (uint64, error) {
	return r.inj.Syscall(s, args...)
}

func (r *restorer) Syscall32(s x86.Syscall, args ...uint64) (uint64, error) {
	return r.inj.Syscall32(s, args...)
}

// OnUndo takes a change made outside the task back if the restore fails.
func (r *restorer) OnUndo(what string, fn func() error) { r.s.Push(what, fn) }

func (r *restorer) Put(b []byte) (uint64, error)       { return r.put(0, b) }
func (r *restorer) PutString(s string) (uint64, error) { return r.putString(0, s) }

func (r *restorer) ReadMem(addr uint64, n int) ([]byte, error) {
	return r.readTask(addr, addr+uint64(n))
}

// Place moves the new fd tmp to number num with its close-on-exec flag.
func (r *restorer) Place(tmp, num int, cloexec bool) error {
	if tmp != num {
		var dflags uint64
		if cloexec {
			dflags = unix.O_CLOEXEC
		}
		if _, err := r.inj.Syscall(x86.SysDup3, uint64(tmp), uint64(num), dflags); err != nil {
			return fmt.Errorf("dup3: %w", err)
		}
		if _, err := r.inj.Syscall(x86.SysClose, uint64(tmp)); err != nil {
			return fmt.Errorf("close: %w", err)
		}
	} else if cloexec {
		if _, err := r.inj.Syscall(x86.SysFcntl, uint64(num), unix.F_SETFD, unix.FD_CLOEXEC); err != nil {
			return fmt.Errorf("fcntl(F_SETFD): %w", err)
		}
	}
	return nil
}
