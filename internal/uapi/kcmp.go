//go:build linux && amd64

package uapi

// Types of kcmp(2): enum kcmp_type (include/uapi/linux/kcmp.h).
const (
	KCMP_FILE    = 0 // one open file description; idx1 and idx2 are fds
	KCMP_VM      = 1 // the address space (CLONE_VM)
	KCMP_FILES   = 2 // the fd table (CLONE_FILES)
	KCMP_FS      = 3 // cwd, root and umask (CLONE_FS)
	KCMP_SIGHAND = 4 // the signal handlers (CLONE_SIGHAND)
)
