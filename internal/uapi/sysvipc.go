//go:build linux && amd64

package uapi

// SysV IPC facts for x86_64 callers (include/uapi/linux/ipc.h, shm.h,
// sem.h, msg.h; include/uapi/asm-generic/ipcbuf.h and msgbuf.h, which
// x86_64 uses).

// semctl commands (include/uapi/linux/sem.h).
const (
	GETPID = 11 // the PID of the last semop on one semaphore
	GETALL = 13
	SETALL = 17
)

// MSG_COPY is msgrcv's flag that copies the message at index msgtyp
// without taking it off the queue (include/uapi/linux/msg.h; needs
// CONFIG_CHECKPOINT_RESTORE).
const MSG_COPY = 0o40000

// Mode bits that the kernel keeps in a segment's shm_perm.mode beside
// the permissions (include/linux/shm.h; ipc/shm.c: SHM_DEST is
// set by IPC_RMID while the segment is attached, SHM_LOCKED by
// SHM_LOCK).
const (
	SHM_DEST   = 0o1000
	SHM_LOCKED = 0o2000
)

// shmat flags that x/sys/unix lacks (include/uapi/linux/shm.h).
const (
	SHM_REMAP = 0o40000  // take the place of mappings there
	SHM_EXEC  = 0o100000 // executable
)

// shmctl commands that lock a segment in memory (include/uapi/linux/shm.h).
const (
	SHM_LOCK   = 11
	SHM_UNLOCK = 12
)

// Layout of struct ipc64_perm, which every *id64_ds starts with
// (include/uapi/asm-generic/ipcbuf.h): key, uid, gid, cuid, cgid, mode.
const (
	SizeofIpc64Perm = 48
	Ipc64PermUid    = 4
	Ipc64PermGid    = 8
	Ipc64PermMode   = 20
)

// MsqidQbytes is the offset of msg_qbytes in struct msqid64_ds
// (include/uapi/asm-generic/msgbuf.h): the perm, then msg_stime,
// msg_rtime, msg_ctime, msg_cbytes, msg_qnum, each 8 bytes.
const MsqidQbytes = SizeofIpc64Perm + 5*8

// ShmidSegsz is the offset of shm_segsz in struct shmid64_ds
// (arch/x86/include/uapi/asm/shmbuf.h): right after the perm.
const ShmidSegsz = SizeofIpc64Perm

// SemidNsems is the offset of sem_nsems in x86_64's struct semid64_ds
// (arch/x86/include/uapi/asm/sembuf.h): the perm, then sem_otime,
// __unused1, sem_ctime, __unused2, each 8 bytes.
const SemidNsems = SizeofIpc64Perm + 4*8

// Ipc64PermCuid and Ipc64PermCgid are the creator's ids in struct
// ipc64_perm.
const (
	Ipc64PermCuid = 12
	Ipc64PermCgid = 16
)

// SizeofIpcDs is large enough for each of shmid64_ds (112 bytes),
// semid64_ds (104) and msqid64_ds (120).
const SizeofIpcDs = 128

// MQUEUE_MAGIC is the statfs f_type of the mqueue file system, which
// holds POSIX message queues (include/uapi/linux/magic.h).
const MQUEUE_MAGIC = 0x19800202

// System calls that wait on a SysV semaphore set or message queue, whose
// first argument is its id: x86_64 (arch/x86/entry/syscalls/syscall_64.tbl)
// and ia32 (syscall_32.tbl; i386 has no semop of its own).
const (
	NR_semop      = 65
	NR_semtimedop = 220
	NR_msgsnd     = 69
	NR_msgrcv     = 70

	NR32_ipc               = 117 // ipc(call, first=id, ...)
	NR32_msgsnd            = 400
	NR32_msgrcv            = 401
	NR32_semtimedop_time64 = 420
)

// ipc(2) call numbers (include/uapi/linux/ipc.h).
const (
	IPCCALL_SEMOP      = 1
	IPCCALL_SEMTIMEDOP = 4
	IPCCALL_MSGSND     = 11
	IPCCALL_MSGRCV     = 12
)
