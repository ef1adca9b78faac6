//go:build linux && amd64

package x86

// Syscall names a system call that ckpt runs inside a task. Its numbers
// for both ABIs are in the table below.
type Syscall int

// Syscalls ckpt injects.
const (
	SysMmap Syscall = iota
	SysMunmap
	SysMprotect
	SysBrk
	SysRtSigaction
	SysSigaltstack
	SysPrctl
	SysArchPrctl
	SysSetThreadArea
	SysClone3
	SysRseq
	SysSetTidAddress
	SysPersonality
	SysPrlimit64
	SysUmask
	SysChdir
	SysChroot
	SysOpenat
	SysClose
	SysLseek
	SysDup3
	SysFcntl
	SysSetresuid
	SysSetresgid
	SysSetgroups
	SysSetfsuid
	SysSetfsgid
	SysCapset
	SysRtSigqueueinfo
	SysRtTgsigqueueinfo
	SysSetsid
	SysSetpgid
	SysMadvise
	SysGetpid
	SysExitGroup
	SysCloseRange
	SysSetRobustList
	SysGetRobustList
	SysUnshare
	SysWrite
	SysEventfd2
	SysEpollCreate1
	SysEpollCtl
	SysPipe2
	SysTimerfdCreate
	SysTimerfdSettime
	SysSignalfd4
	SysIoctl
	SysGetpgid
	SysWait4
	SysGetitimer
	SysSetitimer
	SysTimerCreate
	SysTimerSettime
	SysTimerGettime
	SysTimerGetoverrun
	SysTimerDelete
	SysMembarrier
	SysFlock
	SysSetns
	SysMount
	SysUmount2
	SysSocket
	SysSocketpair
	SysBind
	SysListen
	SysConnect
	SysAccept4
	SysPidfdOpen
	SysPidfdGetfd
	SysUserfaultfd
	SysInotifyInit1
	SysInotifyAddWatch
	SysInotifyRmWatch
	SysShmat
	SysShmctl
	SysVmsplice
	SysPreadv
	SysMqOpen
	SysMqUnlink
	SysMqNotify
	SysRtSigtimedwait
	SysMremap
	SysIoSetup
	SysIoDestroy
	SysIoSubmit
	SysIoGetevents
	SysClone
	SysMunlock
	numSyscalls
)

// sysNums maps each Syscall to {x86_64, ia32} numbers, from
// arch/x86/entry/syscalls/syscall_64.tbl and syscall_32.tbl. For ia32 the
// 32-bit-uid variants (setresuid32, ...) and mmap2 are used. -1 means the
// ABI has no such call.
var sysNums = [numSyscalls][2]int{
	SysMmap:             {9, 192}, // ia32: mmap2 (offset in pages)
	SysMunmap:           {11, 91},
	SysMprotect:         {10, 125},
	SysBrk:              {12, 45},
	SysRtSigaction:      {13, 174},
	SysSigaltstack:      {131, 186},
	SysPrctl:            {157, 172},
	SysArchPrctl:        {158, 384},
	SysSetThreadArea:    {205, 243},
	SysClone3:           {435, 435},
	SysRseq:             {334, 386},
	SysSetTidAddress:    {218, 258},
	SysPersonality:      {135, 136},
	SysPrlimit64:        {302, 340},
	SysUmask:            {95, 60},
	SysChdir:            {80, 12},
	SysChroot:           {161, 61},
	SysOpenat:           {257, 295},
	SysClose:            {3, 6},
	SysLseek:            {8, 19},
	SysDup3:             {292, 330},
	SysFcntl:            {72, 221}, // ia32: fcntl64
	SysSetresuid:        {117, 208},
	SysSetresgid:        {119, 210},
	SysSetgroups:        {116, 206},
	SysSetfsuid:         {122, 215},
	SysSetfsgid:         {123, 216},
	SysCapset:           {126, 185},
	SysRtSigqueueinfo:   {129, 178},
	SysRtTgsigqueueinfo: {297, 335},
	SysSetsid:           {112, 66},
	SysSetpgid:          {109, 57},
	SysMadvise:          {28, 219},
	SysGetpid:           {39, 20},
	SysExitGroup:        {231, 252},
	SysCloseRange:       {436, 436},
	SysSetRobustList:    {273, 311},
	SysGetRobustList:    {274, 312},
	SysUnshare:          {272, 310},
	SysWrite:            {1, 4},
	SysEventfd2:         {290, 328},
	SysEpollCreate1:     {291, 329},
	SysEpollCtl:         {233, 255},
	SysPipe2:            {293, 331},
	SysTimerfdCreate:    {283, 322},
	SysTimerfdSettime:   {286, 325},
	SysSignalfd4:        {289, 327},
	SysIoctl:            {16, 54},
	SysGetpgid:          {121, 132},
	SysWait4:            {61, 114},
	SysGetitimer:        {36, 105},
	SysSetitimer:        {38, 104},
	// ia32: the calls with the 32-bit old_itimerspec32; the
	// __kernel_itimerspec ones are timer_settime64/gettime64 (409/408).
	SysTimerCreate:     {222, 259},
	SysTimerSettime:    {223, 260},
	SysTimerGettime:    {224, 261},
	SysTimerGetoverrun: {225, 262},
	SysTimerDelete:     {226, 263},
	SysMembarrier:      {324, 375},
	SysFlock:           {73, 143},
	SysSetns:           {308, 346},
	SysMount:           {165, 21},
	SysUmount2:         {166, 52},
	// ia32 has direct socket calls since Linux 4.3 (socketcall before).
	SysSocket:          {41, 359},
	SysSocketpair:      {53, 360},
	SysBind:            {49, 361},
	SysListen:          {50, 363},
	SysConnect:         {42, 362},
	SysAccept4:         {288, 364},
	SysPidfdOpen:       {434, 434},
	SysPidfdGetfd:      {438, 438},
	SysUserfaultfd:     {323, 374},
	SysInotifyInit1:    {294, 332},
	SysInotifyAddWatch: {254, 292},
	SysInotifyRmWatch:  {255, 293},
	SysShmat:           {30, 397},
	SysShmctl:          {31, 396},
	SysVmsplice:        {278, 316},
	// ia32: compat_sys_preadv, the offset split into two 32-bit halves.
	SysPreadv: {295, 333},
	// ia32 mq_open takes a compat_mq_attr (four 32-bit longs and four
	// reserved).
	SysMqOpen:   {240, 277},
	SysMqUnlink: {241, 278},
	SysMqNotify: {244, 281}, // ia32: a compat_sigevent
	// ia32: the call with the 32-bit old_timespec32.
	SysRtSigtimedwait: {128, 177},
	SysMremap:         {25, 163},
	// The aio calls (fs/aio.c); ia32 has compat_sys_io_setup/submit/
	// getevents with 32-bit pointers and old_timespec32.
	SysIoSetup:     {206, 245},
	SysIoDestroy:   {207, 246},
	SysIoSubmit:    {209, 248},
	SysIoGetevents: {208, 247},
	// clone(2): x86_64 takes (flags, newsp, parent_tid, child_tid, tls),
	// ia32 (flags, newsp, parent_tid, tls, child_tid) (CLONE_BACKWARDS).
	SysClone:   {56, 120},
	SysMunlock: {150, 151},
}

