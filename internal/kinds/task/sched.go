//go:build linux && amd64

package task

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/ckerr"
)

// sched is a thread's scheduling: its nice value, policy and real-time
// priority, in CRIU's thread_core_entry.sched_nice, sched_policy (with
// SCHED_RESET_ON_FORK as sched_getscheduler(2) reports it) and
// sched_prio. Both sides work from outside the thread, on its TID in
// ckpt's PID namespace: sched_getattr(2) and getpriority(2) at dump,
// setpriority(2) and sched_setattr(2) at restore, with ckpt's
// CAP_SYS_NICE, whatever credentials the thread has by then.
type sched struct{}

func (sched) Name() string { return "scheduling policy and nice value" }
func (sched) Stage() Stage { return StageThread }

// policyName names a SCHED_* policy for messages.
func policyName(p uint32) string {
	names := map[uint32]string{
		unix.SCHED_NORMAL: "SCHED_OTHER", unix.SCHED_FIFO: "SCHED_FIFO", unix.SCHED_RR: "SCHED_RR",
		unix.SCHED_BATCH: "SCHED_BATCH", unix.SCHED_IDLE: "SCHED_IDLE", unix.SCHED_DEADLINE: "SCHED_DEADLINE",
	}
	n, ok := names[p&^unix.SCHED_RESET_ON_FORK]
	if !ok {
		n = fmt.Sprintf("policy %d", p&^unix.SCHED_RESET_ON_FORK)
	}
	if p&unix.SCHED_RESET_ON_FORK != 0 {
		n += "|SCHED_RESET_ON_FORK"
	}
	return n
}

// readNice is the thread's nice value. sched_getattr reports it only for
// the fair policies; getpriority for every one. The raw syscall answers
// 20-nice (kernel/sys.c).
func readNice(tid int) (int32, error) {
	v, err := unix.Getpriority(unix.PRIO_PROCESS, tid)
	if err != nil {
		return 0, err
	}
	return int32(20 - v), nil
}

func (sched) Collect(t Thread, e Entry) error {
	a, err := unix.SchedGetAttr(t.Tid(), 0)
	if err != nil {
		return fmt.Errorf("sched_getattr: %w", err)
	}
	if a.Policy == unix.SCHED_DEADLINE {
		return ckerr.Unsupported(t.Pid(), fmt.Sprintf("thread %d's scheduling policy SCHED_DEADLINE", t.Tid()), "deadline scheduling (runtime, deadline, period) is not supported yet: change the thread's policy before the dump")
	}
	nice, err := readNice(t.Tid())
	if err != nil {
		return fmt.Errorf("getpriority: %w", err)
	}
	policy := a.Policy
	if a.Flags&unix.SCHED_FLAG_RESET_ON_FORK != 0 {
		policy |= unix.SCHED_RESET_ON_FORK
	}
	tc := e.Core.ThreadCore
	tc.SchedNice = proto.Int32(nice)
	tc.SchedPolicy = proto.Uint32(policy)
	tc.SchedPrio = proto.Uint32(a.Priority)
	return nil
}

func (sched) Restore(t Thread, e Entry) error {
	tc := e.Core.GetThreadCore()
	if tc.SchedPolicy == nil && tc.SchedNice == nil {
		return nil // a dump that did not record it
	}
	nice, policy, prio := tc.GetSchedNice(), tc.GetSchedPolicy(), tc.GetSchedPrio()
	what := fmt.Sprintf("%s priority %d nice %d", policyName(policy), prio, nice)
	// The nice value first: sched_setattr sets it only for the fair
	// policies (SCHED_OTHER, SCHED_BATCH), and an RT or SCHED_IDLE
	// thread keeps one for when it goes back to them.
	if err := unix.Setpriority(unix.PRIO_PROCESS, t.Tid(), int(nice)); err != nil {
		return schedError(what, err)
	}
	a := &unix.SchedAttr{
		Size:     unix.SizeofSchedAttr,
		Policy:   policy &^ unix.SCHED_RESET_ON_FORK,
		Nice:     nice,
		Priority: prio,
	}
	if policy&unix.SCHED_RESET_ON_FORK != 0 {
		a.Flags |= unix.SCHED_FLAG_RESET_ON_FORK
	}
	if err := unix.SchedSetAttr(t.Tid(), a, 0); err != nil {
		return schedError(what, err)
	}
	return nil
}

func schedError(what string, err error) error {
	if errors.Is(err, unix.EPERM) {
		return fmt.Errorf("scheduling %s: a real-time policy or a lower nice value needs CAP_SYS_NICE (or a high enough RLIMIT_RTPRIO/RLIMIT_NICE): %w", what, err)
	}
	return fmt.Errorf("scheduling %s: %w", what, err)
}
