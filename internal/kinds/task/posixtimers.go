//go:build linux && amd64

package task

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/timer"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/ckerr"
	"github.com/ckpt/ckpt/internal/procfs"
	"github.com/ckpt/ckpt/internal/uapi"
)

// posixTimers are the process's POSIX timers (timer_create(2)), kept in
// CRIU's posix_timer_entry list of task_timers_entry. /proc/PID/timers
// gives each one's id, signal and sigev_value, notification and clock;
// timer_gettime, injected, the time left and the interval;
// timer_getoverrun the overrun count of the last signal, which is kept in
// the image but cannot be set again (no call sets it).
//
// A program names its timers by id, so they come back with the same ids.
// Since Linux 6.15, prctl(PR_TIMER_CREATE_RESTORE_IDS) lets timer_create
// take the id to create from the timer_t it writes the id to
// (kernel/time/posix-timers.c). Older kernels (6.1) hand out a process's
// ids in order from 0: there the timers are created in order, and the ids
// of deleted timers in between are used up by creating and deleting a
// timer. A timer whose id cannot be had fails the restore, naming it.
//
// They are created with the native calls in ia32 tasks too: the kernel
// keeps no ABI mark on a timer, and keeps an ia32 sigev_value
// zero-extended, as it was dumped. They are made in the leader once every
// thread exists, for SIGEV_THREAD_ID timers aimed at another thread.
type posixTimers struct{}

func (posixTimers) Name() string { return "POSIX timers" }
func (posixTimers) Stage() Stage { return StageAfterCreds }

// Clocks (include/uapi/linux/time.h) and the CPU-clock encoding
// (include/linux/posix-timers_types.h) of a per-thread CPU-time clock.
const (
	clockThreadCPUTime  = 3
	cpuClockPerThread   = 4
	maxTimerIDsToSkip   = 1 << 16
	sizeofTimerID       = 4
	timerIDInScratchOff = uapi.SizeofSigevent
)

// threadCPUClock tells a clock that counts the CPU time of the thread
// that created the timer, which /proc/PID/timers does not name.
func threadCPUClock(c int32) bool {
	return c == clockThreadCPUTime || (c < 0 && c&cpuClockPerThread != 0 && ^(c>>3) == 0)
}

func (posixTimers) Collect(t Thread, e Entry) error {
	pts, err := procfs.ReadTimers(t.Pid())
	if err != nil {
		return fmt.Errorf("POSIX timers: %w", err)
	}
	sort.Slice(pts, func(i, j int) bool { return pts[i].ID < pts[j].ID })
	var out []*timer.PosixTimerEntry
	for _, pt := range pts {
		name := fmt.Sprintf("POSIX timer %d", pt.ID)
		if threadCPUClock(pt.ClockID) && t.Status() != nil && t.Status().Threads > 1 {
			return ckerr.Unsupported(t.Pid(), name, "it counts the CPU time of one of several threads, which /proc does not name; delete it before the dump")
		}
		if _, err := t.Syscall(x86.SysTimerGettime, uint64(pt.ID), t.Scratch()); err != nil {
			return fmt.Errorf("%s: timer_gettime: %w", name, err)
		}
		b, err := t.ReadMem(t.Scratch(), uapi.SizeofItimerspec)
		if err != nil {
			return err
		}
		its, err := uapi.DecodeItimerspec(b)
		if err != nil {
			return err
		}
		over, err := t.Syscall(x86.SysTimerGetoverrun, uint64(pt.ID))
		if err != nil {
			return fmt.Errorf("%s: timer_getoverrun: %w", name, err)
		}
		pe := &timer.PosixTimerEntry{
			ItId: proto.Uint32(uint32(pt.ID)), ClockId: proto.Uint32(uint32(pt.ClockID)),
			SiSigno: proto.Uint32(uint32(pt.Signo)), ItSigevNotify: proto.Uint32(uint32(pt.Notify)),
			SivalPtr: proto.Uint64(pt.SigevValue), Overrun: proto.Uint32(uint32(over)),
			Isec: proto.Uint64(uint64(its.Interval.Sec)), Insec: proto.Uint64(uint64(its.Interval.Nsec)),
			Vsec: proto.Uint64(uint64(its.Value.Sec)), Vnsec: proto.Uint64(uint64(its.Value.Nsec)),
		}
		if pt.Notify&uapi.SIGEV_THREAD_ID != 0 {
			// /proc names the thread in ckpt's PID namespace; the task
			// names it in its own, where the restore makes the timer.
			st, err := procfs.ReadTaskStatus(t.Pid(), pt.NotifyPid)
			if err != nil || len(st.NSpid) == 0 {
				return ckerr.Unsupported(t.Pid(), name, fmt.Sprintf("its signal goes to thread %d, which is not a thread of the task (%v)", pt.NotifyPid, err))
			}
			pe.NotifyThreadId = proto.Int32(int32(st.NSpid[len(st.NSpid)-1]))
		}
		out = append(out, pe)
	}
	timersEntry(e).Posix = out
	return nil
}

