//go:build linux && amd64

package fd

// The bytes queued in a pty pair (ptyKind): how the dump reads them
// without losing them, and how a pair is refilled, at the dump and at the
// restore.

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/internal/uapi"
)

// rawTermios is tio with the input and output processing, echo, signals
// and canonical mode off (as cfmakeraw(3)): the slave's reader gets every
// byte queued, a partial line too.
func rawTermios(tio unix.Termios) unix.Termios {
	tio.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON | unix.IXOFF | unix.IUCLC | unix.IMAXBEL
	tio.Oflag &^= unix.OPOST
	tio.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	tio.Cc[unix.VMIN], tio.Cc[unix.VTIME] = 1, 0
	return tio
}

// fillTermios is the mode in which a pair is refilled: the dumped one
// (canonical or not, with its line-ending characters) without input or
// output translation, signals or flow control, so that bytes written on
// one end arrive at the other as they are, and with a plain echo (no
// ^X forms, no erase effects), which tells when the slave's line
// discipline has taken the bytes.
func fillTermios(tio unix.Termios) unix.Termios {
	tio.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON | unix.IXOFF | unix.IUCLC | unix.IMAXBEL
	tio.Oflag &^= unix.OPOST
	tio.Lflag &^= unix.ISIG | unix.ECHOCTL | unix.ECHOE | unix.ECHOK | unix.ECHOKE | unix.ECHOPRT | unix.ECHONL | unix.FLUSHO | unix.PENDIN | unix.TOSTOP
	tio.Lflag |= unix.ECHO
	return tio
}

// canonical reports a terminal mode whose reader gets whole lines.
func canonical(tio unix.Termios) bool { return tio.Lflag&unix.ICANON != 0 }

// lineEnd reports a byte that ends a canonical line in mode tio
// (drivers/tty/n_tty.c: '\n', VEOL, and VEOL2 with IEXTEN).
func lineEnd(tio unix.Termios, c byte) bool {
	return c == '\n' || (c != 0 && c == tio.Cc[unix.VEOL]) || (c != 0 && tio.Lflag&unix.IEXTEN != 0 && c == tio.Cc[unix.VEOL2])
}

// ptyQueues reads the bytes queued in a pair, through its master m and
// the slave opened anew, and puts them back at once: the tree is frozen,
// so no reader of the tree sees the pair meanwhile, and the pair holds
// the same bytes whether the dump goes on, fails or leaves the tree
// running. in waits for the slave's reader, written as they are to be
// typed again on the master (see slaveQueue); out waits for the
// master's reader. A locked pair is unlocked meanwhile. A line
// discipline other than N_TTY and a pair in exclusive mode are refused.
func ptyQueues(m, idx int, tio unix.Termios, locked bool) (in, out []byte, err error) {
	if tio.Line != uapi.N_TTY {
		return nil, nil, fmt.Errorf("its line discipline is %d, not N_TTY; ckpt restores only N_TTY terminals", tio.Line)
	}
	pkt, err := unix.IoctlGetInt(m, unix.TIOCGPKT)
	if err != nil {
		return nil, nil, fmt.Errorf("TIOCGPKT: %w", err)
	}
	if locked {
		// Bytes written on the master wait for a slave not opened yet:
		// ckpt opens it, so the pair is unlocked meanwhile.
		if err := unix.IoctlSetPointerInt(m, unix.TIOCSPTLCK, 0); err != nil {
			return nil, nil, fmt.Errorf("unlock to read its queue: %w", err)
		}
		defer unix.IoctlSetPointerInt(m, unix.TIOCSPTLCK, 1)
	}
	s, err := unix.Open(fmt.Sprintf("/dev/pts/%d", idx), unix.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("open /dev/pts/%d to read its queue: %w", idx, err)
	}
	defer unix.Close(s)
	excl, err := unix.IoctlGetInt(s, unix.TIOCGEXCL)
	if err != nil {
		return nil, nil, fmt.Errorf("TIOCGEXCL: %w", err)
	}
	if excl != 0 {
		return nil, nil, fmt.Errorf("the slave is in exclusive mode (TIOCEXCL), which ckpt does not restore yet: clear it (TIOCNXCL) before the dump")
	}
	if pkt != 0 {
		// A master read in packet mode starts with a status byte.
		if err := unix.IoctlSetPointerInt(m, unix.TIOCPKT, 0); err != nil {
			return nil, nil, fmt.Errorf("TIOCPKT off: %w", err)
		}
		defer unix.IoctlSetPointerInt(m, unix.TIOCPKT, 1)
	}
	defer unix.IoctlSetTermios(m, unix.TCSETS, &tio)
	if in, err = slaveQueue(m, s, tio); err != nil {
		return nil, nil, fmt.Errorf("read the slave's queue: %w", err)
	}
	if out, err = drainTTY(m); err != nil {
		return nil, nil, fmt.Errorf("read the master's queue: %w", err)
	}
	if err := refillPty(m, s, tio, in, out); err != nil {
		return nil, nil, fmt.Errorf("put its queued bytes back: %w", err)
	}
	return in, out, nil
}

