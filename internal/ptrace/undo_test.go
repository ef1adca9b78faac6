package ptrace

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestRunUnwindsOnPanic(t *testing.T) {
	tr := NewTracer()
	defer tr.Close()
	var order []string
	err := tr.Run(func(u *Session) error {
		u.Push("first", func() error { order = append(order, "first"); return nil })
		done := u.Push("done", func() error { order = append(order, "done"); return nil })
		if err := done.Run(); err != nil {
			return err
		}
		u.Push("failing", func() error { order = append(order, "failing"); return errors.New("cannot") })
		u.Push("panicking", func() error { panic("in undo") })
		u.Push("last", func() error { order = append(order, "last"); return nil })
		panic("boom")
	})
	var pe *PanicError
	if !errors.As(err, &pe) || pe.Value != "boom" || !strings.Contains(string(pe.Stack), "undo_test.go") {
		t.Fatalf("Run: %v; want a *PanicError of boom with its stack", err)
	}
	if !strings.Contains(err.Error(), "failing: cannot") || !strings.Contains(err.Error(), "panicking: panic: in undo") {
		t.Errorf("the undo errors are not kept: %v", err)
	}
	if got := strings.Join(order, " "); got != "done last failing first" {
		t.Errorf("order %q, want the normal-path run, then newest first", got)
	}
}

func TestRunKeepsOnSuccess(t *testing.T) {
	tr := NewTracer()
	defer tr.Close()
	ran := false
	err := tr.Run(func(u *Session) error {
		u.Push("x", func() error { ran = true; return nil })
		m := u.Mark()
		u.Push("y", func() error { return nil }).Drop()
		return u.UnwindTo(m)
	})
	if err != nil || ran {
		t.Errorf("Run: %v, undo ran %v; want success and no undo", err, ran)
	}
	err = tr.Run(func(u *Session) error {
		u.Push("x", func() error { ran = true; return nil })
		return errors.New("failed")
	})
	if err == nil || err.Error() != "failed" || !ran {
		t.Errorf("Run: %v, undo ran %v; want the error and the undo", err, ran)
	}
}

// A handle used off the tracer thread fails plainly, without making the
// request; on the tracer thread it reaches the kernel.
func TestHandleOffThread(t *testing.T) {
	tr := NewTracer()
	defer tr.Close()
	var th Thread
	err := tr.Run(func(s *Session) error {
		th = s.Adopt(os.Getpid())
		_, err := th.GetRegs() // ckpt does not trace itself: ESRCH
		if !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("GetRegs on the tracer thread: %v, want ESRCH", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := th.GetRegs(); !errors.Is(err, ErrWrongThread) {
		t.Errorf("GetRegs off the tracer thread: %v, want ErrWrongThread", err)
	}
	if err := (Thread{Tid: os.Getpid()}).Cont(0); !errors.Is(err, ErrWrongThread) {
		t.Errorf("a handle of no session: %v, want ErrWrongThread", err)
	}
}
