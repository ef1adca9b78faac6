//go:build linux && amd64

package fd

import (
	"encoding/binary"
	"fmt"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/fdinfo"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/timerfd"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/procfs"
	"github.com/ckpt/ckpt/internal/uapi"
)

// timerfdKind is a timerfd: its clock, time left, interval and the
// expirations not read yet. An absolute timer comes back as a relative
// one with the time that was left.
type timerfdKind struct{}

func (timerfdKind) Name() string { return "timerfd" }

func (timerfdKind) Match(f *File, o Options) (bool, error) {
	return f.Path == "anon_inode:[timerfd]", nil
}

func (timerfdKind) Collect(t Task, f *File, flags uint32, e *fdinfo.FileEntry) error {
	tf, err := procfs.ParseTimerfd(f.Info)
	if err != nil {
		return fmt.Errorf("fd %d (timerfd): %w", f.Fd, err)
	}
	e.Type = fdinfo.FdTypes_TIMERFD.Enum()
	e.Tfd = &timerfd.TimerfdEntry{
		Id: e.Id, Flags: proto.Uint32(flags), Fown: noOwner(),
		Clockid: proto.Uint32(uint32(tf.ClockID)), Ticks: proto.Uint64(tf.Ticks), SettimeFlags: proto.Uint32(tf.SettimeFlags),
		Vsec: proto.Uint64(tf.ValueSec), Vnsec: proto.Uint64(tf.ValueNsec), Isec: proto.Uint64(tf.IntervalSec), Insec: proto.Uint64(tf.IntvNsec),
	}
	leftInImage(e.Tfd)
	return nil
}

// leftInImage writes the time left of a periodic timer that expired and
// was not read since (fdinfo shows none, see armAs) as armAs restores
// it, one interval: CRIU arms a timerfd with the image's values as they
// are (criu/pie/restorer.c, timerfd_arm), and a zero value would leave it
// disarmed.
func leftInImage(t *timerfd.TimerfdEntry) {
	if its, ok := armAs(t); ok {
		t.Vsec, t.Vnsec = proto.Uint64(uint64(its.Value.Sec)), proto.Uint64(uint64(its.Value.Nsec))
	}
}

// armAs is what a restored timerfd is armed with, and false for a
// disarmed one. A periodic timer that expired and was not read since
// shows no time left in fdinfo: its hrtimer is forwarded only by a read
// or timerfd_gettime (fs/timerfd.c, timerfd_get_remaining clamps the
// negative remainder to 0). timerfd_settime with a zero value would
// disarm it, so it is armed for one interval, when it would fire next at
// the latest; its unread expirations come back as ticks.
func armAs(t *timerfd.TimerfdEntry) (uapi.Itimerspec, bool) {
	its := uapi.Itimerspec{
		Interval: uapi.Timespec{Sec: int64(t.GetIsec()), Nsec: int64(t.GetInsec())},
		Value:    uapi.Timespec{Sec: int64(t.GetVsec()), Nsec: int64(t.GetVnsec())},
	}
	if its.Value == (uapi.Timespec{}) {
		if its.Interval == (uapi.Timespec{}) {
			return its, false
		}
		its.Value = its.Interval
	}
	return its, true
}

// Open makes a timerfd on the dumped clock, armed with the time that was
// left, and with the expirations that were not read yet.
func (timerfdKind) Open(r Restorer, num int, cloexec bool, e *fdinfo.FileEntry) error {
	t := e.GetTfd()
	if t == nil {
		return fmt.Errorf("fd %d: timerfd entry %d without data", num, e.GetId())
	}
	got, err := r.Syscall(x86.SysTimerfdCreate, uint64(t.GetClockid()), uint64(t.GetFlags()&unix.O_NONBLOCK))
	if err != nil {
		return fmt.Errorf("fd %d (timerfd): timerfd_create: %w", num, err)
	}
	if err := r.Place(int(got), num, cloexec); err != nil {
		return fmt.Errorf("fd %d (timerfd): %w", num, err)
	}
	if its, ok := armAs(t); ok {
		p, err := r.Put(its.Bytes())
		if err != nil {
			return err
		}
		if _, err := r.Syscall(x86.SysTimerfdSettime, uint64(num), 0, p, 0); err != nil {
			return fmt.Errorf("fd %d (timerfd): timerfd_settime: %w", num, err)
		}
	}
	if n := t.GetTicks(); n != 0 {
		b := make([]byte, 8)
		binary.LittleEndian.PutUint64(b, n)
		p, err := r.Put(b)
		if err != nil {
			return err
		}
		if _, err := r.Syscall(x86.SysIoctl, uint64(num), uapi.TFD_IOC_SET_TICKS, p); err != nil {
			return fmt.Errorf("fd %d (timerfd): set %d unread expirations: %w", num, n, err)
		}
	}
	return nil
}
