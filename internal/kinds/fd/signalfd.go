//go:build linux && amd64

package fd

import (
	"encoding/binary"
	"fmt"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/fdinfo"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/signalfd"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/procfs"
)

// signalfdKind is a signalfd: its signal mask.
type signalfdKind struct{}

func (signalfdKind) Name() string { return "signalfd" }

func (signalfdKind) Match(f *File, o Options) (bool, error) {
	return f.Path == "anon_inode:[signalfd]", nil
}

func (signalfdKind) Collect(t Task, f *File, flags uint32, e *fdinfo.FileEntry) error {
	mask, err := procfs.ParseSignalfd(f.Info)
	if err != nil {
		return fmt.Errorf("fd %d (signalfd): %w", f.Fd, err)
	}
	e.Type = fdinfo.FdTypes_SIGNALFD.Enum()
	e.Sgfd = &signalfd.SignalfdEntry{Id: e.Id, Flags: proto.Uint32(flags), Fown: noOwner(), Sigmask: proto.Uint64(mask)}
	return nil
}

func (signalfdKind) Open(r Restorer, num int, cloexec bool, e *fdinfo.FileEntry) error {
	s := e.GetSgfd()
	if s == nil {
		return fmt.Errorf("fd %d: signalfd entry %d without data", num, e.GetId())
	}
	b := make([]byte, 8)
	binary.LittleEndian.PutUint64(b, s.GetSigmask())
	p, err := r.Put(b)
	if err != nil {
		return err
	}
	got, err := r.Syscall(x86.SysSignalfd4, ^uint64(0), p, 8, uint64(s.GetFlags()&unix.O_NONBLOCK))
	if err != nil {
		return fmt.Errorf("fd %d: signalfd4: %w", num, err)
	}
	if err := r.Place(int(got), num, cloexec); err != nil {
		return fmt.Errorf("fd %d: %w", num, err)
	}
	return nil
}
