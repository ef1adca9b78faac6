//go:build linux && amd64

package uapi

// N_TTY is the default line discipline (include/uapi/linux/tty.h), the
// c_line of a terminal in termios.
const N_TTY = 0
