//go:build linux && amd64

package task

import (
	"fmt"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/timer"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/uapi"
)

// itimers are the three interval timers of setitimer(2): ITIMER_REAL,
// ITIMER_VIRTUAL and ITIMER_PROF, process-wide, kept in CRIU's
// task_timers_entry (real, virt, prof). An ia32 task's are read and set
// with the ia32 calls and their 32-bit struct old_itimerval32. They are
// set in the leader once every thread exists, as late as a process-wide
// attribute can be, so that the time the rest of the restore takes does
// not run them down.
//
// A periodic ITIMER_REAL that fired while SIGALRM was not yet dequeued
// (blocked, or the task was frozen first) shows a value of 0: the kernel
// re-arms it only when the signal is dequeued (kernel/signal.c,
// dequeue_signal). setitimer with a value of 0 would disarm it, so such a
// timer comes back armed for one interval, when it would fire next at the
// latest.
type itimers struct{}

func (itimers) Name() string { return "interval timers" }
func (itimers) Stage() Stage { return StageAfterCreds }

// itimerWhich are the timers in the order of task_timers_entry.
var itimerWhich = []struct {
	which int
	name  string
}{{unix.ITIMER_REAL, "ITIMER_REAL"}, {unix.ITIMER_VIRTUAL, "ITIMER_VIRTUAL"}, {unix.ITIMER_PROF, "ITIMER_PROF"}}

// timersEntry returns the task's task_timers_entry, made with its three
// required itimers disarmed if the image has none yet.
func timersEntry(e Entry) *timer.TaskTimersEntry {
	if e.Core.Tc.Timers == nil {
		zero := func() *timer.ItimerEntry {
			return &timer.ItimerEntry{Isec: proto.Uint64(0), Iusec: proto.Uint64(0), Vsec: proto.Uint64(0), Vusec: proto.Uint64(0)}
		}
		e.Core.Tc.Timers = &timer.TaskTimersEntry{Real: zero(), Virt: zero(), Prof: zero()}
	}
	return e.Core.Tc.Timers
}

// itimerCall is getitimer or setitimer for the task's ABI.
func itimerCall(t Thread) func(x86.Syscall, ...uint64) (uint64, error) {
	if t.Compat() {
		return t.Syscall32
	}
	return t.Syscall
}

func (itimers) Collect(t Thread, e Entry) error {
	size := uapi.SizeofItimerval
	if t.Compat() {
		size = uapi.SizeofItimerval32
	}
	var got [3]*timer.ItimerEntry
	for i, w := range itimerWhich {
		if _, err := itimerCall(t)(x86.SysGetitimer, uint64(w.which), t.Scratch()); err != nil {
			return fmt.Errorf("getitimer(%s): %w", w.name, err)
		}
		b, err := t.ReadMem(t.Scratch(), size)
		if err != nil {
			return err
		}
		v, err := uapi.DecodeItimerval(b, t.Compat())
		if err != nil {
			return err
		}
		got[i] = &timer.ItimerEntry{
			Isec: proto.Uint64(uint64(v.Interval.Sec)), Iusec: proto.Uint64(uint64(v.Interval.Usec)),
			Vsec: proto.Uint64(uint64(v.Value.Sec)), Vusec: proto.Uint64(uint64(v.Value.Usec)),
		}
	}
	te := timersEntry(e)
	te.Real, te.Virt, te.Prof = got[0], got[1], got[2]
	return nil
}

func (itimers) Restore(t Thread, e Entry) error {
	te := e.Core.GetTc().GetTimers()
	if te == nil {
		return nil
	}
	for i, it := range []*timer.ItimerEntry{te.GetReal(), te.GetVirt(), te.GetProf()} {
		w := itimerWhich[i]
		iv := uapi.Timeval{Sec: int64(it.GetIsec()), Usec: int64(it.GetIusec())}
		v := uapi.Timeval{Sec: int64(it.GetVsec()), Usec: int64(it.GetVusec())}
		if v == (uapi.Timeval{}) && iv == (uapi.Timeval{}) {
			continue // disarmed, as in the new task
		}
		if v == (uapi.Timeval{}) {
			v = iv // fired, waiting for its re-arm
		}
		p, err := t.Put(uapi.Itimerval{Interval: iv, Value: v}.Bytes(t.Compat()))
		if err != nil {
			return err
		}
		if _, err := itimerCall(t)(x86.SysSetitimer, uint64(w.which), p, 0); err != nil {
			return fmt.Errorf("setitimer(%s, %d.%06d s, interval %d.%06d s): %w", w.name, v.Sec, v.Usec, iv.Sec, iv.Usec, err)
		}
	}
	return nil
}
