package task

import (
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	criucore "github.com/checkpoint-restore/go-criu/v8/crit/images/criu-core"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/timer"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/uapi"
)

// An ia32 task's itimers are read with the ia32 getitimer and its 16-byte
// struct, and set again with the ia32 setitimer; a periodic timer that
// shows no time left comes back armed for one interval.
func TestItimersCompat(t *testing.T) {
	f := &fakeThread{leader: true, compat: true, mem: make([]byte, x86.PageSize)}
	// interval 4 s, value 0: ITIMER_REAL fired, SIGALRM not dequeued yet.
	copy(f.mem, uapi.Itimerval{Interval: uapi.Timeval{Sec: 4}}.Bytes(true))
	c := &criucore.CoreEntry{Tc: &criucore.TaskCoreEntry{}}
	if err := (itimers{}).Collect(f, Entry{Core: c}); err != nil {
		t.Fatal(err)
	}
	r := c.Tc.GetTimers().GetReal()
	if r.GetIsec() != 4 || r.GetVsec() != 0 || c.Tc.GetTimers().GetProf().GetIsec() != 4 {
		t.Fatalf("collected %v", c.Tc.GetTimers())
	}
	f.calls = nil
	if err := (itimers{}).Restore(f, Entry{Core: c}); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("[32:%d 32:%d 32:%d]", x86.SysSetitimer, x86.SysSetitimer, x86.SysSetitimer)
	if got := fmt.Sprint(f.calls); got != want {
		t.Errorf("calls %s, want %s", got, want)
	}
	v, err := uapi.DecodeItimerval(f.mem, true)
	if err != nil || v.Value.Sec != 4 || v.Interval.Sec != 4 {
		t.Errorf("set %+v, %v; want armed for 4 s with 4 s interval", v, err)
	}
}

// kernelTimers is a fake task whose timer_create hands out ids as a
// kernel does: the asked-for id under PR_TIMER_CREATE_RESTORE_IDS (if it
// has it), else the next in order.
type kernelTimers struct {
	*fakeThread
	hasPrctl, restoreIDs bool
	next                 int32
	live                 map[int32]bool
	settime              []int32
}

func (k *kernelTimers) Syscall(s x86.Syscall, args ...uint64) (uint64, error) {
	k.calls = append(k.calls, s.String())
	switch s {
	case x86.SysPrctl:
		if !k.hasPrctl {
			return 0, unix.EINVAL
		}
		k.restoreIDs = args[1] == unix.PR_TIMER_CREATE_RESTORE_IDS_ON
	case x86.SysTimerCreate:
		off := args[2] - fakeScratch
		id := k.next
		if k.restoreIDs {
			id = int32(binary.LittleEndian.Uint32(k.mem[off:]))
		}
		if k.live[id] {
			return 0, unix.EBUSY
		}
		k.live[id] = true
		k.next = id + 1
		binary.LittleEndian.PutUint32(k.mem[off:], uint32(id))
	case x86.SysTimerDelete:
		delete(k.live, int32(args[0]))
	case x86.SysTimerSettime:
		k.settime = append(k.settime, int32(args[0]))
	}
	return 0, nil
}

func posixCore(ids ...uint32) *criucore.CoreEntry {
	te := &timer.TaskTimersEntry{}
	for _, id := range ids {
		te.Posix = append(te.Posix, &timer.PosixTimerEntry{
			ItId: proto.Uint32(id), ClockId: proto.Uint32(1), SiSigno: proto.Uint32(14), ItSigevNotify: proto.Uint32(0),
			SivalPtr: proto.Uint64(0), Overrun: proto.Uint32(0),
			Isec: proto.Uint64(1), Insec: proto.Uint64(0), Vsec: proto.Uint64(0), Vnsec: proto.Uint64(0),
		})
	}
	return &criucore.CoreEntry{Tc: &criucore.TaskCoreEntry{Timers: te}}
}

func TestPosixTimerIDs(t *testing.T) {
	for _, hasPrctl := range []bool{true, false} {
		k := &kernelTimers{fakeThread: &fakeThread{leader: true, mem: make([]byte, x86.PageSize)}, hasPrctl: hasPrctl, live: map[int32]bool{}}
		if err := (posixTimers{}).Restore(k, Entry{Core: posixCore(5, 0, 3)}); err != nil {
			t.Fatalf("prctl %v: %v", hasPrctl, err)
		}
		if fmt.Sprint(k.live) != "map[0:true 3:true 5:true]" {
			t.Errorf("prctl %v: timers %v, want 0, 3 and 5", hasPrctl, k.live)
		}
		// Periodic timers with no time left come back armed.
		if fmt.Sprint(k.settime) != "[0 3 5]" {
			t.Errorf("prctl %v: armed %v", hasPrctl, k.settime)
		}
		if k.restoreIDs {
			t.Errorf("prctl %v: PR_TIMER_CREATE_RESTORE_IDS left on", hasPrctl)
		}
	}
	// Without the prctl, an id below what the kernel hands out next
	// cannot be had: the restore fails naming the timer.
	k := &kernelTimers{fakeThread: &fakeThread{leader: true, mem: make([]byte, x86.PageSize)}, next: 7, live: map[int32]bool{}}
	err := (posixTimers{}).Restore(k, Entry{Core: posixCore(2)})
	if err == nil || !strings.Contains(err.Error(), "POSIX timer 2 cannot get its id back") {
		t.Errorf("got %v, want a refusal naming POSIX timer 2", err)
	}
	if len(k.live) != 0 {
		t.Errorf("timers left behind: %v", k.live)
	}
}

func TestThreadCPUClock(t *testing.T) {
	for c, want := range map[int32]bool{
		0: false, 1: false, 2: false, 3: true,
		-6:                         false, // the calling process's CPU-time clock: ~0<<3 | CPUCLOCK_SCHED
		-2:                         true,  // the calling thread's: with CPUCLOCK_PERTHREAD_MASK
		int32(^(100 << 3) | 4 | 2): false, // of thread 100, which it names
	} {
		if got := threadCPUClock(c); got != want {
			t.Errorf("threadCPUClock(%d) = %v, want %v", c, got, want)
		}
	}
}
