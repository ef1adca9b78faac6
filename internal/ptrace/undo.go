//go:build linux && amd64

package ptrace

import (
	"errors"
	"fmt"
	"runtime/debug"
)

// Undo is a stack of the changes a run made to tasks that are not its
// own: every seize, syscall injection, scratch mapping and created
// process pushes the step that takes it back, right after it happened.
// A run that fails, by an error or by a panic, unwinds the stack newest
// first (Tracer.Run does it), so that whatever the failure a dump leaves
// every task as it found it and a restore leaves nothing behind. A step
// that is finished on the normal path is run or dropped there through
// its *Step. An Undo belongs to the tracer thread, like the tracees.
type Undo struct {
	steps []*Step
}

// Step is one entry of an Undo.
type Step struct {
	what string
	fn   func() error
	done bool
}

// Push registers fn, which takes back what was just done; what names it
// in errors.
func (u *Undo) Push(what string, fn func() error) *Step {
	s := &Step{what: what, fn: fn}
	u.steps = append(u.steps, s)
	return s
}

// Run takes the change back now (the normal path); it does nothing for a
// step already run or dropped.
func (s *Step) Run() error {
	if s == nil || s.done {
		return nil
	}
	s.done = true
	if err := s.fn(); err != nil {
		return fmt.Errorf("%s: %w", s.what, err)
	}
	return nil
}

// Drop forgets the step without running it: what it would take back is
// gone or finished another way.
func (s *Step) Drop() {
	if s != nil {
		s.done = true
	}
}

// Mark returns the current depth, for UnwindTo.
func (u *Undo) Mark() int { return len(u.steps) }

// Unwind runs every step not yet run or dropped, newest first, and
// empties the stack.
func (u *Undo) Unwind() error { return u.UnwindTo(0) }

// UnwindTo runs, newest first, the steps pushed since Mark returned m.
// Every step runs even when one fails or panics: one task that cannot be
// put back is no reason to leave the others stopped.
func (u *Undo) UnwindTo(m int) error {
	var errs []error
	for len(u.steps) > m {
		s := u.steps[len(u.steps)-1]
		u.steps = u.steps[:len(u.steps)-1]
		if err := s.runGuarded(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (s *Step) runGuarded() (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s: %w", s.what, &PanicError{Value: r, Stack: debug.Stack()})
		}
	}()
	return s.Run()
}

// Commit forgets every step: the run succeeded and what it did stays
// (a restored tree runs on, a dumped tree was killed).
func (u *Undo) Commit() { u.steps = nil }
