package ckerr

import (
	"errors"
	"fmt"
	"testing"
)

func TestUnsupported(t *testing.T) {
	err := fmt.Errorf("dump task 10: child process 11: %w", Unsupported(11, "fd 3, a socket (socket:[7])", "ckpt cannot dump it yet; close it before the dump"))
	if !errors.Is(err, ErrUnsupported) {
		t.Errorf("errors.Is(%v, ErrUnsupported) = false", err)
	}
	if errors.Is(err, ErrPidInUse) || errors.Is(err, ErrCorruptImage) {
		t.Errorf("%v matches another sentinel", err)
	}
	var ue *UnsupportedError
	if !errors.As(err, &ue) || ue.Task != 11 || ue.Object != "fd 3, a socket (socket:[7])" {
		t.Fatalf("errors.As: %+v", ue)
	}
	want := "dump task 10: child process 11: fd 3, a socket (socket:[7]): ckpt cannot dump it yet; close it before the dump"
	if err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
}

func TestPidInUse(t *testing.T) {
	err := fmt.Errorf("restore task 5: %w", &PidInUseError{Pid: 6, Holder: `"sleep"`})
	if !errors.Is(err, ErrPidInUse) || errors.Is(err, ErrUnsupported) {
		t.Errorf("errors.Is: %v", err)
	}
	var pe *PidInUseError
	if !errors.As(err, &pe) || pe.Pid != 6 {
		t.Fatalf("errors.As: %+v", pe)
	}
	if got, want := err.Error(), `restore task 5: pid 6 is in use by "sleep"`; got != want {
		t.Errorf("message %q, want %q", got, want)
	}
}

func TestUnsupportedCause(t *testing.T) {
	cause := errors.New("x32 tasks are not supported")
	err := fmt.Errorf("dump task 3: %w", &UnsupportedError{Task: 3, Object: "exe /bin/x", Reason: cause.Error(), Err: cause})
	if !errors.Is(err, cause) || !errors.Is(err, ErrUnsupported) {
		t.Errorf("errors.Is: %v", err)
	}
	if got, want := err.Error(), "dump task 3: exe /bin/x: x32 tasks are not supported"; got != want {
		t.Errorf("message %q, want %q", got, want)
	}
}
