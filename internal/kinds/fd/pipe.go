//go:build linux && amd64

package fd

import (
	"encoding/binary"
	"fmt"
	"os"
	"strings"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/fdinfo"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/pipe"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/ckerr"
	"github.com/ckpt/ckpt/internal/model"
)

// pipeKind is an end of a pipe. A pipe whose two ends the dumped tree
// holds is dumped with the bytes buffered in it; at restore the first end
// creates the pipe, sized and refilled, and keeps the other end aside for
// the process's fd of that end; other ends, in this process or another,
// are opened through /proc/PID/fd/N of an end that exists. A pipe that
// leads outside the tree can only be stdio inherited with --shell-job
// (an entry with no data, see Inherited); elsewhere it is refused.
type pipeKind struct {
	// paths are where each pipe exists already, as /proc/PID/fd/N.
	paths map[uint32]string
	// spares are, per process, ends of pipes created there that no fd
	// took yet.
	spares map[int]map[uint32]pipeSpare
	// inflight are, by pipe inode, the ends (pipeEndRead, pipeEndWrite)
	// that messages queued on unix sockets of the tree carry (files in
	// flight, unixsk.go): the tree holds them too.
	inflight map[uint64]uint8
}

const (
	pipeEndRead  = 1
	pipeEndWrite = 2
)

// addInFlight records that a message queued in the tree carries an end
// of pipe ino (its write end if write).
func (k *pipeKind) addInFlight(ino uint64, write bool) {
	if k.inflight == nil {
		k.inflight = map[uint64]uint8{}
	}
	if write {
		k.inflight[ino] |= pipeEndWrite
	} else {
		k.inflight[ino] |= pipeEndRead
	}
}

// inFlight tells whether a message queued in the tree carries an end of
// pipe ino (its write end if write).
func (k *pipeKind) inFlight(ino uint64, write bool) bool {
	if write {
		return k.inflight[ino]&pipeEndWrite != 0
	}
	return k.inflight[ino]&pipeEndRead != 0
}

// pipeSpare is the end of a pipe created in a process that no fd of it
// took yet.
type pipeSpare struct {
	fd    int
	write bool
}

func isPipe(f *File) bool {
	return f.Stat.Mode&unix.S_IFMT == unix.S_IFIFO && strings.HasPrefix(f.Path, "pipe:")
}

func (*pipeKind) Name() string { return "pipe" }

func (*pipeKind) Match(f *File, o Options) (bool, error) {
	return isPipe(f), nil
}

func (k *pipeKind) Collect(t Task, f *File, flags uint32, e *fdinfo.FileEntry) error {
	id := uint32(f.Stat.Ino)
	e.Type = fdinfo.FdTypes_PIPE.Enum()
	e.Pipe = &pipe.PipeEntry{Id: e.Id, PipeId: proto.Uint32(id), Flags: proto.Uint32(flags), Fown: noOwner()}
	r, w := t.PipeEnds(f.Stat.Ino)
	r, w = r || k.inFlight(f.Stat.Ino, false), w || k.inFlight(f.Stat.Ino, true)
	if !r || !w {
		end := "write"
		if r {
			end = "read"
		}
		if t.Opts.ShellJob && f.Fd <= 2 {
			return nil // inherited stdio: no data
		}
		hint := "dump with --shell-job to give the restored task the stdio of whoever restores it"
		if f.Fd > 2 {
			hint = "pipes to the outside are not supported yet, except as stdio with --shell-job"
		}
		return ckerr.Unsupported(t.Pid, fmt.Sprintf("fd %d, the %s end of %s", f.Fd, end, f.Path),
			"the other end is held outside the dumped tree; "+hint)
	}
	if _, ok := t.Dump.Pipes[id]; !ok {
		pd, err := pipeData(t.Pid, f.Fd)
		if err != nil {
			return fmt.Errorf("fd %d (pipe): %w", f.Fd, err)
		}
		if t.Dump.Pipes == nil {
			t.Dump.Pipes = map[uint32]model.PipeData{}
		}
		t.Dump.Pipes[id] = pd
	}
	return nil
}

