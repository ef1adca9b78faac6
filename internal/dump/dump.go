// Package dump is the checkpoint path: it freezes a task with ptrace,
// collects everything the kernel knows about it (registers, memory,
// signals, files, credentials, ...) and writes CRIU-format images. A dump
// that fails leaves the task as it was: running, untraced, unchanged.
package dump

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/internal/ptrace"
)

// Options control a dump.
type Options struct {
	// Pid is the task to dump.
	Pid int
	// ImagesDir receives the images; it is created if missing.
	ImagesDir string
	// LeaveRunning lets the task go on after the dump instead of killing it.
	LeaveRunning bool
	// ShellJob allows stdio (fds 0-2) that is a tty or a pipe; restore
	// then gives the task the stdio of whoever runs it.
	ShellJob bool
	// FreezeTimeout bounds the wait for the task to stop (0: 10 s).
	FreezeTimeout time.Duration
	// Logf, if set, receives progress messages.
	Logf func(format string, args ...any)
}

// Stats are measurements of one dump.
type Stats struct {
	FrozenFor    time.Duration // from the stop of the task to its kill or release
	PagesWritten uint64        // pages written to the pages image
	ImageBytes   int64         // size of all image files written
}

func (o *Options) logf(format string, args ...any) {
	if o.Logf != nil {
		o.Logf(format, args...)
	}
}

// Dump checkpoints the task opts.Pid into opts.ImagesDir.
func Dump(opts Options) (*Stats, error) {
	if opts.Pid <= 0 {
		return nil, fmt.Errorf("dump: invalid pid %d", opts.Pid)
	}
	if err := os.MkdirAll(opts.ImagesDir, 0o700); err != nil {
		return nil, fmt.Errorf("dump: images directory: %w", err)
	}
	before, _ := os.ReadDir(opts.ImagesDir)
	existed := map[string]bool{}
	for _, e := range before {
		existed[e.Name()] = true
	}

	// Everything that can be checked without touching the task is checked
	// first, so most refusals never stop it.
	t, err := inspect(&opts)
	if err != nil {
		return nil, fmt.Errorf("dump task %d: %w", opts.Pid, err)
	}

	tr := ptrace.NewTracer()
	defer tr.Close()
	var stats *Stats
	err = tr.Do(func() error {
		var err error
		stats, err = t.freezeAndDump()
		return err
	})
	if err != nil {
		// Remove what this dump wrote; the task was released untouched.
		after, _ := os.ReadDir(opts.ImagesDir)
		for _, e := range after {
			if !existed[e.Name()] {
				_ = os.Remove(filepath.Join(opts.ImagesDir, e.Name()))
			}
		}
		return nil, fmt.Errorf("dump task %d: %w", opts.Pid, err)
	}
	return stats, nil
}

// freezeAndDump runs on the tracer thread.
func (t *task) freezeAndDump() (*Stats, error) {
	o := t.opts
	if err := ptrace.Seize(o.Pid, unix.PTRACE_O_TRACESYSGOOD); err != nil {
		return nil, fmt.Errorf("seize: %w", err)
	}
	start := time.Now()
	if err := t.stop(); err != nil {
		_ = ptrace.Detach(o.Pid, 0)
		return nil, err
	}
	o.logf("task %d stopped", o.Pid)
	stats, err := t.collectAndWrite()
	if err != nil {
		if rerr := t.release(); rerr != nil {
			err = errors.Join(err, fmt.Errorf("release task: %w", rerr))
		}
		return nil, err
	}
	if o.LeaveRunning {
		if err := t.release(); err != nil {
			return nil, fmt.Errorf("release task after dump: %w", err)
		}
		o.logf("task %d left running", o.Pid)
	} else {
		if err := unix.Kill(o.Pid, unix.SIGKILL); err != nil {
			return nil, fmt.Errorf("kill dumped task: %w", err)
		}
		// The tracer sees the death; the real parent reaps.
		for {
			st, err := ptrace.Wait(o.Pid)
			if err != nil || st.Exited() {
				break
			}
			_ = ptrace.Cont(o.Pid, 0)
		}
		o.logf("task %d killed after dump", o.Pid)
	}
	stats.FrozenFor = time.Since(start)
	return stats, nil
}

// stop interrupts the seized task and waits until it is in a ptrace stop.
// A signal that arrives meanwhile is delivered as the task would have.
func (t *task) stop() error {
	pid := t.opts.Pid
	if err := ptrace.Interrupt(pid); err != nil {
		return fmt.Errorf("interrupt: %w", err)
	}
	timeout := t.opts.FreezeTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	deadline := time.Now().Add(timeout)
	for {
		st, ok, err := ptrace.WaitNohang(pid)
		if err != nil {
			return err
		}
		if !ok {
			if time.Now().After(deadline) {
				return fmt.Errorf("task did not stop within %v", timeout)
			}
			time.Sleep(100 * time.Microsecond)
			continue
		}
		if st.Exited() {
			return fmt.Errorf("task ended while being stopped: %v", st)
		}
		if st.IsEventStop() {
			return nil
		}
		if sig := st.Signal(); sig != 0 {
			if err := ptrace.Cont(pid, int(sig)); err != nil {
				return fmt.Errorf("pass on %v: %w", sig, err)
			}
		}
	}
}

// release undoes what the dump changed and detaches.
func (t *task) release() error {
	var errs []error
	if t.inj != nil {
		if err := t.inj.End(); err != nil {
			errs = append(errs, err)
		}
		t.inj = nil
	}
	if err := ptrace.Detach(t.opts.Pid, 0); err != nil {
		errs = append(errs, fmt.Errorf("detach: %w", err))
	}
	return errors.Join(errs...)
}
