//go:build linux && amd64

package ptrace

import (
	"os/exec"
	"testing"

	"golang.org/x/sys/unix"
)

// withTracedChild starts a child that sleeps, seizes it in a tracer
// session and runs fn there with its handle; the child is killed after.
// Where a child cannot be traced here, the test is skipped.
func withTracedChild(t *testing.T, fn func(th Thread, pid int) error) {
	t.Helper()
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	pid := cmd.Process.Pid
	tr := NewTracer()
	defer tr.Close()
	var seizeErr error
	err := tr.Run(func(s *Session) error {
		th, err := s.Seize(pid, 0)
		if err != nil {
			seizeErr = err
			return nil
		}
		defer unix.PtraceDetach(pid)
		return fn(th, pid)
	})
	if err != nil {
		t.Fatal(err)
	}
	if seizeErr != nil {
		t.Skipf("cannot trace a child here: %v", seizeErr)
	}
}

// TestShareCPU: the tracee and the tracer thread run on one CPU, the one
// the tracer was on, until the returned function puts both masks back.
func TestShareCPU(t *testing.T) {
	withTracedChild(t, func(th Thread, pid int) error {
		var before, tracerBefore unix.CPUSet
		if err := unix.SchedGetaffinity(pid, &before); err != nil {
			return err
		}
		if err := unix.SchedGetaffinity(0, &tracerBefore); err != nil {
			return err
		}
		restore, err := th.ShareCPU()
		if err != nil {
			return err
		}
		var task, tracer unix.CPUSet
		if err := unix.SchedGetaffinity(pid, &task); err != nil {
			return err
		}
		if err := unix.SchedGetaffinity(0, &tracer); err != nil {
			return err
		}
		if task.Count() != 1 || task != tracer {
			t.Errorf("tracee on %d CPUs, tracer on %d; want both on the same one", task.Count(), tracer.Count())
		}
		if err := restore(); err != nil {
			return err
		}
		if err := unix.SchedGetaffinity(pid, &task); err != nil {
			return err
		}
		if err := unix.SchedGetaffinity(0, &tracer); err != nil {
			return err
		}
		if task != before || tracer != tracerBefore {
			t.Errorf("masks not put back: tracee on %d CPUs (was %d), tracer on %d (was %d)", task.Count(), before.Count(), tracer.Count(), tracerBefore.Count())
		}
		return nil
	})
}

// TestShareCPUOffThread: called off the tracer thread, ShareCPU changes
// nothing and says so.
func TestShareCPUOffThread(t *testing.T) {
	tr := NewTracer()
	defer tr.Close()
	var th Thread
	_ = tr.Run(func(s *Session) error { th = s.Adopt(1); return nil })
	if _, err := th.ShareCPU(); err == nil {
		t.Error("ShareCPU off the tracer thread gave no error")
	}
}

// TestPinTracer: the tracer thread runs on one CPU until unpin puts its
// mask back; a process it starts meanwhile inherits that one CPU.
func TestPinTracer(t *testing.T) {
	tr := NewTracer()
	defer tr.Close()
	err := tr.Run(func(s *Session) error {
		var before, pinned, child, after unix.CPUSet
		if err := unix.SchedGetaffinity(0, &before); err != nil {
			return err
		}
		mask, unpin, err := s.PinTracer()
		if err != nil {
			return err
		}
		if mask != before {
			t.Errorf("PinTracer returned a mask of %d CPUs, the tracer had %d", mask.Count(), before.Count())
		}
		if err := unix.SchedGetaffinity(0, &pinned); err != nil {
			return err
		}
		cmd := exec.Command("sleep", "30")
		if err := cmd.Start(); err != nil {
			return err
		}
		cerr := unix.SchedGetaffinity(cmd.Process.Pid, &child)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if cerr != nil {
			return cerr
		}
		if err := unpin(); err != nil {
			return err
		}
		if err := unix.SchedGetaffinity(0, &after); err != nil {
			return err
		}
		if pinned.Count() != 1 || child != pinned {
			t.Errorf("pinned tracer on %d CPUs, its child on %d; want both on the same one", pinned.Count(), child.Count())
		}
		if after != before {
			t.Errorf("unpin left the tracer on %d CPUs, it had %d", after.Count(), before.Count())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestShareCPUElsewhere: a tracee that may not run on the tracer's CPU
// is met on one both may run on; with none, ShareCPU changes nothing
// and says so.
func TestShareCPUElsewhere(t *testing.T) {
	var all unix.CPUSet
	if err := unix.SchedGetaffinity(0, &all); err != nil {
		t.Fatal(err)
	}
	var cpus []int
	for c := 0; c < len(all)*64; c++ {
		if all.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	if len(cpus) < 2 {
		t.Skip("needs two CPUs")
	}
	only := func(cs ...int) *unix.CPUSet {
		var s unix.CPUSet
		for _, c := range cs {
			s.Set(c)
		}
		return &s
	}
	withTracedChild(t, func(th Thread, pid int) error {
		var orig unix.CPUSet
		if err := unix.SchedGetaffinity(0, &orig); err != nil {
			return err
		}
		defer unix.SchedSetaffinity(0, &orig)
		// The tracer may run on both CPUs but runs on the first; the
		// tracee only on the second.
		if err := unix.SchedSetaffinity(0, only(cpus[0])); err != nil {
			return err
		}
		if err := unix.SchedSetaffinity(0, only(cpus[0], cpus[1])); err != nil {
			return err
		}
		if err := unix.SchedSetaffinity(pid, only(cpus[1])); err != nil {
			return err
		}
		restore, err := th.ShareCPU()
		if err != nil {
			return err
		}
		var task, tracer unix.CPUSet
		_ = unix.SchedGetaffinity(pid, &task)
		_ = unix.SchedGetaffinity(0, &tracer)
		if task != *only(cpus[1]) || tracer != *only(cpus[1]) {
			t.Errorf("tracee on %d CPUs, tracer on %d; want both on CPU %d", task.Count(), tracer.Count(), cpus[1])
		}
		if err := restore(); err != nil {
			return err
		}
		// No CPU in common: nothing changes.
		if err := unix.SchedSetaffinity(0, only(cpus[0])); err != nil {
			return err
		}
		if _, err := th.ShareCPU(); err == nil {
			t.Error("ShareCPU with no CPU in common gave no error")
		}
		_ = unix.SchedGetaffinity(pid, &task)
		_ = unix.SchedGetaffinity(0, &tracer)
		if task != *only(cpus[1]) || tracer != *only(cpus[0]) {
			t.Errorf("a refused ShareCPU changed the masks")
		}
		return nil
	})
}
