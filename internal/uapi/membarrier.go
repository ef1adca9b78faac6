//go:build linux && amd64

package uapi

// membarrier(2) commands (include/uapi/linux/membarrier.h, enum
// membarrier_cmd).
const (
	MEMBARRIER_CMD_QUERY                                = 0
	MEMBARRIER_CMD_GLOBAL                               = 1 << 0
	MEMBARRIER_CMD_GLOBAL_EXPEDITED                     = 1 << 1
	MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED            = 1 << 2
	MEMBARRIER_CMD_PRIVATE_EXPEDITED                    = 1 << 3
	MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED           = 1 << 4
	MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE          = 1 << 5
	MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE = 1 << 6
	MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ               = 1 << 7
	MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ      = 1 << 8
	// MEMBARRIER_CMD_GET_REGISTRATIONS (Linux 6.3) returns the
	// MEMBARRIER_CMD_REGISTER_* commands the calling process's mm has
	// been registered with (kernel/sched/membarrier.c,
	// membarrier_get_registrations); older kernels answer EINVAL.
	MEMBARRIER_CMD_GET_REGISTRATIONS = 1 << 9
)

// MembarrierRegistrations are the commands GET_REGISTRATIONS can report,
// in the order a restore registers them again.
var MembarrierRegistrations = []int{
	MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED,
	MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED,
	MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE,
	MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ,
}

// MembarrierPrivate pairs each private expedited command with the
// registration it needs: the command fails with EPERM until the mm is
// registered (kernel/sched/membarrier.c, membarrier_private_expedited).
var MembarrierPrivate = []struct{ Cmd, Register int }{
	{MEMBARRIER_CMD_PRIVATE_EXPEDITED, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED},
	{MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE},
	{MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ},
}