// slaveQueue takes the bytes queued for the slave's reader. In canonical
// mode it first reads the complete lines as the reader would, one read
// each: a line that does not end in a line-ending character was ended by
// VEOF, which the kernel does not queue, and gets it back so that typing
// it again ends the line again. Then the slave goes to raw mode, which
// gives the partial line after them. The result is what is to be typed
// again on the master (see appendTyped). (An empty line ended by VEOF
// alone shows as a NUL byte then: n_tty keeps it as __DISABLED_CHAR.)
func slaveQueue(m, s int, tio unix.Termios) ([]byte, error) {
	var all []byte
	if canonical(tio) {
		buf := make([]byte, 4096) // N_TTY_BUF_SIZE: no line is longer
		for {
			n, err := unix.IoctlGetInt(s, unix.TIOCINQ)
			if err != nil {
				return nil, fmt.Errorf("TIOCINQ: %w", err)
			}
			if n == 0 {
				break
			}
			got, err := unix.Read(s, buf)
			if err != nil {
				return nil, err
			}
			line := buf[:got]
			end := got > 0 && lineEnd(tio, line[got-1])
			if end {
				line = line[:got-1]
			}
			if all, err = appendTyped(all, tio, line); err != nil {
				return nil, err
			}
			if end {
				all = append(all, buf[got-1])
			} else {
				all = append(all, tio.Cc[unix.VEOF])
			}
		}
	}
	raw := rawTermios(tio)
	if err := unix.IoctlSetTermios(m, unix.TCSETS, &raw); err != nil {
		return nil, fmt.Errorf("TCSETS raw: %w", err)
	}
	rest, err := drainTTY(s)
	if err != nil {
		return nil, err
	}
	if !canonical(tio) {
		return rest, nil
	}
	return appendTyped(all, tio, rest)
}

// canonSpecial lists the characters that a canonical reader's line
// discipline acts on instead of queueing them (drivers/tty/n_tty.c,
// n_tty_receive_char_special, with ICANON, and ECHO as in fillTermios);
// 0 is a disabled one.
func canonSpecial(tio unix.Termios) []byte {
	sp := []byte{tio.Cc[unix.VEOF], tio.Cc[unix.VERASE], tio.Cc[unix.VKILL], tio.Cc[unix.VEOL]}
	if tio.Lflag&unix.IEXTEN != 0 {
		sp = append(sp, tio.Cc[unix.VEOL2], tio.Cc[unix.VWERASE], tio.Cc[unix.VREPRINT], tio.Cc[unix.VLNEXT])
	}
	return sp
}

