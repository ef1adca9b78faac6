// Package ckpt is ckpt's library API: checkpoint a running process tree
// into a directory of CRIU-format images, restore it with the same PIDs,
// and ask what the running kernel supports. The ckpt command is a thin
// CLI over the same calls. Callers must run as root.
package ckpt

import (
	"github.com/ckpt/ckpt/internal/dump"
	"github.com/ckpt/ckpt/internal/kerndat"
	"github.com/ckpt/ckpt/internal/restore"
)

// DumpOptions control a dump: the task, the images directory, whether the
// task goes on afterwards (LeaveRunning), --shell-job, a freeze timeout
// and a progress logger.
type DumpOptions = dump.Options

// DumpStats are measurements of a dump: how long the tree was frozen,
// pages and bytes written.
type DumpStats = dump.Stats

// RestoreOptions control a restore: the images directory, --shell-job
// and the stdio to inherit, and a progress logger.
type RestoreOptions = restore.Options

// Process is a restored process tree's root, a child of the caller.
type Process = restore.Process

// CheckResult is one kernel feature probe.
type CheckResult = kerndat.Result

// Dump checkpoints the task opts.Pid and its descendants into
// opts.ImagesDir. Unless opts.LeaveRunning, the tree is killed after a
// successful dump; a failed dump leaves it running as it was.
func Dump(opts DumpOptions) (*DumpStats, error) { return dump.Dump(opts) }

// Restore brings back the tree dumped in opts.ImagesDir and returns once
// it runs; Process.Wait waits for its root.
func Restore(opts RestoreOptions) (*Process, error) { return restore.Restore(opts) }

// Check probes the running kernel; CheckOK tells whether checkpoint and
// restore of native tasks can work.
func Check() []CheckResult { return kerndat.Probe() }

// CheckOK reports whether every probe that checkpoint/restore needs passed.
func CheckOK(rs []CheckResult) bool { return kerndat.RequiredOK(rs) }
