//go:build linux && amd64

package uapi

// N_TTY is the default line discipline (include/uapi/linux/tty.h), the
// c_line of a terminal in termios.
//
// The terminal ioctls ckpt uses (TCGETS, TCSETS, TIOCGWINSZ, TIOCSWINSZ,
// TIOCPKT, TIOCGPKT, TIOCSPTLCK, TIOCGPTLCK, TIOCGPTN, TIOCGEXCL,
// TIOCSCTTY, TIOCGSID, TIOCGPGRP, TIOCSPGRP, TIOCINQ) are x/sys/unix's:
// x86 takes them from include/uapi/asm-generic/ioctls.h, one number for
// x86_64 and ia32 alike, and struct termios and struct winsize have the
// same layout in both ABIs (only int and unsigned char fields), so the
// ioctls ckpt injects into an ia32 task need no compat variant.
const N_TTY = 0
