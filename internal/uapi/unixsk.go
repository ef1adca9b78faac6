//go:build linux && amd64

package uapi

// SO_PASSPIDFD makes a unix socket receive, with each message, a pidfd
// of its sender (SCM_PIDFD); include/uapi/asm-generic/socket.h, Linux
// 6.5+. golang.org/x/sys/unix has SCM_PIDFD but not this option.
const SO_PASSPIDFD = 76