var sysNames = [numSyscalls]string{
	"mmap", "munmap", "mprotect", "brk", "rt_sigaction", "sigaltstack",
	"prctl", "arch_prctl", "set_thread_area", "clone3", "rseq",
	"set_tid_address", "personality", "prlimit64", "umask", "chdir",
	"chroot", "openat", "close", "lseek", "dup3", "fcntl", "setresuid",
	"setresgid", "setgroups", "setfsuid", "setfsgid", "capset",
	"rt_sigqueueinfo", "rt_tgsigqueueinfo", "setsid", "setpgid", "madvise",
	"getpid", "exit_group", "close_range", "set_robust_list", "get_robust_list", "unshare", "write", "eventfd2", "epoll_create1", "epoll_ctl", "pipe2", "timerfd_create", "timerfd_settime", "signalfd4", "ioctl", "getpgid", "wait4",
	"getitimer", "setitimer", "timer_create", "timer_settime", "timer_gettime",
	"timer_getoverrun", "timer_delete",
	"membarrier", "flock", "setns", "mount", "umount2",
	"socket", "socketpair", "bind", "listen", "connect", "accept4",
	"pidfd_open", "pidfd_getfd", "userfaultfd",
	"inotify_init1", "inotify_add_watch", "inotify_rm_watch", "shmat", "shmctl",
	"vmsplice", "preadv", "mq_open", "mq_unlink", "mq_notify",
	"rt_sigtimedwait", "mremap", "io_setup", "io_destroy", "io_submit", "io_getevents",
	"clone", "munlock",
}

func (s Syscall) String() string {
	if s < 0 || s >= numSyscalls {
		return "syscall?"
	}
	return sysNames[s]
}

// Number returns the syscall number for the ABI: compat selects ia32.
func (s Syscall) Number(compat bool) int {
	if compat {
		return sysNums[s][1]
	}
	return sysNums[s][0]
}

// SyscallError interprets a raw syscall return value at the width of the
// syscall: only -4095..-1 are errors. A compat mmap above 2 GiB is
// negative as int32 but valid, so compat results are read as 32 bits.
func SyscallError(ret uint64, compat bool) (value uint64, errno int) {
	if compat {
		v := uint32(ret)
		if v >= 0xfffff001 {
			return 0, int(-int32(v))
		}
		return uint64(v), 0
	}
	if ret >= 0xfffffffffffff001 {
		return 0, int(-int64(ret))
	}
	return ret, 0
}
