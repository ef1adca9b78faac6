//go:build linux && amd64

package ptrace

import (
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ShareCPU runs thread t and the tracer thread on one CPU, until the
// function it returns puts back both affinity masks. A tracee the tracer
// resumes then runs on the CPU where the tracer waits for it, so that an
// injected syscall costs context switches on one CPU rather than a
// wakeup of another, which a virtual machine pays dearly: on the 2-CPU
// VM measured, 1,026 injected vmsplice calls took 61-75 ms this way and
// 205-336 ms without (while the other CPU copied pages, test/bench
// DumpRestore1GiB). The CPU is the tracer's own, if t may run there,
// else the first both may. Call both on the tracer thread, and do not
// fork from it in between: a child would inherit the one-CPU mask.
func (t Thread) ShareCPU() (func() error, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	var tracerMask, taskMask unix.CPUSet
	if err := unix.SchedGetaffinity(0, &tracerMask); err != nil {
		return nil, fmt.Errorf("tracer's CPU affinity: %w", err)
	}
	if err := unix.SchedGetaffinity(t.Tid, &taskMask); err != nil {
		return nil, fmt.Errorf("thread %d: CPU affinity: %w", t.Tid, err)
	}
	cpu, err := currentCPU()
	if err != nil {
		return nil, err
	}
	if !taskMask.IsSet(cpu) || !tracerMask.IsSet(cpu) {
		cpu = -1
		for c := 0; c < len(taskMask)*64; c++ {
			if taskMask.IsSet(c) && tracerMask.IsSet(c) {
				cpu = c
				break
			}
		}
		if cpu < 0 {
			return nil, fmt.Errorf("thread %d: no CPU it and the tracer may both run on", t.Tid)
		}
	}
	var one unix.CPUSet
	one.Set(cpu)
	if err := unix.SchedSetaffinity(0, &one); err != nil {
		return nil, fmt.Errorf("pin the tracer to CPU %d: %w", cpu, err)
	}
	if err := unix.SchedSetaffinity(t.Tid, &one); err != nil {
		err = fmt.Errorf("thread %d: pin to CPU %d: %w", t.Tid, cpu, err)
		if rerr := unix.SchedSetaffinity(0, &tracerMask); rerr != nil {
			err = errors.Join(err, fmt.Errorf("put back the tracer's CPU affinity: %w", rerr))
		}
		return nil, err
	}
	return func() error {
		if err := t.check(); err != nil {
			return err
		}
		var errs []error
		if err := unix.SchedSetaffinity(t.Tid, &taskMask); err != nil && err != unix.ESRCH {
			errs = append(errs, fmt.Errorf("thread %d: put back CPU affinity: %w", t.Tid, err))
		}
		if err := unix.SchedSetaffinity(0, &tracerMask); err != nil {
			errs = append(errs, fmt.Errorf("put back the tracer's CPU affinity: %w", err))
		}
		return errors.Join(errs...)
	}, nil
}

// currentCPU is the CPU the calling thread runs on (getcpu(2)).
func currentCPU() (int, error) {
	var cpu uint32
	if _, _, e := unix.RawSyscall(unix.SYS_GETCPU, uintptr(unsafe.Pointer(&cpu)), 0, 0); e != 0 {
		return 0, fmt.Errorf("getcpu: %w", e)
	}
	return int(cpu), nil
}

// PinTracer keeps the tracer thread on the CPU it runs on until the
// function it returns puts its mask back, and returns the mask it had.
// Every process the tracer starts meanwhile, and their descendants,
// inherit the one-CPU mask: the tracees of a restore then run where the
// tracer waits for them, as with ShareCPU. Each must be given mask back
// (Thread.SetAffinity) before it is let go.
func (s *Session) PinTracer() (mask unix.CPUSet, unpin func() error, err error) {
	if tid := unix.Gettid(); tid != s.tr.tid {
		return mask, nil, fmt.Errorf("%w (pin the tracer from OS thread %d, the tracer is %d)", ErrWrongThread, tid, s.tr.tid)
	}
	if err := unix.SchedGetaffinity(0, &mask); err != nil {
		return mask, nil, fmt.Errorf("tracer's CPU affinity: %w", err)
	}
	cpu, err := currentCPU()
	if err != nil {
		return mask, nil, err
	}
	var one unix.CPUSet
	one.Set(cpu)
	if err := unix.SchedSetaffinity(0, &one); err != nil {
		return mask, nil, fmt.Errorf("pin the tracer to CPU %d: %w", cpu, err)
	}
	orig := mask
	return mask, func() error {
		if err := unix.SchedSetaffinity(0, &orig); err != nil {
			return fmt.Errorf("put back the tracer's CPU affinity: %w", err)
		}
		return nil
	}, nil
}

// SetAffinity sets the CPU affinity mask of the thread.
func (t Thread) SetAffinity(mask *unix.CPUSet) error {
	if err := t.check(); err != nil {
		return err
	}
	if err := unix.SchedSetaffinity(t.Tid, mask); err != nil {
		return fmt.Errorf("thread %d: set CPU affinity: %w", t.Tid, err)
	}
	return nil
}
