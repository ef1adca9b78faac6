//go:build linux && amd64

package fd

import (
	"errors"
	"fmt"
	"strings"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/fdinfo"
	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/internal/ckerr"
	"github.com/ckpt/ckpt/internal/model"
	"github.com/ckpt/ckpt/internal/sockdiag"
)

// Kinds is one dump's or one restore's set of kinds, each with the state
// it keeps across processes of the tree.
type Kinds struct {
	all     []Kind
	byType  map[fdinfo.FdTypes]Kind
	stdio   *stdioKind
	pty     *ptyKind
	regfile *regKind
	memfd   *memfdKind
	fifo    *fifoKind
	inet    *inetKind
	mq      *posixMQKind
}

// New returns a fresh instance of every kind: the one table of the kinds
// of files ckpt knows. A new kind is added here.
func New() *Kinds {
	k := &Kinds{stdio: &stdioKind{}, regfile: &regKind{}, memfd: &memfdKind{}, pty: &ptyKind{}, inet: &inetKind{}, mq: &posixMQKind{}}
	k.fifo = &fifoKind{reg: k.regfile}
	pipes := &pipeKind{}
	k.all = []Kind{
		k.stdio,
		pipes,
		k.memfd, // before regfile: a memfd is an unlinked regular file
		k.regfile,
		&eventfdKind{},
		&epollKind{},
		&timerfdKind{},
		&signalfdKind{},
		k.fifo,
		&unixKind{pipes: pipes},
		&inotifyKind{},
		k.inet,
		&netlinkKind{},
		k.mq, // a regular file of mqueue, which regfile leaves
	}
	k.byType = map[fdinfo.FdTypes]Kind{
		fdinfo.FdTypes_REG:       k.regfile,
		fdinfo.FdTypes_PIPE:      k.all[1],
		fdinfo.FdTypes_MEMFD:     k.memfd,
		fdinfo.FdTypes_FIFO:      k.fifo,
		fdinfo.FdTypes_EVENTFD:   k.all[4],
		fdinfo.FdTypes_EVENTPOLL: k.all[5],
		fdinfo.FdTypes_TIMERFD:   k.all[6],
		fdinfo.FdTypes_SIGNALFD:  k.all[7],
		fdinfo.FdTypes_TTY:       k.pty, // inherited terminals: ForEntry
		fdinfo.FdTypes_UNIXSK:    k.all[9],
		fdinfo.FdTypes_INOTIFY:   k.all[10],
		fdinfo.FdTypes_INETSK:    k.inet,
		fdinfo.FdTypes_NETLINKSK: k.all[12],
		fdinfo.FdTypes_EXT:       k.mq, // ckpt's EXT files are POSIX message queues
	}
	// A namespace file, which regfile refuses as a file without a path.
	k.byType[fdinfo.FdTypes_NS] = nsFileKind{}
	// A pty end whose master the tree holds, before stdio takes terminals.
	k.all = append([]Kind{k.pty, nsFileKind{}}, k.all...)
	return k
}

// Classify finds the kind of f, an fd of task pid, or refuses it naming
// the fd and what it is (a *ckerr.UnsupportedError).
func (k *Kinds) Classify(pid int, f *File, o Options) (Kind, error) {
	k.pty.seen(pid)
	// A lock held through the fd (fdinfo's "lock:" lines: POSIX locks of
	// the task, OFD and flock locks of this open file) is refused without
	// --file-locks, else taken again by the restore (lock.go).
	ls, err := f.locks()
	if err != nil {
		return nil, err
	}
	if len(ls) > 0 {
		if err := checkLocks(pid, f, ls, o); err != nil {
			return nil, err
		}
	}
	for _, kind := range k.all {
		ok, err := kind.Match(f, o)
		if err != nil {
			var ue *ckerr.UnsupportedError
			if errors.As(err, &ue) {
				ue.Task = pid
			}
			return nil, err
		}
		if ok {
			if len(ls) > 0 && kind != Kind(k.regfile) {
				return nil, ckerr.Unsupported(pid, fmt.Sprintf("fd %d (%s), a %s that holds a file lock (%s)", f.Fd, f.Path, kind.Name(), ls[0]),
					"locks are restored only on files reopened by path: release the lock before the dump")
			}
			return kind, nil
		}
	}
	return nil, ckerr.Unsupported(pid, fmt.Sprintf("fd %d, %s (%s)", f.Fd, describe(f), f.Path), "ckpt cannot dump it yet; close it before the dump")
}

