//go:build linux && amd64

// Package ptrace is the only caller of ptrace(2) in ckpt. Linux accepts
// ptrace requests for a tracee only from the OS thread that attached it,
// so a Tracer runs every request on one goroutine locked to one OS thread;
// callers hand it work with Run, which gives them a Session: the handles
// of traced threads (Thread), whose methods are the ptrace requests, and
// the undo stack of the run.
package ptrace

import (
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"

	"golang.org/x/sys/unix"
)

// Tracer owns one locked OS thread on which all tracing happens.
type Tracer struct {
	work chan func()
	done chan struct{}
	tid  int // the locked OS thread
}

// NewTracer starts the tracer thread.
func NewTracer() *Tracer {
	t := &Tracer{work: make(chan func()), done: make(chan struct{})}
	started := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		t.tid = unix.Gettid()
		close(started)
		for f := range t.work {
			f()
		}
		// Unlocked, not ended: a process started from this thread (a
		// restored task) would get its pdeath_signal when the thread
		// that created it exits. Every tracee is gone or detached here.
		runtime.UnlockOSThread()
		close(t.done)
	}()
	<-started
	return t
}

// do runs fn on the tracer thread and returns its error. A panic in fn
// is returned as a *PanicError, with its stack: the tracer thread must
// survive it, and the stack is all there is to find the bug by.
func (t *Tracer) do(fn func() error) error {
	errc := make(chan error, 1)
	t.work <- func() {
		defer func() {
			if r := recover(); r != nil {
				// debug.Stack here still shows the frames that panicked.
				errc <- &PanicError{Value: r, Stack: debug.Stack()}
			}
		}()
		errc <- fn()
	}
	return <-errc
}

// Run runs fn on the tracer thread with a new Session. Everything that
// attaches to, waits for or drives a tracee, and every process started to
// be traced, must run inside Run. fn registers in the session's undo
// stack what it changes, and when fn returns an error or panics, the
// stack is unwound before Run returns, on the tracer thread that owns the
// tracees. The error returned keeps fn's error (or the *PanicError) and
// adds what could not be undone. When fn succeeds the steps left are
// dropped: fn finished them.
func (t *Tracer) Run(fn func(s *Session) error) error {
	return t.do(func() (err error) {
		u := &Undo{}
		defer func() {
			if r := recover(); r != nil {
				err = &PanicError{Value: r, Stack: debug.Stack()}
			}
			if err != nil {
				if uerr := u.Unwind(); uerr != nil {
					err = errors.Join(err, fmt.Errorf("undo: %w", uerr))
				}
			}
		}()
		return fn(&Session{Undo: u, tr: t})
	})
}

// Close stops the tracer goroutine. Callers detach or kill their tracees
// before: the OS thread goes back to the Go runtime.
func (t *Tracer) Close() {
	close(t.work)
	<-t.done
}

// PanicError is a panic on the tracer thread, turned into an error after
// the run's undo: Value is what was passed to panic, Stack the
// goroutine's stack where it panicked.
type PanicError struct {
	Value any
	Stack []byte
}

// Error names the panic and ends with its stack, so that a user who
// reports it hands over where it happened.
func (p *PanicError) Error() string {
	return fmt.Sprintf("panic: %v\n\n%s", p.Value, p.Stack)
}

// Unwrap gives the panic value when it is an error (a runtime error, say).
func (p *PanicError) Unwrap() error {
	if e, ok := p.Value.(error); ok {
		return e
	}
	return nil
}
