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
// blocked reading its stdin, must read what is typed on the new one.
func TestShellJobTTY(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	work := t.TempDir()
	_, slave := openPty(t)
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