// pipeData copies the bytes buffered in a pipe without taking them out:
// tee(2) from the pipe (opened anew through /proc) into a pipe of ckpt's
// own, which is then read.
func pipeData(pid, fd int) (model.PipeData, error) {
	var pd model.PipeData
	src, err := unix.Open(fmt.Sprintf("/proc/%d/fd/%d", pid, fd), unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return pd, fmt.Errorf("open the pipe: %w", err)
	}
	defer unix.Close(src)
	size, err := unix.FcntlInt(uintptr(src), unix.F_GETPIPE_SZ, 0)
	if err != nil {
		return pd, fmt.Errorf("pipe size: %w", err)
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		return pd, err
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	if _, err := unix.FcntlInt(uintptr(p[1]), unix.F_SETPIPE_SZ, size); err != nil {
		return pd, fmt.Errorf("size a pipe for %d bytes: %w", size, err)
	}
	n, err := unix.Tee(src, p[1], size, unix.SPLICE_F_NONBLOCK)
	if err == unix.EAGAIN {
		n, err = 0, nil // an empty pipe
	}
	if err != nil || n < 0 {
		return pd, fmt.Errorf("tee: %v", err)
	}
	data := make([]byte, n)
	for got := 0; got < int(n); {
		k, err := unix.Read(p[0], data[got:])
		if err != nil || k == 0 {
			return pd, fmt.Errorf("read the pipe's copy: %v", err)
		}
		got += k
	}
	return model.PipeData{Data: data, Size: size}, nil
}

func (k *pipeKind) Open(r Restorer, num int, cloexec bool, e *fdinfo.FileEntry) error {
	pe := e.GetPipe()
	if pe == nil {
		return fmt.Errorf("fd %d: pipe entry %d without data", num, e.GetId())
	}
	if err := k.open(r, num, pe, cloexec); err != nil {
		return fmt.Errorf("fd %d (pipe %d): %w", num, pe.GetPipeId(), err)
	}
	return nil
}

func (k *pipeKind) open(r Restorer, num int, pe *pipe.PipeEntry, cloexec bool) error {
	if k.paths == nil {
		k.paths = map[uint32]string{}
		k.spares = map[int]map[uint32]pipeSpare{}
	}
	id := pe.GetPipeId()
	flags := uint64(pe.GetFlags()) &^ unix.O_CLOEXEC
	write := flags&unix.O_ACCMODE == unix.O_WRONLY
	spares := k.spares[r.Pid()]
	if sp, ok := spares[id]; ok && sp.write == write {
		delete(spares, id)
		if err := r.Place(sp.fd, num, cloexec); err != nil {
			return err
		}
		return setPipeFlags(r, num, flags)
	}
	if path, ok := k.paths[id]; ok {
		p, err := r.PutString(path)
		if err != nil {
			return err
		}
		// O_NONBLOCK, so that opening an end never waits for the other.
		got, err := r.Syscall(x86.SysOpenat, atFdcwd, p, (flags&unix.O_ACCMODE)|unix.O_NONBLOCK, 0)
		if err != nil {
			return fmt.Errorf("open %s: %w", path, err)
		}
		if err := r.Place(int(got), num, cloexec); err != nil {
			return err
		}
		return setPipeFlags(r, num, flags)
	}
	p, err := r.Put(make([]byte, 8))
	if err != nil {
		return err
	}
	if _, err := r.Syscall(x86.SysPipe2, p, 0); err != nil {
		return fmt.Errorf("pipe2: %w", err)
	}
	b, err := r.ReadMem(p, 8)
	if err != nil {
		return err
	}
	rfd, wfd := int(binary.LittleEndian.Uint32(b)), int(binary.LittleEndian.Uint32(b[4:]))
	pd := r.Dump().Pipes[id]
	if pd.Size > 0 {
		if _, err := r.Syscall(x86.SysFcntl, uint64(rfd), unix.F_SETPIPE_SZ, uint64(pd.Size)); err != nil {
			return fmt.Errorf("pipe size %d: %w", pd.Size, err)
		}
	}
	if len(pd.Data) > 0 {
		w, err := os.OpenFile(fmt.Sprintf("/proc/%d/fd/%d", r.Pid(), wfd), os.O_WRONLY, 0)
		if err != nil {
			return fmt.Errorf("open the new pipe: %w", err)
		}
		_, err = w.Write(pd.Data)
		w.Close()
		if err != nil {
			return fmt.Errorf("refill %d bytes: %w", len(pd.Data), err)
		}
	}
	mine, other := rfd, wfd
	if write {
		mine, other = wfd, rfd
	}
	moved, err := r.Syscall(x86.SysFcntl, uint64(other), unix.F_DUPFD, uint64(r.MaxFd()+1))
	if err != nil {
		return fmt.Errorf("set the other end aside: %w", err)
	}
	if _, err := r.Syscall(x86.SysClose, uint64(other)); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	if spares == nil {
		spares = map[uint32]pipeSpare{}
		k.spares[r.Pid()] = spares
	}
	spares[id] = pipeSpare{fd: int(moved), write: !write}
	if err := r.Place(mine, num, cloexec); err != nil {
		return err
	}
	k.paths[id] = fmt.Sprintf("/proc/%d/fd/%d", r.Pid(), num)
	return setPipeFlags(r, num, flags)
}

// Finish closes the ends of pipes created in the process that no fd took.
func (k *pipeKind) Finish(r Restorer) error {
	spares := k.spares[r.Pid()]
	for id, sp := range spares {
		if _, err := r.Syscall(x86.SysClose, uint64(sp.fd)); err != nil {
			return fmt.Errorf("close unused end of pipe %d: %w", id, err)
		}
		delete(spares, id)
	}
	return nil
}

// setPipeFlags sets the file status flags (O_NONBLOCK, ...) of a pipe end.
func setPipeFlags(r Restorer, num int, flags uint64) error {
	if _, err := r.Syscall(x86.SysFcntl, uint64(num), unix.F_SETFL, flags&^unix.O_ACCMODE); err != nil {
		return fmt.Errorf("fcntl(F_SETFL): %w", err)
	}
	return nil
}
