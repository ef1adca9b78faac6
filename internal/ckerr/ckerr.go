//go:build linux && amd64

// Package ckerr holds the errors of ckpt that callers match with
// errors.Is and errors.As: an object a dump refuses, a PID that a restore
// needs and finds in use, and a corrupt image. Package ckpt re-exports
// them; the engine packages return them, wrapped with context.
//
// This package imports nothing of ckpt's, so that every package may use it.
package ckerr

import (
	"errors"
	"fmt"
)

// Sentinels for errors.Is. Each typed error below matches its sentinel.
var (
	// ErrUnsupported matches every *UnsupportedError.
	ErrUnsupported = errors.New("not supported")
	// ErrPidInUse matches every *PidInUseError.
	ErrPidInUse = errors.New("pid in use")
	// ErrCorruptImage marks an image file that is truncated or malformed;
	// the error that wraps it names the file.
	ErrCorruptImage = errors.New("corrupt image")
)

// UnsupportedError is a dump's refusal of an object that ckpt cannot
// checkpoint yet. The dump stops before it changes anything: the tree
// goes on as it was.
type UnsupportedError struct {
	// Task is the PID (in ckpt's PID namespace) of the task that holds
	// the object.
	Task int
	// Object says which object, e.g. "fd 3, a socket (socket:[1234])" or
	// "vma 0x7f00-0x7f10 [anon_shmem]".
	Object string
	// Reason says why it is refused and, where there is something to do,
	// what to do.
	Reason string
	// Err, if set, is a cause that callers may match too (for an x32
	// program, x86.ErrX32); Error does not repeat it.
	Err error
}

// Error reads "OBJECT: REASON". It does not repeat the task: the error
// that wraps it names the task ("dump task 12: child process 13: ...").
func (e *UnsupportedError) Error() string { return e.Object + ": " + e.Reason }

// Is makes errors.Is(err, ErrUnsupported) true.
func (e *UnsupportedError) Is(target error) bool { return target == ErrUnsupported }

// Unwrap returns Err.
func (e *UnsupportedError) Unwrap() error { return e.Err }

// Unsupported returns an *UnsupportedError for the object of task.
func Unsupported(task int, object, reason string) *UnsupportedError {
	return &UnsupportedError{Task: task, Object: object, Reason: reason}
}

// PidInUseError is a restore's refusal because a PID (or thread id) that
// the dumped tree had belongs to another task on this machine.
type PidInUseError struct {
	// Pid is the PID the restore needs.
	Pid int
	// Holder describes the task that has it: its command name and, if
	// it is a zombie, whose child it is.
	Holder string
}

// Error reads "pid N is in use by HOLDER".
func (e *PidInUseError) Error() string {
	return fmt.Sprintf("pid %d is in use by %s", e.Pid, e.Holder)
}

// Is makes errors.Is(err, ErrPidInUse) true.
func (e *PidInUseError) Is(target error) bool { return target == ErrPidInUse }