func (posixTimers) Restore(t Thread, e Entry) error {
	pts := append([]*timer.PosixTimerEntry(nil), e.Core.GetTc().GetTimers().GetPosix()...)
	if len(pts) == 0 {
		return nil
	}
	sort.Slice(pts, func(i, j int) bool { return pts[i].GetItId() < pts[j].GetItId() })
	explicit := true
	if _, err := t.Syscall(x86.SysPrctl, unix.PR_TIMER_CREATE_RESTORE_IDS, unix.PR_TIMER_CREATE_RESTORE_IDS_ON); err != nil {
		if !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("prctl(PR_TIMER_CREATE_RESTORE_IDS): %w", err)
		}
		explicit = false // before Linux 6.15
	}
	for _, pt := range pts {
		if err := createTimer(t, pt, explicit); err != nil {
			return err
		}
	}
	if explicit {
		if _, err := t.Syscall(x86.SysPrctl, unix.PR_TIMER_CREATE_RESTORE_IDS, unix.PR_TIMER_CREATE_RESTORE_IDS_OFF); err != nil {
			return fmt.Errorf("prctl(PR_TIMER_CREATE_RESTORE_IDS_OFF): %w", err)
		}
	}
	for _, pt := range pts {
		if err := armTimer(t, pt); err != nil {
			return err
		}
	}
	return nil
}

// createTimer makes the timer pt with its id: asked for, or by using up
// the ids below it when the kernel cannot be asked.
func createTimer(t Thread, pt *timer.PosixTimerEntry, explicit bool) error {
	want := int32(pt.GetItId())
	name := fmt.Sprintf("POSIX timer %d", want)
	sev := uapi.Sigevent{
		Value: pt.GetSivalPtr(), Signo: int32(pt.GetSiSigno()), Notify: int32(pt.GetItSigevNotify()),
		Tid: pt.GetNotifyThreadId(),
	}
	buf := binary.LittleEndian.AppendUint32(sev.Bytes(), uint32(want))
	for skipped := 0; ; skipped++ {
		p, err := t.Put(buf)
		if err != nil {
			return err
		}
		if _, err := t.Syscall(x86.SysTimerCreate, uint64(pt.GetClockId()), p, p+timerIDInScratchOff); err != nil {
			if explicit && errors.Is(err, unix.EBUSY) {
				return fmt.Errorf("%s: its id is taken in the new task: %w", name, err)
			}
			return fmt.Errorf("%s: timer_create(clock %d, notify %d, signal %d): %w", name, int32(pt.GetClockId()), sev.Notify, sev.Signo, err)
		}
		b, err := t.ReadMem(p+timerIDInScratchOff, sizeofTimerID)
		if err != nil {
			return err
		}
		got := int32(binary.LittleEndian.Uint32(b))
		if got == want {
			return nil
		}
		if _, err := t.Syscall(x86.SysTimerDelete, uint64(got)); err != nil {
			return fmt.Errorf("%s: delete timer %d made to use up its id: %w", name, got, err)
		}
		switch {
		case explicit:
			return fmt.Errorf("%s: the kernel gave id %d though asked for %d", name, got, want)
		case got > want:
			return fmt.Errorf("%s cannot get its id back: this kernel hands out id %d next and cannot be asked for one (PR_TIMER_CREATE_RESTORE_IDS needs Linux 6.15)", name, got)
		case skipped >= maxTimerIDsToSkip:
			return fmt.Errorf("%s cannot get its id back: more than %d unused ids below it on a kernel that cannot be asked for one (PR_TIMER_CREATE_RESTORE_IDS needs Linux 6.15)", name, maxTimerIDsToSkip)
		}
	}
}

// armTimer sets the time left and the interval of a created timer.
func armTimer(t Thread, pt *timer.PosixTimerEntry) error {
	iv := uapi.Timespec{Sec: int64(pt.GetIsec()), Nsec: int64(pt.GetInsec())}
	v := uapi.Timespec{Sec: int64(pt.GetVsec()), Nsec: int64(pt.GetVnsec())}
	if v == (uapi.Timespec{}) {
		if iv == (uapi.Timespec{}) {
			return nil
		}
		v = iv // fired, waiting for its re-arm (see itimers)
	}
	p, err := t.Put(uapi.Itimerspec{Interval: iv, Value: v}.Bytes())
	if err != nil {
		return err
	}
	if _, err := t.Syscall(x86.SysTimerSettime, uint64(pt.GetItId()), 0, p, 0); err != nil {
		return fmt.Errorf("POSIX timer %d: timer_settime(%d.%09d s, interval %d.%09d s): %w", pt.GetItId(), v.Sec, v.Nsec, iv.Sec, iv.Nsec, err)
	}
	return nil
}
