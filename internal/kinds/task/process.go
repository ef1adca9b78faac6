//go:build linux && amd64

package task

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	criucore "github.com/checkpoint-restore/go-criu/v8/crit/images/criu-core"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/rlimit"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/procfs"
	"github.com/ckpt/ckpt/internal/uapi"
)

// This file holds the small attributes of a process: personality,
// rlimits, the thread names (comm), the child-subreaper flag, dumpable
// and oom_score_adj.

// readU32 runs a call that writes a u32 at Scratch and returns that value.
func readU32(t Thread, call func(addr uint64) error) (uint32, error) {
	if err := call(t.Scratch()); err != nil {
		return 0, err
	}
	b, err := t.ReadMem(t.Scratch(), 4)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}

// personality is the execution domain (personality(2)).
type personality struct{}

func (personality) Name() string { return "personality" }
func (personality) Stage() Stage { return StageProcess }

func (personality) Collect(t Thread, e Entry) error {
	p, err := procfs.ReadPersonality(t.Pid())
	if err != nil {
		return err
	}
	e.Core.Tc.Personality = proto.Uint32(p)
	return nil
}

func (personality) Restore(t Thread, e Entry) error {
	p := e.Core.GetTc().GetPersonality()
	if _, err := t.Syscall(x86.SysPersonality, uint64(p)); err != nil {
		return fmt.Errorf("personality %#x: %w", p, err)
	}
	return nil
}

// rlimits are the 16 resource limits.
type rlimits struct{}

func (rlimits) Name() string { return "rlimits" }
func (rlimits) Stage() Stage { return StageProcess }

// numRlimits is RLIM_NLIMITS (include/uapi/asm-generic/resource.h).
const numRlimits = 16

func (rlimits) Collect(t Thread, e Entry) error {
	lims, err := procfs.ReadLimits(t.Pid())
	if err != nil {
		return err
	}
	var rl []*rlimit.RlimitEntry
	for r := 0; r < numRlimits; r++ {
		l, ok := lims[r]
		if !ok {
			return fmt.Errorf("/proc/%d/limits lacks resource %d", t.Pid(), r)
		}
		rl = append(rl, &rlimit.RlimitEntry{Cur: proto.Uint64(l.Cur), Max: proto.Uint64(l.Max)})
	}
	e.Core.Tc.Rlimits = &criucore.TaskRlimitsEntry{Rlimits: rl}
	return nil
}

func (rlimits) Restore(t Thread, e Entry) error {
	cur, err := procfs.ReadLimits(t.Pid())
	if err != nil {
		return err
	}
	for res, l := range e.Core.GetTc().GetRlimits().GetRlimits() {
		want := procfs.Rlimit{Cur: l.GetCur(), Max: l.GetMax()}
		if c, ok := cur[res]; ok && c == want {
			continue
		}
		p, err := t.Put(uapi.Rlimit64{Cur: want.Cur, Max: want.Max}.Bytes())
		if err != nil {
			return err
		}
		if _, err := t.Syscall(x86.SysPrlimit64, 0, uint64(res), p, 0); err != nil {
			if c, ok := cur[res]; ok && want.Max > c.Max && errors.Is(err, unix.EPERM) {
				return fmt.Errorf("rlimit %d: the hard limit %d is above this machine's %d, and raising it needs CAP_SYS_RESOURCE, which ckpt lacks", res, want.Max, c.Max)
			}
			return fmt.Errorf("rlimit %d to %d/%d: %w", res, want.Cur, want.Max, err)
		}
	}
	return nil
}

// comm is each thread's name (PR_SET_NAME); the leader's is the
// process's too.
type comm struct{}

func (comm) Name() string { return "comm" }
func (comm) Stage() Stage { return StageThread }

func (comm) Collect(t Thread, e Entry) error {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/comm", t.Pid(), t.Tid()))
	if err != nil {
		return err
	}
	c := strings.TrimSuffix(string(b), "\n")
	e.Core.ThreadCore.Comm = proto.String(c)
	if t.Leader() {
		e.Core.Tc.Comm = proto.String(c)
	}
	return nil
}