// ForEntry finds the kind that restores fd of dump d.
func (k *Kinds) ForEntry(d *model.Dump, fd *fdinfo.FdinfoEntry) (Kind, error) {
	if Inherited(d, fd) || outsideTTY(d, fd) {
		return k.stdio, nil
	}
	kind, ok := k.byType[fd.GetType()]
	if !ok {
		return nil, fmt.Errorf("fd %d has type %v, which ckpt cannot restore yet", fd.GetFd(), fd.GetType())
	}
	return kind, nil
}

// Check checks, before a restore starts, that every fd of a table can be
// restored with the options given.
func (k *Kinds) Check(d *model.Dump, fds []*fdinfo.FdinfoEntry, o Options) error {
	for _, fd := range fds {
		kind, err := k.ForEntry(d, fd)
		if err != nil {
			return err
		}
		if c, ok := kind.(Checker); ok {
			if err := c.Check(fd, o); err != nil {
				return err
			}
		}
	}
	return nil
}

// Finish runs every kind's end-of-table step for a process.
func (k *Kinds) Finish(r Restorer) error {
	for _, kind := range k.all {
		if f, ok := kind.(Finisher); ok {
			if err := f.Finish(r); err != nil {
				return err
			}
		}
	}
	return nil
}

// FinishTree runs every kind's end-of-tree step, once every process of
// the tree has its fd table.
func (k *Kinds) FinishTree() error {
	for _, kind := range k.all {
		if f, ok := kind.(TreeFinisher); ok {
			if err := f.FinishTree(); err != nil {
				return err
			}
		}
	}
	return nil
}

// Close releases what the kinds keep in ckpt for a restore (the unlinked
// files made again): call it once the restore is over, whether it
// succeeded or not.
func (k *Kinds) Close() {
	k.fifo.close()
	k.regfile.closeGhosts()
	k.regfile.closeLinked()
	k.memfd.close()
	k.inet.Close()
}

// Done ends a restore that succeeded, once the tree runs: it removes the
// links that the dump made for files unlinked while they kept other
// links (linked.go), as CRIU does. logf logs what could not be removed.
func (k *Kinds) Done(logf func(string, ...any)) {
	k.regfile.removeLinkRemaps(logf)
}

// Seal ends the restore of the files the tree shares, once every fd and
// mapping of the tree exists: it adds the memfds' seals.
func (k *Kinds) Seal(d *model.Dump) error {
	return k.memfd.seal(d)
}

// MappedPath returns the path at which a task being restored opens the
// file of files.img id that it maps: a regular file's (or its ghost's),
// or a memfd made again.
func (k *Kinds) MappedPath(d *model.Dump, id uint32) (string, error) {
	f, ok := d.Files[id]
	if !ok {
		return "", fmt.Errorf("files.img: no file with id %d", id)
	}
	if m := f.GetMemfd(); m != nil {
		return k.memfd.path(d, m.GetInodeId())
	}
	return k.regfile.Path(d, id)
}

// Reg returns the regular-file kind, which also gives ids to the
// executable, cwd, root and mapped files.
func (k *Kinds) Reg() *regKind { return k.regfile }

// describe names the kind of an fd no kind takes, for the error message.
func describe(f *File) string {
	target, mode := f.Path, f.Stat.Mode&unix.S_IFMT
	switch {
	case strings.HasPrefix(target, "anon_inode:inotify"):
		return "an inotify instance"
	case strings.HasPrefix(target, "anon_inode:[pidfd]"):
		return "a pidfd"
	case strings.HasPrefix(target, "anon_inode:[io_uring]"):
		// No kernel interface restores its rings, registered files and
		// buffers, or requests in flight (CRIU refuses one too).
		return "an io_uring instance"
	case strings.HasPrefix(target, "anon_inode:"):
		return "an anonymous inode " + strings.TrimPrefix(target, "anon_inode:")
	case strings.HasPrefix(target, "socket:"):
		// sock_diag names its family, protocol and state.
		return sockdiag.Describe(uint32(f.Stat.Ino))
	case strings.HasPrefix(target, "pipe:"):
		return "a pipe"
	case mode == unix.S_IFIFO:
		return "a FIFO"
	case mode == unix.S_IFBLK:
		return "a block device"
	case strings.HasPrefix(target, "/memfd:"):
		return "a memfd"
	}
	return "an unsupported file"
}