// appendTyped appends the bytes b of a canonical line, without its end,
// as they are to be typed again: a byte that the line discipline would
// act on (queued as it is because it was typed after VLNEXT) gets a
// VLNEXT before it. Without IEXTEN there is no VLNEXT, and such a byte
// cannot be queued again.
func appendTyped(out []byte, tio unix.Termios, b []byte) ([]byte, error) {
	sp := canonSpecial(tio)
	for _, c := range b {
		for _, x := range sp {
			if x != 0 && c == x {
				if tio.Lflag&unix.IEXTEN == 0 || tio.Cc[unix.VLNEXT] == 0 {
					return nil, fmt.Errorf("a byte queued for the slave's reader (%#x) is one of its line-editing characters, and without IEXTEN no VLNEXT can queue it again", c)
				}
				out = append(out, tio.Cc[unix.VLNEXT])
				break
			}
		}
		out = append(out, c)
	}
	return out, nil
}

// typedEcho is how many bytes the echo of typed (fillTermios mode, no
// ECHOCTL) has: one for each byte but a VLNEXT that escapes the next one
// and a VEOF that ends a line, neither of which is echoed.
func typedEcho(tio unix.Termios, typed []byte) int {
	if !canonical(tio) {
		return len(typed)
	}
	n := 0
	lnext := tio.Lflag&unix.IEXTEN != 0 && tio.Cc[unix.VLNEXT] != 0
	for i := 0; i < len(typed); i++ {
		c := typed[i]
		switch {
		case lnext && c == tio.Cc[unix.VLNEXT]:
			i++ // the byte it escapes is echoed
			n++
		case c != 0 && c == tio.Cc[unix.VEOF]:
		default:
			n++
		}
	}
	return n
}

// drainTTY reads every byte queued for the reader of fd, a terminal in
// raw mode (TIOCINQ tells how many; a read of that many never blocks).
func drainTTY(fd int) ([]byte, error) {
	var all []byte
	for {
		n, err := unix.IoctlGetInt(fd, unix.TIOCINQ)
		if err != nil {
			return nil, fmt.Errorf("TIOCINQ: %w", err)
		}
		if n == 0 {
			return all, nil
		}
		buf := make([]byte, n)
		got, err := unix.Read(fd, buf)
		if err != nil {
			return nil, err
		}
		all = append(all, buf[:got]...)
	}
}

// ptySettle bounds the wait for bytes written on one end to reach the
// other end's line discipline (the kernel moves them in a work item).
const ptySettle = 2 * time.Second

// waitInq waits until fd's reader has n bytes queued (TIOCINQ).
func waitInq(fd, n int, what string) error {
	deadline := time.Now().Add(ptySettle)
	for {
		got, err := unix.IoctlGetInt(fd, unix.TIOCINQ)
		if err != nil {
			return fmt.Errorf("TIOCINQ: %w", err)
		}
		if got >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d bytes reached the %s", got, n, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// refillPty fills an empty pair, master m and slave s: in is typed on
// the master for the slave's reader in fillTermios mode, out written on
// the slave for the master's reader; then the pair gets mode tio. The
// echo of in (one byte for each byte but VEOF) tells when the slave's
// line discipline has taken in, and is read away from the master before
// out goes there.
func refillPty(m, s int, tio unix.Termios, in, out []byte) error {
	fill := fillTermios(tio)
	if err := unix.IoctlSetTermios(m, unix.TCSETS, &fill); err != nil {
		return fmt.Errorf("TCSETS: %w", err)
	}
	if len(in) > 0 {
		echo := typedEcho(tio, in)
		if err := writeAll(m, in); err != nil {
			return fmt.Errorf("write %d bytes for the slave: %w", len(in), err)
		}
		if err := waitInq(m, echo, "master as echo"); err != nil {
			return err
		}
		if _, err := drainTTY(m); err != nil {
			return fmt.Errorf("read the echo: %w", err)
		}
	}
	if len(out) > 0 {
		if err := writeAll(s, out); err != nil {
			return fmt.Errorf("write %d bytes for the master: %w", len(out), err)
		}
		if err := waitInq(m, len(out), "master"); err != nil {
			return err
		}
	}
	if err := unix.IoctlSetTermios(m, unix.TCSETS, &tio); err != nil {
		return fmt.Errorf("set the dumped termios: %w", err)
	}
	return nil
}

func writeAll(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}