func (comm) Restore(t Thread, e Entry) error {
	c := e.Core.GetThreadCore().GetComm()
	if c == "" {
		c = e.Core.GetTc().GetComm()
	}
	if c == "" {
		return nil
	}
	p, err := t.Put(append([]byte(c), 0))
	if err != nil {
		return err
	}
	if _, err := t.Syscall(x86.SysPrctl, unix.PR_SET_NAME, p); err != nil {
		return fmt.Errorf("prctl(PR_SET_NAME, %q): %w", c, err)
	}
	return nil
}

// subreaper is PR_SET_CHILD_SUBREAPER.
type subreaper struct{}

func (subreaper) Name() string { return "child subreaper" }
func (subreaper) Stage() Stage { return StageProcess }

func (subreaper) Collect(t Thread, e Entry) error {
	v, err := readU32(t, func(addr uint64) error {
		_, err := t.Syscall(x86.SysPrctl, unix.PR_GET_CHILD_SUBREAPER, addr)
		return err
	})
	if err != nil {
		return fmt.Errorf("prctl(PR_GET_CHILD_SUBREAPER): %w", err)
	}
	e.Core.Tc.ChildSubreaper = proto.Bool(v != 0)
	return nil
}

func (subreaper) Restore(t Thread, e Entry) error {
	if !e.Core.GetTc().GetChildSubreaper() {
		return nil
	}
	if _, err := t.Syscall(x86.SysPrctl, unix.PR_SET_CHILD_SUBREAPER, 1); err != nil {
		return fmt.Errorf("prctl(PR_SET_CHILD_SUBREAPER): %w", err)
	}
	return nil
}

// dumpable is the mm's dumpable flag, set after every thread's
// credentials, since a change of credentials resets it.
type dumpable struct{}

func (dumpable) Name() string { return "dumpable" }
func (dumpable) Stage() Stage { return StageAfterCreds }

func (dumpable) Collect(t Thread, e Entry) error {
	v, err := t.Syscall(x86.SysPrctl, unix.PR_GET_DUMPABLE)
	if err != nil {
		return fmt.Errorf("prctl(PR_GET_DUMPABLE): %w", err)
	}
	e.MM.Dumpable = proto.Int32(int32(v))
	return nil
}

func (dumpable) Restore(t Thread, e Entry) error {
	d := e.MM.GetDumpable()
	if _, err := t.Syscall(x86.SysPrctl, unix.PR_SET_DUMPABLE, uint64(d)); err != nil {
		return fmt.Errorf("prctl(PR_SET_DUMPABLE, %d): %w", d, err)
	}
	return nil
}

// oomScoreAdj is /proc/PID/oom_score_adj. A restore sets it where it
// differs from what the new task inherited from ckpt.
type oomScoreAdj struct{}

func (oomScoreAdj) Name() string { return "oom_score_adj" }
func (oomScoreAdj) Stage() Stage { return StageAfterCreds }

func readOomScoreAdj(pid int) (int32, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/oom_score_adj", pid))
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 32)
	return int32(v), err
}

func (oomScoreAdj) Collect(t Thread, e Entry) error {
	v, err := readOomScoreAdj(t.Pid())
	if err != nil {
		return fmt.Errorf("oom_score_adj: %w", err)
	}
	e.Core.Tc.OomScoreAdj = proto.Int32(v)
	return nil
}

func (oomScoreAdj) Restore(t Thread, e Entry) error {
	tc := e.Core.GetTc()
	if tc.OomScoreAdj == nil {
		return nil
	}
	want := tc.GetOomScoreAdj()
	cur, err := readOomScoreAdj(t.Pid())
	if err != nil {
		return fmt.Errorf("oom_score_adj: %w", err)
	}
	if cur == want {
		return nil
	}
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/oom_score_adj", t.Pid()), []byte(strconv.Itoa(int(want))), 0); err != nil {
		if want < cur {
			return fmt.Errorf("oom_score_adj %d: lowering it below ckpt's %d needs CAP_SYS_RESOURCE: %w", want, cur, err)
		}
		return fmt.Errorf("oom_score_adj %d: %w", want, err)
	}
	return nil
}
