package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/test/testsupport"
)

// openPty opens a pseudo-terminal pair (posix_openpt, unlockpt, ptsname
// done with the ioctls behind them).
func openPty(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no /dev/ptmx: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		m.Close()
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(); s.Close() })
	return m, s
}

// TestShellJobTTY dumps a program whose stdin is a terminal with
// --shell-job and restores it with another terminal as stdin: the program,
// blocked reading its stdin, must read what is typed on the new one, and
// the new terminal must be in the dumped one's modes (echo off, as an
// editor or a password prompt leaves it) and window size.
func TestShellJobTTY(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	work := t.TempDir()
	_, slave := openPty(t)
	tio, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	tio.Lflag &^= unix.ECHO
	if err := unix.IoctlSetTermios(int(slave.Fd()), unix.TCSETS, tio); err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetWinsize(int(slave.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 41, Col: 107}); err != nil {
		t.Fatal(err)
	}
	bin, _ := filepath.Abs(filepath.Join(progsDir, "build", "restart_read.64"))
	logPath := filepath.Join(work, "prog.log")
	logF, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logF.Close()
	cmd := exec.Command(bin)
	cmd.Dir = work
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, logF, logF
	if _, err := testsupport.StartReady(cmd, logPath, readyTimeout); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	defer func() { _ = unix.Kill(pid, unix.SIGKILL); _ = cmd.Wait() }()
	img := filepath.Join(work, "img")
	if out, err := exec.Command(ckptBin, "dump", "-t", strconv.Itoa(pid), "-D", img).CombinedOutput(); err == nil || !strings.Contains(string(out), "a tty") {
		t.Fatalf("dump without --shell-job: %v: %s; want a refusal naming the tty", err, out)
	}
	if out, err := exec.Command(ckptBin, "dump", "-t", strconv.Itoa(pid), "-D", img, "--shell-job").CombinedOutput(); err != nil {
		t.Fatalf("dump --shell-job: %v: %s", err, out)
	}
	// Debian's crit reads the terminal's image (CRIU's tty_info_entry).
	if crit, err := exec.LookPath("crit"); err != nil {
		t.Error("crit is not installed (scripts/setup.sh installs it)")
	} else if out, err := exec.Command(crit, "show", filepath.Join(img, "tty-info.img")).CombinedOutput(); err != nil || !strings.Contains(string(out), `"ws_col": 107`) {
		t.Errorf("crit show tty-info.img: %v: %s", err, testsupport.LastLines(string(out), 5))
	}
	_ = cmd.Wait()
	if err := testsupport.WaitGone(pid, goneTimeout); err != nil {
		t.Fatal(err)
	}
	master2, slave2 := openPty(t)
	rc := exec.Command(ckptBin, "restore", "-D", img, "--shell-job", "--pidfile", filepath.Join(work, "pid"))
	rc.Stdin, rc.Stdout, rc.Stderr = slave2, logF, logF
	_, done := restoreInBackground(t, rc, filepath.Join(work, "pid"))
	if l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/0", pid)); err != nil || l != slave2.Name() {
		t.Errorf("restored stdin is %q (%v), want the new terminal %s", l, err, slave2.Name())
	}
	if got, err := unix.IoctlGetTermios(int(slave2.Fd()), unix.TCGETS); err != nil || got.Lflag&unix.ECHO != 0 {
		t.Errorf("the new terminal echoes (%v): the dumped one's modes were not carried over", err)
	}
	if ws, err := unix.IoctlGetWinsize(int(slave2.Fd()), unix.TIOCGWINSZ); err != nil || ws.Row != 41 || ws.Col != 107 {
		t.Errorf("the new terminal is %dx%d (%v), want the dumped 107x41", ws.Col, ws.Row, err)
	}
	if _, err := master2.WriteString("ckpt-input\n"); err != nil {
		t.Fatal(err)
	}
	_ = unix.Kill(pid, unix.SIGTERM)
	var code int
	select {
	case err := <-done:
		code = testsupport.ExitCode(err)
	case <-time.After(finishTimeout):
		_ = unix.Kill(pid, unix.SIGKILL)
		t.Fatal("restored task did not end")
	}
	if err := verdict(logPath, code, ""); err != nil {
		t.Errorf("restored program: %v", err)
	}
}
