package dump

import (
	"fmt"
	"os"
	"strings"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/eventfd"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/eventpoll"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/fdinfo"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/fown"
	fsimg "github.com/checkpoint-restore/go-criu/v8/crit/images/fs"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/pipe"
	pipedata "github.com/checkpoint-restore/go-criu/v8/crit/images/pipe-data"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/regfile"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/signalfd"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/timerfd"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/tty"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/image"
	"github.com/ckpt/ckpt/internal/procfs"
	"github.com/ckpt/ckpt/internal/uapi"
)

// fileTable assigns ids to the files of files.img.
type fileTable struct {
	entries []*fdinfo.FileEntry
	byKey   map[string]uint32
	// open are the fds dumped so far, of every process: an fd that shares
	// its open file description with one of them gets the same id.
	open []openFD
	// shmem holds the content of every shared anonymous memory object.
	shmem     []shmemObject
	shmemSeen map[uint64]bool
	// pipes holds the buffered data and size of every pipe, by inode.
	pipes     []*pipedata.PipeDataEntry
	pipeBytes [][]byte
	pipeSeen  map[uint32]bool
}

// savePipeData copies, once per pipe, the bytes buffered in it without
// taking them out: tee(2) from the pipe (opened anew through /proc) into
// a pipe of ckpt's own, which is then read.
func (ft *fileTable) savePipeData(pid, fd int, pipeID uint32) error {
	if ft.pipeSeen == nil {
		ft.pipeSeen = map[uint32]bool{}
	}
	if ft.pipeSeen[pipeID] {
		return nil
	}
	ft.pipeSeen[pipeID] = true
	src, err := unix.Open(fmt.Sprintf("/proc/%d/fd/%d", pid, fd), unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open the pipe: %w", err)
	}
	defer unix.Close(src)
	size, err := unix.FcntlInt(uintptr(src), unix.F_GETPIPE_SZ, 0)
	if err != nil {
		return fmt.Errorf("pipe size: %w", err)
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		return err
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	if _, err := unix.FcntlInt(uintptr(p[1]), unix.F_SETPIPE_SZ, size); err != nil {
		return fmt.Errorf("size a pipe for %d bytes: %w", size, err)
	}
	n, err := unix.Tee(src, p[1], size, unix.SPLICE_F_NONBLOCK)
	if err == unix.EAGAIN {
		n, err = 0, nil // an empty pipe
	}
	if err != nil || n < 0 {
		return fmt.Errorf("tee: %v", err)
	}
	data := make([]byte, n)
	for got := 0; got < int(n); {
		k, err := unix.Read(p[0], data[got:])
		if err != nil || k == 0 {
			return fmt.Errorf("read the pipe's copy: %v", err)
		}
		got += k
	}
	ft.pipes = append(ft.pipes, &pipedata.PipeDataEntry{PipeId: proto.Uint32(pipeID), Bytes: proto.Uint32(uint32(n)), Size: proto.Uint32(uint32(size))})
	ft.pipeBytes = append(ft.pipeBytes, data)
	return nil
}

type openFD struct {
	pid int
	f   openFile
	id  uint32
}

func (ft *fileTable) reg(path string, flags uint32, pos uint64, st *unix.Stat_t) uint32 {
	key := fmt.Sprintf("%s\x00%d\x00%d", path, flags, pos)
	if id, ok := ft.byKey[key]; ok && pos == 0 {
		return id
	}
	id := uint32(len(ft.entries) + 1)
	ft.byKey[key] = id
	ft.entries = append(ft.entries, &fdinfo.FileEntry{
		Type: fdinfo.FdTypes_REG.Enum(),
		Id:   proto.Uint32(id),
		Reg: &regfile.RegFileEntry{
			Id:    proto.Uint32(id),
			Flags: proto.Uint32(flags),
			Pos:   proto.Uint64(pos),
			Fown:  noOwner(),
			Name:  proto.String(path),
			Size:  proto.Uint64(uint64(st.Size)),
			Mode:  proto.Uint32(st.Mode),
		},
	})
	return id
}

func noOwner() *fown.FownEntry {
	z := proto.Uint32(0)
	return &fown.FownEntry{Uid: z, Euid: z, Signum: z, PidType: z, Pid: z}
}

// epollTargets lists what an epoll fd watches. Each target is named by
// the fd number it was added with; that fd must still hold the same file,
// or the restore could not add it back.
func (t *task) epollTargets(f openFile) ([]*eventpoll.EventpollTfdEntry, error) {
	targets, err := procfs.ParseEpollTargets(f.info)
	if err != nil {
		return nil, err
	}
	var out []*eventpoll.EventpollTfdEntry
	for _, tg := range targets {
		var st unix.Stat_t
		if err := unix.Stat(fmt.Sprintf("/proc/%d/fd/%d", t.pid, tg.Fd), &st); err != nil || st.Ino != tg.Ino {
			return nil, fmt.Errorf("watched fd %d was closed or replaced since it was added: not supported yet", tg.Fd)
		}
		out = append(out, &eventpoll.EventpollTfdEntry{
			Tfd: proto.Uint32(uint32(tg.Fd)), Events: proto.Uint32(tg.Events), Data: proto.Uint64(tg.Data),
			Inode: proto.Uint64(tg.Ino), Pos: proto.Uint64(uint64(tg.Pos)),
		})
	}
	return out, nil
}

// sameFile reports whether fd1 of pid1 and fd2 of pid2 share one open
// file description (dup'ed or inherited fds share offset and flags), with
// kcmp(2).
func sameFile(pid1, fd1, pid2, fd2 int) bool {
	r, _, e := unix.Syscall6(unix.SYS_KCMP, uintptr(pid1), uintptr(pid2), uapi.KCMP_FILE, uintptr(fd1), uintptr(fd2), 0)
	return e == 0 && r == 0
}

func (t *task) fileEntries(ft *fileTable) ([]proto.Message, error) {
	var out []proto.Message
	for _, f := range t.files {
		shared := uint32(0)
		for _, p := range ft.open {
			if p.f.kind == f.kind && p.f.st.Dev == f.st.Dev && p.f.st.Ino == f.st.Ino && p.f.st.Rdev == f.st.Rdev && sameFile(p.pid, p.f.fd, t.pid, f.fd) {
				shared = p.id
				break
			}
		}
		flags := f.info.Flags
		fdFlags := uint32(0)
		if flags&unix.O_CLOEXEC != 0 {
			fdFlags = image.FdFlagCloexec
		}
		flags &^= unix.O_CLOEXEC
		var id uint32
		typ := fdinfo.FdTypes_REG
		switch {
		case shared != 0:
			id = shared
			switch f.kind {
			case fileEventfd:
				typ = fdinfo.FdTypes_EVENTFD
			case fileEpoll:
				typ = fdinfo.FdTypes_EVENTPOLL
			case filePipe:
				typ = fdinfo.FdTypes_PIPE
			case fileTimerfd:
				typ = fdinfo.FdTypes_TIMERFD
			case fileSignalfd:
				typ = fdinfo.FdTypes_SIGNALFD
			}
			if f.kind == fileInherit {
				typ = fdinfo.FdTypes_TTY
				if f.isPipe {
					typ = fdinfo.FdTypes_PIPE
				}
			}
		case f.kind == fileReg || f.kind == fileChr:
			id = uint32(len(ft.entries) + 1)
			st := f.st
			ft.entries = append(ft.entries, &fdinfo.FileEntry{
				Type: fdinfo.FdTypes_REG.Enum(), Id: proto.Uint32(id),
				Reg: &regfile.RegFileEntry{
					Id: proto.Uint32(id), Flags: proto.Uint32(flags), Pos: proto.Uint64(uint64(f.info.Pos)),
					Fown: noOwner(), Name: proto.String(f.path), Size: proto.Uint64(uint64(st.Size)),
					Mode: proto.Uint32(st.Mode),
				},
			})
		case f.kind == fileEventfd:
			typ = fdinfo.FdTypes_EVENTFD
			id = uint32(len(ft.entries) + 1)
			e, err := procfs.ParseEventfd(f.info)
			if err != nil {
				return nil, fmt.Errorf("fd %d (eventfd): %w", f.fd, err)
			}
			if !e.SemaphoreKnown {
				if e.Semaphore, err = eventfdIsSemaphore(t.pid, f.fd, e.Count); err != nil {
					return nil, fmt.Errorf("fd %d (eventfd): %w", f.fd, err)
				}
			}
			fl := flags
			if e.Semaphore {
				fl |= unix.EFD_SEMAPHORE
			}
			ft.entries = append(ft.entries, &fdinfo.FileEntry{
				Type: typ.Enum(), Id: proto.Uint32(id),
				Efd: &eventfd.EventfdFileEntry{Id: proto.Uint32(id), Flags: proto.Uint32(fl), Fown: noOwner(), Counter: proto.Uint64(e.Count)},
			})
		case f.kind == fileEpoll:
			typ = fdinfo.FdTypes_EVENTPOLL
			id = uint32(len(ft.entries) + 1)
			tfds, err := t.epollTargets(f)
			if err != nil {
				return nil, fmt.Errorf("fd %d (epoll): %w", f.fd, err)
			}
			for _, e := range tfds {
				e.Id = proto.Uint32(id)
			}
			ft.entries = append(ft.entries, &fdinfo.FileEntry{
				Type: typ.Enum(), Id: proto.Uint32(id),
				Epfd: &eventpoll.EventpollFileEntry{Id: proto.Uint32(id), Flags: proto.Uint32(flags), Fown: noOwner(), Tfd: tfds},
			})
		case f.kind == fileTimerfd:
			typ = fdinfo.FdTypes_TIMERFD
			id = uint32(len(ft.entries) + 1)
			tf, err := procfs.ParseTimerfd(f.info)
			if err != nil {
				return nil, fmt.Errorf("fd %d (timerfd): %w", f.fd, err)
			}
			ft.entries = append(ft.entries, &fdinfo.FileEntry{
				Type: typ.Enum(), Id: proto.Uint32(id),
				Tfd: &timerfd.TimerfdEntry{
					Id: proto.Uint32(id), Flags: proto.Uint32(flags), Fown: noOwner(),
					Clockid: proto.Uint32(uint32(tf.ClockID)), Ticks: proto.Uint64(tf.Ticks), SettimeFlags: proto.Uint32(tf.SettimeFlags),
					Vsec: proto.Uint64(tf.ValueSec), Vnsec: proto.Uint64(tf.ValueNsec), Isec: proto.Uint64(tf.IntervalSec), Insec: proto.Uint64(tf.IntvNsec),
				},
			})
		case f.kind == fileSignalfd:
			typ = fdinfo.FdTypes_SIGNALFD
			id = uint32(len(ft.entries) + 1)
			mask, err := procfs.ParseSignalfd(f.info)
			if err != nil {
				return nil, fmt.Errorf("fd %d (signalfd): %w", f.fd, err)
			}
			ft.entries = append(ft.entries, &fdinfo.FileEntry{
				Type: typ.Enum(), Id: proto.Uint32(id),
				Sgfd: &signalfd.SignalfdEntry{Id: proto.Uint32(id), Flags: proto.Uint32(flags), Fown: noOwner(), Sigmask: proto.Uint64(mask)},
			})
		case f.kind == filePipe:
			typ = fdinfo.FdTypes_PIPE
			id = uint32(len(ft.entries) + 1)
			pipeID := uint32(f.st.Ino)
			if err := ft.savePipeData(t.pid, f.fd, pipeID); err != nil {
				return nil, fmt.Errorf("fd %d (pipe): %w", f.fd, err)
			}
			ft.entries = append(ft.entries, &fdinfo.FileEntry{
				Type: typ.Enum(), Id: proto.Uint32(id),
				Pipe: &pipe.PipeEntry{Id: proto.Uint32(id), PipeId: proto.Uint32(pipeID), Flags: proto.Uint32(flags), Fown: noOwner()},
			})
		case f.kind == fileInherit:
			id = uint32(len(ft.entries) + 1)
			fe := &fdinfo.FileEntry{Id: proto.Uint32(id)}
			if f.isPipe {
				typ = fdinfo.FdTypes_PIPE
				fe.Pipe = &pipe.PipeEntry{Id: proto.Uint32(id), PipeId: proto.Uint32(uint32(f.st.Ino)), Flags: proto.Uint32(flags), Fown: noOwner()}
			} else {
				typ = fdinfo.FdTypes_TTY
				fe.Tty = &tty.TtyFileEntry{Id: proto.Uint32(id), TtyInfoId: proto.Uint32(0), Flags: proto.Uint32(flags), Fown: noOwner()}
			}
			fe.Type = typ.Enum()
			ft.entries = append(ft.entries, fe)
		}
		ft.open = append(ft.open, openFD{t.pid, f, id})
		out = append(out, &fdinfo.FdinfoEntry{
			Id: proto.Uint32(id), Flags: proto.Uint32(fdFlags), Type: typ.Enum(), Fd: proto.Uint32(uint32(f.fd)),
		})
	}
	return out, nil
}

func (t *task) fsEntry(ft *fileTable) (*fsimg.FsEntry, error) {
	pid := t.pid
	ids := [2]uint32{}
	for i, name := range []string{"cwd", "root"} {
		link := fmt.Sprintf("/proc/%d/%s", pid, name)
		path, err := os.Readlink(link)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		if strings.HasSuffix(path, " (deleted)") {
			return nil, fmt.Errorf("%s %s was deleted", name, path)
		}
		var st unix.Stat_t
		if err := unix.Stat(link, &st); err != nil {
			return nil, fmt.Errorf("stat %s: %w", name, err)
		}
		ids[i] = ft.reg(path, unix.O_RDONLY|unix.O_DIRECTORY, 0, &st)
	}
	if !t.status.HasUmask {
		return nil, fmt.Errorf("/proc/%d/status has no Umask line", pid)
	}
	return &fsimg.FsEntry{CwdId: proto.Uint32(ids[0]), RootId: proto.Uint32(ids[1]), Umask: proto.Uint32(t.status.Umask)}, nil
}
