//go:build linux && amd64

package uapi

import (
	"encoding/binary"

	"golang.org/x/sys/unix"
)

// PF_KTHREAD marks a kernel thread in a task's flags (include/linux/sched.h),
// field 9 of /proc/PID/stat.
const PF_KTHREAD = 0x00200000

// SizeofCloneArgs is the size of struct clone_args that ckpt passes to
// clone3: CLONE_ARGS_SIZE_VER2 (include/uapi/linux/sched.h), with cgroup.
const SizeofCloneArgs = unix.CLONE_ARGS_SIZE_VER2

// CloneArgs is struct clone_args (include/uapi/linux/sched.h), the
// argument of clone3(2); every field is a u64.
type CloneArgs struct {
	Flags      uint64
	Pidfd      uint64 // address of an int
	ChildTid   uint64 // address of a pid_t
	ParentTid  uint64 // address of a pid_t
	ExitSignal uint64
	Stack      uint64
	StackSize  uint64
	TLS        uint64
	SetTid     uint64 // address of a pid_t array
	SetTidSize uint64 // its length
	Cgroup     uint64 // fd of a cgroup2 directory
}

// Append appends the struct's SizeofCloneArgs bytes to b.
func (a CloneArgs) Append(b []byte) []byte {
	le := binary.LittleEndian
	for _, v := range []uint64{
		a.Flags, a.Pidfd, a.ChildTid, a.ParentTid, a.ExitSignal, a.Stack,
		a.StackSize, a.TLS, a.SetTid, a.SetTidSize, a.Cgroup,
	} {
		b = le.AppendUint64(b, v)
	}
	return b
}

// Bytes returns the struct as clone3 reads it.
func (a CloneArgs) Bytes() []byte { return a.Append(make([]byte, 0, SizeofCloneArgs)) }

// WithSetTid returns the struct followed by the set_tid array of pid_t
// that it points to, for a buffer written at addr: SetTid and SetTidSize
// are set to that array. tids[0] is the PID in the innermost PID
// namespace, the one the new task is created in.
func (a CloneArgs) WithSetTid(addr uint64, tids ...int32) []byte {
	a.SetTid = addr + SizeofCloneArgs
	a.SetTidSize = uint64(len(tids))
	b := a.Append(make([]byte, 0, SizeofCloneArgs+4*len(tids)))
	for _, t := range tids {
		b = binary.LittleEndian.AppendUint32(b, uint32(t))
	}
	return b
}
