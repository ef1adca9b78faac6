//go:build linux && amd64

// Package ptrace is the only caller of ptrace(2) in ckpt. Linux accepts
// ptrace requests for a tracee only from the OS thread that attached it,
// so a Tracer runs every request on one goroutine locked to one OS thread;
// callers hand it work with Do or Run.
package ptrace

import (
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
)

// Tracer owns one locked OS thread on which all tracing happens.
type Tracer struct {
	work chan func()
	done chan struct{}
}

// NewTracer starts the tracer thread.
func NewTracer() *Tracer {
	t := &Tracer{work: make(chan func()), done: make(chan struct{})}
	go func() {
		runtime.LockOSThread()
		for f := range t.work {
			f()
		}
		// Unlocked, not ended: a process started from this thread (a
		// restored task) would get its pdeath_signal when the thread
		// that created it exits. Every tracee is gone or detached here.
		runtime.UnlockOSThread()
		close(t.done)
	}()
	return t
}

// Do runs fn on the tracer thread and returns its error. Everything that
// attaches to, waits for or drives a tracee, and every process started to
// be traced, must run inside Do. A panic in fn is returned as a
// *PanicError, with its stack: the tracer thread must survive it, and
// the stack is all there is to find the bug by.
func (t *Tracer) Do(fn func() error) error {
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

// Run is Do with an undo stack: fn registers in u what it changes, and
// when fn returns an error or panics, u is unwound before Run returns,
// on the tracer thread that owns the tracees. The error returned keeps
// fn's error (or the *PanicError) and adds what could not be undone.
// When fn succeeds the steps left in u are dropped: fn finished them.
func (t *Tracer) Run(fn func(u *Undo) error) error {
	return t.Do(func() (err error) {
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
		return fn(u)
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
