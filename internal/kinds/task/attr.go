//go:build linux && amd64

// Package task holds every kind of task attribute ckpt checkpoints
// (credentials, signal handlers and pending signals, rlimits, personality,
// interval and POSIX timers, the alternate signal stack, the robust futex
// list, rseq, ...): one file
// per attribute, each with its dump side (Collect: read it from a frozen
// thread into the thread's core entry) and its restore side (Restore: set
// it again from inside the thread being rebuilt) next to each other,
// registered in one table (All) in the order a restore needs them.
//
// Registers, FPU state, TLS and the signal mask are the thread's CPU
// state, which the dump and restore paths read and set themselves, last.
package task

import (
	criucore "github.com/checkpoint-restore/go-criu/v8/crit/images/criu-core"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/mm"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/procfs"
	"github.com/ckpt/ckpt/internal/ptrace"
)

// Thread is a stopped thread as an attribute sees it: a frozen thread of
// the dumped tree, or a thread of a task being restored. Syscalls run
// inside it; scratch memory below 4 GiB carries their arguments.
type Thread interface {
	// Pid and Tid are the process and thread ids in ckpt's PID namespace,
	// for /proc and ptrace.
	Pid() int
	Tid() int
	// VPid and VTid are the ids as the task's own PID namespace names them.
	VPid() int
	VTid() int
	// Leader tells the thread group leader, which holds process-wide
	// attributes.
	Leader() bool
	// Compat tells an ia32 task (its ABI, not the mode it was caught in).
	Compat() bool
	Syscall(s x86.Syscall, args ...uint64) (uint64, error)
	Syscall32(s x86.Syscall, args ...uint64) (uint64, error)
	// Scratch is the address of scratch memory of at least a page.
	Scratch() uint64
	// Put writes b at Scratch and returns its address.
	Put(b []byte) (uint64, error)
	// ReadMem reads n bytes of the task's memory at addr.
	ReadMem(addr uint64, n int) ([]byte, error)
	// Status is /proc/PID/task/TID/status read once at dump; nil at restore.
	Status() *procfs.Status
	// Ptrace is the thread's ptrace handle.
	Ptrace() ptrace.Thread
	// ExecSignals, at restore, says that the task's signal actions are
	// still those an exec leaves (each SIG_DFL or SIG_IGN, with no
	// flags, mask or restorer) and gives the ignored ones, bit N-1 for
	// signal N; ok is false at dump, or when that is not known.
	ExecSignals() (ignored uint64, ok bool)
}

// Entry is where a thread's attributes are kept: its core entry (Core.Tc
// only for the leader) and the process's mm entry.
type Entry struct {
	Core *criucore.CoreEntry
	MM   *mm.MmEntry
}

// Stage is when in a restore an attribute is set.
type Stage int

const (
	// StageProcess: in the leader, after memory and mm fields, before
	// the other threads exist.
	StageProcess Stage = iota
	// StageThread: in each thread once all exist, credentials among
	// them (so, in the table, whatever a change of credentials resets
	// comes after Creds).
	StageThread
	// StageAfterCreds: in the leader once every thread has its
	// credentials.
	StageAfterCreds
	// StageLate: in each thread, just before its registers: what no
	// injected syscall may run under (rseq).
	StageLate
)

// Attr is one kind of task attribute.
type Attr interface {
	// Name names the attribute in messages.
	Name() string
	// Stage says when a restore sets it, and whether in each thread
	// (StageThread, StageLate) or in the leader only.
	Stage() Stage
	// Collect reads the attribute from a frozen thread into e; a
	// process-wide attribute reads it from the leader only.
	Collect(t Thread, e Entry) error
	// Restore sets it in the thread from e.
	Restore(t Thread, e Entry) error
}

// All is the table of task attributes, in the order a restore sets them
// within a stage.
var All = []Attr{
	namespaces{},
	personality{},
	loginuid{},
	thpDisabled{},
	membarrier{},
	mlockFuture{},
	rlimits{},
	comm{},
	subreaper{},
	sigactions{},
	altstack{},
	robustList{},
	creds{},
	sched{},
	pdeathsig{},
	seccomp{},
	privateSignals{},
	dumpable{},
	sharedSignals{},
	rseqReg{},
	clearTid{},
	oomScoreAdj{},
	itimers{},
	posixTimers{},
}

// PerThread tells whether attributes of stage s are set in every thread,
// else in the leader only.
func PerThread(s Stage) bool { return s == StageThread || s == StageLate }

// CollectAll reads every attribute of a frozen thread into e: all of
// them from the leader, the per-thread ones from other threads.
func CollectAll(t Thread, e Entry) error {
	for _, a := range All {
		if !t.Leader() && !PerThread(a.Stage()) {
			continue
		}
		if err := a.Collect(t, e); err != nil {
			return err
		}
	}
	return nil
}

// RestoreStage sets the attributes of stage s in thread t.
func RestoreStage(s Stage, t Thread, e Entry) error {
	for _, a := range All {
		if a.Stage() != s {
			continue
		}
		if err := a.Restore(t, e); err != nil {
			return err
		}
	}
	return nil
}
