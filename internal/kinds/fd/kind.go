//go:build linux && amd64

// Package fd holds every kind of open file ckpt can checkpoint: one file
// per kind (regular file, pipe, eventfd, epoll, timerfd, signalfd,
// inherited stdio), each with its dump side (Collect: read it from a
// frozen task into a files.img entry) and its restore side (Open: make it
// again inside the task being restored) next to each other, registered
// in one table. The dump and restore packages only walk fd tables and
// ask the kinds. A file that no kind claims is refused by name at dump.
package fd

import (
	"fmt"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/fdinfo"
	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/model"
	"github.com/ckpt/ckpt/internal/procfs"
)

// File is one open fd of a task, as /proc shows it.
type File struct {
	Fd   int
	Path string // the target of /proc/PID/fd/N
	// Pid is the task that holds it (0: ckpt itself, in tests).
	Pid  int
	Stat unix.Stat_t
	Info *procfs.FdInfo
	// FsType is the file system's magic (statfs f_type) of a regular
	// file, 0 for other files.
	FsType int64
}

// Options are the dump and restore options that decide how files are taken.
type Options struct {
	// ShellJob: stdio that is a tty or a pipe is inherited from whoever
	// runs the restore (--shell-job).
	ShellJob bool
	// ExtUnixSk: a unix datagram socket connected to a socket outside the
	// tree is dumped and connected to it by name again (--ext-unix-sk).
	ExtUnixSk bool
	// FileLocks dumps and restores the file locks that fds hold
	// (--file-locks); without it a file lock is refused (lock.go).
	FileLocks bool
	// GhostLimit is the largest unlinked file whose contents the dump
	// saves (--ghost-limit); 0 means DefaultGhostLimit.
	GhostLimit int64
	// LinkRemap is CRIU's --link-remap at dump: a file unlinked while it
	// keeps other links is linked at link_remap.ID in its directory, as
	// CRIU does, for the restore to open and remove (the dump restores
	// once). Without it the dump records the file's other name and
	// changes nothing on disk (linked.go).
	LinkRemap bool
	// TcpEstablished dumps established TCP connections with their state
	// and queues through TCP_REPAIR, and restores them
	// (--tcp-established); TcpClose dumps them without their state and
	// restores them closed (--tcp-close).
	TcpEstablished, TcpClose bool
	// LeaveRunning: the tree goes on after the dump (--leave-running),
	// so sockets the dump put in repair mode leave it at once.
	LeaveRunning bool
}

// Task is the frozen process whose files a kind collects.
type Task struct {
	Pid  int
	Dump *model.Dump
	Opts Options
	// PipeEnds tells which ends of pipe ino the dumped tree holds: a pipe
	// with both ends in the tree is the tree's own, one with an end
	// outside is a pipe to the outside world.
	PipeEnds func(ino uint64) (read, write bool)
	// InTree tells whether a process (by PID) is one of the dumped tree.
	InTree func(pid int) bool
	// Pidfd refers to the task, for pidfd_getfd: a kind that must look
	// at a file through a copy of the task's fd takes it with it.
	Pidfd int
	// Undo registers a step that takes back, if the dump fails, a change
	// a kind made to the task's files (a socket put in repair mode); nil
	// where no dump runs (tests).
	Undo func(what string, fn func() error)
	// Inject runs fn with syscalls injected into the frozen task, which
	// is put back as it was afterwards; nil where no dump runs.
	Inject func(fn func(Injector) error) error
}

// Injector runs syscalls inside a frozen task being dumped.
type Injector interface {
	// Compat tells an ia32 task; Syscall uses the task's ABI.
	Compat() bool
	Syscall(s x86.Syscall, args ...uint64) (uint64, error)
	// Scratch is the address of a page of the task's that Write and
	// Read may use.
	Scratch() uint64
	Write(addr uint64, b []byte) error
	Read(addr uint64, n int) ([]byte, error)
}

// Restorer is a process being restored, as a kind sees it: each call
// runs inside it.
type Restorer interface {
	Pid() int
	// Compat tells an ia32 task, whose files are opened with ia32 calls.
	Compat() bool
	Syscall(s x86.Syscall, args ...uint64) (uint64, error)
	Syscall32(s x86.Syscall, args ...uint64) (uint64, error)
	// Put writes b into scratch memory of the task and returns its
	// address; the next Put may overwrite it.
	Put(b []byte) (uint64, error)
	// PutString is Put of a NUL-terminated string.
	PutString(s string) (uint64, error)
	// ReadMem reads n bytes of the task's memory at addr.
	ReadMem(addr uint64, n int) ([]byte, error)
	// Place moves the task's new fd tmp to number num, with or without
	// close-on-exec.
	Place(tmp, num int, cloexec bool) error
	// MaxFd is the highest fd number of the dumped table: numbers above
	// it are free for fds set aside.
	MaxFd() int
	// Dump is the dump being restored.
	Dump() *model.Dump
}

// Kind is one kind of open file.
type Kind interface {
	// Name names the kind in messages.
	Name() string
	// Match tells whether f is of this kind. An error refuses f: it is
	// of this kind, but cannot be dumped; a *ckerr.UnsupportedError that
	// names the fd and what to do (Classify fills in the task).
	Match(f *File, o Options) (bool, error)
	// Collect fills e (its Id already set) with what restore needs of f;
	// flags are f's file status flags without O_CLOEXEC.
	Collect(t Task, f *File, flags uint32, e *fdinfo.FileEntry) error
	// Open makes the file of e at fd number num of the task; its errors
	// name the fd.
	Open(r Restorer, num int, cloexec bool, e *fdinfo.FileEntry) error
}

// Fixer is a kind whose fds need a step once every fd of the table exists
// (an epoll instance adds its targets).
type Fixer interface {
	Fixup(r Restorer, num int, e *fdinfo.FileEntry) error
}

// Finisher is a kind that tidies up once a process's fd table is built
// (a pipe closes the ends no fd took).
type Finisher interface {
	Finish(r Restorer) error
}

// TreeFinisher is a kind that tidies up once every process of the tree
// has its fd table (unix sockets close the ends they kept for other
// processes to take).
type TreeFinisher interface {
	FinishTree() error
}

// Undoer is a Restorer that takes back, if the restore fails, a change
// made outside the task (a socket file bound on disk).
type Undoer interface {
	OnUndo(what string, fn func() error)
}

// Checker is a kind that checks, before the restore touches anything,
// that an fd of the dump can be restored with the options given.
type Checker interface {
	Check(fd *fdinfo.FdinfoEntry, o Options) error
}

// fdOf returns ckpt's own copy of fd num of task pid (pidfd_getfd), for
// the caller to close.
func fdOf(pid, num int) (int, error) {
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return -1, fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	defer unix.Close(pidfd)
	c, err := unix.PidfdGetfd(pidfd, num, 0)
	if err != nil {
		return -1, fmt.Errorf("pidfd_getfd of fd %d of task %d: %w", num, pid, err)
	}
	return c, nil
}
