//go:build linux && amd64

// Package model is the dump as typed values: the process tree, each
// process with its threads, memory, pages, fd table and fs, and what the
// processes share (files, pipes' buffered bytes, shared memory objects,
// clocks, CPU). It owns the image schema: which image holds what, every
// id and naming convention, and the pagemap. The dump path fills a Dump
// and calls Write; the restore path and `ckpt show` both call Load.
//
// Entries are go-criu's protobuf messages; this package decides how they
// are put together. Framing bytes is the image package's job.
package model

import (
	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/internal/image"
)

// Conventions of ckpt's images shared by every writer and reader.
const (
	// OwnPidNsID is the task_kobj_ids_entry.pid_ns_id of a task of a tree
	// that runs in a PID namespace of its own (its root is that
	// namespace's init); the pstree then names tasks by their PIDs there.
	OwnPidNsID = 2
	// FirstNsID is the first id given to the tree's other namespaces
	// (task_kobj_ids_entry's uts_ns_id, ipc_ns_id, ...): the dump numbers
	// them from here, one counter for every kind, as CRIU does.
	FirstNsID = 3
	// TimensID is the id of the tree's clocks image (timens-ID.img).
	TimensID = 1
	// DefaultFilesID is the fd table of a core without ids (CRIU's
	// single-task dumps): fdinfo-1.img.
	DefaultFilesID = 1
	// FdCloexec is the close-on-exec bit of fdinfo_entry.flags, which
	// holds an fd's flags as fcntl(F_GETFD) returns them: FD_CLOEXEC.
	FdCloexec = unix.FD_CLOEXEC
)

// Task states of task_core_entry.task_state (CRIU's include/image.h).
const (
	TaskAlive   = image.TaskAlive
	TaskDead    = image.TaskDead
	TaskStopped = image.TaskStopped
)
