//go:build linux && amd64

package fd

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/internal/arch/x86"
)

// Helpers shared by the socket kinds that make a socket inside the task
// (inet and netlink): the socket is made by the first process that opens
// its file; another process of the tree that holds the same open file
// (not inherited: received, or taken with pidfd_getfd) takes it from
// there with pidfd_getfd, since a second socket could not have the same
// address.

// placed is where the restore put a socket first: fd num of r.
type placed struct {
	r   Restorer
	num int
}

// madeSockets remembers, by file id, where each socket was made.
type madeSockets map[uint32]placed

// put records that socket id was made at fd num of r.
func (m *madeSockets) put(id uint32, r Restorer, num int) {
	if *m == nil {
		*m = madeSockets{}
	}
	(*m)[id] = placed{r, num}
}

// take gives r, at num, the socket of file id if another process made it
// already (a nil m holds none); it tells whether it did.
func (m madeSockets) take(r Restorer, id uint32, num int, cloexec bool) (bool, error) {
	p, ok := m[id]
	if !ok {
		return false, nil
	}
	return true, takeFd(r, p.r, p.num, num, cloexec)
}

// takeFd puts the file held at fd spare of home at num of r: a dup in
// the same process, pidfd_getfd from another (home is stopped and alive
// until every fd table is built).
func takeFd(r, home Restorer, spare, num int, cloexec bool) error {
	var tmp uint64
	if r.Pid() == home.Pid() {
		got, err := r.Syscall(x86.SysFcntl, uint64(spare), unix.F_DUPFD, uint64(r.MaxFd()+1))
		if err != nil {
			return fmt.Errorf("dup: %w", err)
		}
		tmp = got
	} else {
		vpid, err := innerPid(home.Pid())
		if err != nil {
			return err
		}
		pfd, err := r.Syscall(x86.SysPidfdOpen, uint64(vpid), 0)
		if err != nil {
			return fmt.Errorf("pidfd_open(%d): %w", vpid, err)
		}
		got, err := r.Syscall(x86.SysPidfdGetfd, pfd, uint64(spare), 0)
		if _, cerr := r.Syscall(x86.SysClose, pfd); err == nil && cerr != nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("pidfd_getfd from %d: %w", vpid, err)
		}
		tmp = got
	}
	if err := r.Place(int(tmp), num, cloexec); err != nil {
		return err
	}
	fdFlags := uint64(0)
	if cloexec {
		fdFlags = unix.FD_CLOEXEC
	}
	if _, err := r.Syscall(x86.SysFcntl, uint64(num), unix.F_SETFD, fdFlags); err != nil {
		return fmt.Errorf("fcntl(F_SETFD): %w", err)
	}
	return nil
}

// socketIn makes a socket inside r (so that it belongs to r's network
// namespace) set aside above the dumped fds, and returns that fd and
// ckpt's copy of it, through which the caller sets it up.
func socketIn(r Restorer, family, typ, proto int) (fd, copy int, err error) {
	s, err := r.Syscall(x86.SysSocket, uint64(family), uint64(typ), uint64(proto))
	if err != nil {
		return -1, -1, fmt.Errorf("socket(%d, %d, %d): %w", family, typ, proto, err)
	}
	moved, err := r.Syscall(x86.SysFcntl, s, unix.F_DUPFD, uint64(r.MaxFd()+1))
	if _, cerr := r.Syscall(x86.SysClose, s); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return -1, -1, fmt.Errorf("set a socket aside: %w", err)
	}
	if copy, err = fdOf(r.Pid(), int(moved)); err != nil {
		_, _ = r.Syscall(x86.SysClose, moved)
		return -1, -1, fmt.Errorf("the new socket: %w", err)
	}
	return int(moved), copy, nil
}

// sockProtoName is the name the kernel gives the protocol of a socket
// (the system.sockprotoname attribute of sockfs: "TCP", "UDPv6",
// "NETLINK", "UNIX-STREAM", ...), read through /proc without touching
// the task, in whatever network namespace the socket is; "" if unknown.
func sockProtoName(f *File) string {
	p := fmt.Sprintf("/proc/%d/fd/%d", f.Pid, f.Fd)
	if f.Pid == 0 {
		p = fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), f.Fd)
	}
	buf := make([]byte, 64)
	n, err := unix.Getxattr(p, "system.sockprotoname", buf)
	if err != nil || n <= 0 {
		return ""
	}
	if buf[n-1] == 0 {
		n--
	}
	return string(buf[:n])
}
