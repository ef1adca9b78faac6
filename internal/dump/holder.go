//go:build linux && amd64

package dump

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The holder keeps the userfaultfds of a pre-copy chain alive between two
// dumps: the write protection that tracks a task's writes lasts only
// while a reference to its userfaultfd does. A dump that leaves a tracked
// tree running starts ckpt again as a small background process
// (TrackHolderCommand) that holds them, with a pidfd per process, and
// listens on a unix socket in the images directory (HolderSocket). The
// next dump of the chain connects, takes them with SCM_RIGHTS, and the
// holder removes its socket and exits. It also exits, closing them
// (which unprotects the pages), once every process it tracks has exited,
// or on SIGTERM/SIGINT.

// TrackHolderCommand is the hidden ckpt command that runs a holder:
// ckpt TrackHolderCommand DIR PID...; the userfaultfd and pidfd of the
// i-th PID are fds 3+2i and 4+2i.
const TrackHolderCommand = "__track-holder"

// HolderSocket is the holder's socket in the images directory.
const HolderSocket = ".ckpt-track.sock"

// holderTimeout bounds the exchanges with a holder.
const holderTimeout = 5 * time.Second

// sockPath names the socket in dir through an open fd of dir, which
// keeps the path short whatever dir is (sun_path holds 108 bytes).
func sockPath(dirfd int) string {
	return fmt.Sprintf("/proc/self/fd/%d/%s", dirfd, HolderSocket)
}

