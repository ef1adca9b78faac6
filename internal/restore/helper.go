//go:build linux && amd64

package restore

import (
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/model"
)

// The restore helper is the process every task of the tree descends
// from: the root is cloned from it, every other process from its restored
// parent, so each process's mm starts as a copy of the helper's. Some of
// what an mm is comes from the exec that created it and cannot be set
// afterwards: a 64-bit exec gives the mm the emulated [vsyscall] page
// (MM_CONTEXT_HAS_VSYSCALL), an ia32 exec withholds it, sets TIF_ADDR32
// (a TASK_SIZE of IA32_PAGE_OFFSET: nothing can be mapped above 4 GiB,
// whatever syscall asks) and MM_CONTEXT_UPROBE_IA32; clone copies all of
// them. So the helper is exec'd as the kind of program the tree runs:
//
//   - a tree of ia32 processes only: a tiny ELF32 image that ckpt builds
//     in memory (x86.TinyELF32) and executes from a memfd; its mappings
//     (the image at x86.ELF32Base, stack, vDSO) are unmapped like any
//     helper's before the dumped VMAs are mapped;
//   - otherwise, or where the kernel refuses ia32 programs (ENOEXEC):
//     ckpt's own 64-bit binary, as before.
//
// A mixed tree keeps the 64-bit helper: its ia32 processes show [vsyscall]
// in their maps, which natively started ones do not. The ia32 helper is
// no way out there, because TIF_ADDR32 is inherited by clone and only an
// exec clears it: a 64-bit process forked from an ia32-exec'd parent could
// not map its memory above 4 GiB (mmap ENOMEM). Nor can a process give a
// child another kind of mm than its own by clone alone. The way left,
// not taken yet: the parent forks a relay, the relay execs the helper of
// the child's kind and clones the child with CLONE_PARENT (so that it is
// the parent's child), and the parent reaps the relay. Its cost: the
// exec closes the parent's close-on-exec fds in the relay, so the child's
// inherited fd table must be computed without them.

// helperABI is the kind of helper a tree needs (see above): ia32 when
// every process of the tree that runs is ia32, else x86_64.
func helperABI(all []*model.Process) x86.ABI {
	for _, im := range all {
		if !im.Zombie && !im.Compat {
			return x86.ABI64
		}
	}
	return x86.ABI32
}

// helperExitCode is what the ia32 helper exits with should it ever run
// (it never does: it stops at its exec and is killed once it has cloned).
const helperExitCode = 127

// ia32HelperImage writes the ia32 helper image into a memfd and returns
// a read-only descriptor of it (an exec refuses a file open for writing:
// ETXTBSY), close-on-exec: the exec path /proc/self/fd/N resolves before
// the exec closes it.
func ia32HelperImage() (*os.File, error) {
	fd, err := unix.MemfdCreate("ckpt-restore-helper32", unix.MFD_CLOEXEC|unix.MFD_EXEC)
	if err == unix.EINVAL {
		// Before Linux 6.3 there is no MFD_EXEC: every memfd is executable.
		fd, err = unix.MemfdCreate("ckpt-restore-helper32", unix.MFD_CLOEXEC)
	}
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	w := os.NewFile(uintptr(fd), "memfd:ckpt-restore-helper32")
	defer w.Close()
	if _, err := w.Write(x86.TinyELF32(x86.ExitCode32(helperExitCode))); err != nil {
		return nil, fmt.Errorf("write the ia32 helper image: %w", err)
	}
	ro, err := os.OpenFile(fmt.Sprintf("/proc/self/fd/%d", fd), os.O_RDONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("reopen the ia32 helper image read-only: %w", err)
	}
	return ro, nil
}

// startHelper starts a process stopped right after exec, traced by this
// thread: for a tree of ia32 processes the ia32 helper, else (or when
// this kernel does not run ia32 programs) ckpt's own binary. Its image
// never runs; it is only a source for clone3.
func (r *restorer) startHelper(abi x86.ABI) error {
	defer r.timeForking()()
	files := []uintptr{r.opts.Stdin.Fd(), r.opts.Stdout.Fd(), r.opts.Stderr.Fd()}
	attr := &syscall.ProcAttr{Dir: "/", Env: []string{}, Files: files, Sys: &syscall.SysProcAttr{Ptrace: true}}
	pid := 0
	if abi == x86.ABI32 {
		img, err := ia32HelperImage()
		if err == nil {
			pid, err = syscall.ForkExec(fmt.Sprintf("/proc/self/fd/%d", img.Fd()), []string{"ckpt-restore-helper32"}, attr)
			img.Close()
		}
		if err != nil {
			// ENOEXEC where ia32 emulation is off; the 64-bit helper
			// restores the tree all the same, with [vsyscall] in the maps.
			r.opts.logf("restore: the ia32 helper did not start (%v): using the 64-bit one; the ia32 tasks will show [vsyscall]", err)
			abi, pid = x86.ABI64, 0
		}
	}
	if pid == 0 {
		exe, err := os.Executable()
		if err != nil {
			exe = "/proc/self/exe"
		}
		if pid, err = syscall.ForkExec(exe, []string{"ckpt-restore-helper"}, attr); err != nil {
			return fmt.Errorf("start helper: %w", err)
		}
	}
	r.opts.logf("restore: helper %d exec'd as %v", pid, abi)
	r.helper = pid
	r.helperTh = r.s.Adopt(pid)
	r.helperUndo = r.killStep("helper", pid, 0, nil)
	st, err := r.helperTh.Wait()
	if err != nil {
		return fmt.Errorf("helper: %w", err)
	}
	if st.Signal() != unix.SIGTRAP {
		return fmt.Errorf("helper %d: %v instead of the exec stop", pid, st)
	}
	if err := r.helperTh.SetOptions(unix.PTRACE_O_TRACECLONE | unix.PTRACE_O_TRACEFORK | unix.PTRACE_O_EXITKILL | unix.PTRACE_O_TRACESYSGOOD); err != nil {
		return fmt.Errorf("helper %d: set options: %w", pid, err)
	}
	return nil
}
