// Package ptrace is the only caller of ptrace(2) in ckpt. Linux accepts
// ptrace requests for a tracee only from the OS thread that attached it,
// so a Tracer runs every request on one goroutine locked to one OS thread;
// callers hand it work with Do.
package ptrace

import (
	"runtime"
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
// be traced, must run inside Do.
func (t *Tracer) Do(fn func() error) error {
	errc := make(chan error, 1)
	t.work <- func() {
		defer func() {
			if r := recover(); r != nil {
				errc <- panicError{r}
				return
			}
		}()
		errc <- fn()
	}
	return <-errc
}

// Close stops the tracer goroutine. Callers detach or kill their tracees
// before: the OS thread goes back to the Go runtime.
func (t *Tracer) Close() {
	close(t.work)
	<-t.done
}

type panicError struct{ v any }

func (p panicError) Error() string { return "tracer panic: " + toString(p.v) }

func toString(v any) string {
	if e, ok := v.(error); ok {
		return e.Error()
	}
	if s, ok := v.(string); ok {
		return s
	}
	return "unknown"
}