// spawnHolder starts a holder in dir for procs and waits until it
// listens.
func spawnHolder(dir string, procs map[int]*trackedProc) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("start the holder: %w", err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	args := []string{TrackHolderCommand, abs}
	var files []*os.File
	for pid, p := range procs {
		args = append(args, strconv.Itoa(pid))
		files = append(files, p.uffd, p.pidfd)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	cmd := exec.Command(exe, args...)
	cmd.ExtraFiles = files
	cmd.Stdout = w
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Dir = "/" // keeps no directory busy
	err = cmd.Start()
	w.Close()
	if err != nil {
		return fmt.Errorf("start the holder %s: %w", exe, err)
	}
	// Reaped when it exits, by whoever is its parent then.
	go cmd.Wait()
	r.SetReadDeadline(time.Now().Add(holderTimeout))
	line, err := bufio.NewReader(r).ReadString('\n')
	if line != "ok\n" {
		cmd.Process.Kill()
		if line == "" && err != nil {
			return fmt.Errorf("the holder did not start (%s %s): %v", exe, TrackHolderCommand, err)
		}
		return fmt.Errorf("the holder: %s", strings.TrimSpace(line))
	}
	return nil
}

// RunTrackHolder is the holder (TrackHolderCommand): it holds the fds of
// the pids from fd 3 on, listens in dir and hands them to the first dump
// that asks. It reports "ok" or the error on stdout, then closes it.
func RunTrackHolder(dir string, pidArgs []string) error {
	type held struct{ pid, uffd, pidfd int }
	var procs []held
	for i, a := range pidArgs {
		pid, err := strconv.Atoi(a)
		if err != nil {
			return fmt.Errorf("holder: pid %q", a)
		}
		procs = append(procs, held{pid, 3 + 2*i, 4 + 2*i})
	}
	ready := func(err error) error {
		if err != nil {
			fmt.Fprintf(os.Stdout, "%v\n", err)
		} else {
			fmt.Fprint(os.Stdout, "ok\n")
		}
		if null, nerr := os.OpenFile(os.DevNull, os.O_WRONLY, 0); nerr == nil {
			unix.Dup2(int(null.Fd()), 1)
			null.Close()
		}
		return err
	}
	dirfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return ready(fmt.Errorf("holder: %s: %w", dir, err))
	}
	path := sockPath(dirfd)
	lfd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return ready(fmt.Errorf("holder: socket: %w", err))
	}
	_ = unix.Unlink(path) // a holder before it that died
	old := unix.Umask(0o077)
	err = unix.Bind(lfd, &unix.SockaddrUnix{Name: path})
	unix.Umask(old)
	if err != nil {
		return ready(fmt.Errorf("holder: bind %s: %w", filepath.Join(dir, HolderSocket), err))
	}
	defer unix.Unlink(path)
	if err := unix.Listen(lfd, 4); err != nil {
		return ready(fmt.Errorf("holder: listen: %w", err))
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	ready(nil)
	for {
		select {
		case <-sigs:
			return nil
		default:
		}
		pfds := []unix.PollFd{{Fd: int32(lfd), Events: unix.POLLIN}}
		for _, p := range procs {
			pfds = append(pfds, unix.PollFd{Fd: int32(p.pidfd), Events: unix.POLLIN})
		}
		n, err := unix.Poll(pfds, 500)
		if err == unix.EINTR || n == 0 {
			continue
		}
		if err != nil {
			return fmt.Errorf("holder: poll: %w", err)
		}
		// A pidfd is readable once its process has exited: its
		// tracking is of no use any more.
		var left []held
		for i, p := range procs {
			if pfds[i+1].Revents != 0 {
				unix.Close(p.uffd)
				unix.Close(p.pidfd)
				continue
			}
			left = append(left, p)
		}
		procs = left
		if len(procs) == 0 {
			return nil
		}
		if pfds[0].Revents&unix.POLLIN == 0 {
			continue
		}
		cfd, _, err := unix.Accept4(lfd, unix.SOCK_CLOEXEC)
		if err != nil {
			continue
		}
		// Only root, or ckpt's own user, takes the fds.
		cred, err := unix.GetsockoptUcred(cfd, unix.SOL_SOCKET, unix.SO_PEERCRED)
		if err != nil || (cred.Uid != 0 && int(cred.Uid) != os.Geteuid()) {
			unix.Close(cfd)
			continue
		}
		tv := unix.NsecToTimeval(holderTimeout.Nanoseconds())
		unix.SetsockoptTimeval(cfd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
		unix.SetsockoptTimeval(cfd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv)
		req := make([]byte, 16)
		if n, err := unix.Read(cfd, req); err != nil || string(req[:n]) != "take" {
			unix.Close(cfd)
			continue
		}
		// Handed over, or lost if the taker went away meanwhile: either
		// way this holder is done.
		for _, p := range procs {
			msg := binary.LittleEndian.AppendUint64(nil, uint64(p.pid))
			if err := unix.Sendmsg(cfd, msg, unix.UnixRights(p.uffd, p.pidfd), nil, 0); err != nil {
				break
			}
		}
		unix.Sendmsg(cfd, make([]byte, 8), nil, nil, 0)
		unix.Close(cfd)
		return nil
	}
}

// takeFromHolder takes the userfaultfds that the holder in dir keeps;
// the holder exits then.
func takeFromHolder(dir string) (map[int]*trackedProc, error) {
	dirfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(dirfd)
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: sockPath(dirfd)}); err != nil {
		return nil, fmt.Errorf("%w: connect to %s: %v", errNoHolder, filepath.Join(dir, HolderSocket), err)
	}
	tv := unix.NsecToTimeval(holderTimeout.Nanoseconds())
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	if _, err := unix.Write(fd, []byte("take")); err != nil {
		return nil, fmt.Errorf("%w: %v", errNoHolder, err)
	}
	out := map[int]*trackedProc{}
	fail := func(err error) (map[int]*trackedProc, error) {
		for _, p := range out {
			p.close()
		}
		return nil, fmt.Errorf("%w: %v", errNoHolder, err)
	}
	buf := make([]byte, 8)
	oob := make([]byte, unix.CmsgSpace(2*4))
	for {
		n, oobn, _, _, err := unix.Recvmsg(fd, buf, oob, unix.MSG_CMSG_CLOEXEC)
		if err != nil {
			return fail(err)
		}
		if n != 8 {
			return fail(fmt.Errorf("short message (%d bytes)", n))
		}
		pid := int(binary.LittleEndian.Uint64(buf))
		var fds []int
		if oobn > 0 {
			cms, err := unix.ParseSocketControlMessage(oob[:oobn])
			if err != nil {
				return fail(err)
			}
			for _, cm := range cms {
				got, err := unix.ParseUnixRights(&cm)
				if err != nil {
					return fail(err)
				}
				fds = append(fds, got...)
			}
		}
		if pid == 0 {
			for _, f := range fds {
				unix.Close(f)
			}
			return out, nil
		}
		if len(fds) != 2 {
			for _, f := range fds {
				unix.Close(f)
			}
			return fail(fmt.Errorf("process %d: %d fds", pid, len(fds)))
		}
		out[pid] = &trackedProc{pid: pid, uffd: os.NewFile(uintptr(fds[0]), "userfaultfd"), pidfd: os.NewFile(uintptr(fds[1]), "pidfd")}
	}
}
