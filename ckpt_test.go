package ckpt_test

import (
	"errors"

	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt"
	"github.com/ckpt/ckpt/test/testsupport"
)

// A cut image is reported as ErrCorruptImage, naming the file.
func TestMain(m *testing.M) {
	testsupport.NoInheritedFds()
	os.Exit(m.Run())
}

func TestRestoreCorruptImage(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "inventory.img"), []byte{1, 2}, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := ckpt.Restore(ckpt.RestoreOptions{ImagesDir: dir})
	if !errors.Is(err, ckpt.ErrCorruptImage) || !strings.Contains(err.Error(), "inventory.img") {
		t.Fatalf("restore of a cut inventory.img: %v; want ErrCorruptImage naming the file", err)
	}
	if errors.Is(err, ckpt.ErrUnsupported) || errors.Is(err, ckpt.ErrPidInUse) {
		t.Errorf("%v matches another sentinel", err)
	}
}

func TestCPUCapRefused(t *testing.T) {
	if _, err := ckpt.Dump(ckpt.DumpOptions{Pid: 1, ImagesDir: t.TempDir(), CPUCap: "sse"}); err == nil || !strings.Contains(err.Error(), "--cpu-cap=sse") {
		t.Errorf("dump with CPUCap sse: %v", err)
	}
	if _, err := ckpt.Restore(ckpt.RestoreOptions{ImagesDir: t.TempDir(), CPUCap: "sse"}); err == nil || !strings.Contains(err.Error(), "--cpu-cap=sse") {
		t.Errorf("restore with CPUCap sse: %v", err)
	}
	if ckpt.CPUCapValues[0] != ckpt.CPUCapIns {
		t.Errorf("CPUCapValues %v: the default is not first", ckpt.CPUCapValues)
	}
}

// startSleep starts sleep(1) with the extra files given (fd 3 on) and
// returns once it sleeps: while exec and the dynamic loader run, its
// memory and fds change from moment to moment.
func startSleep(t *testing.T, extra ...*os.File) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "60")
	cmd.ExtraFiles = extra
	if err := cmd.Start(); err != nil {
		t.Fatal("sleep:", err)
	}
	proc := "/proc/" + strconv.Itoa(cmd.Process.Pid)
	for i := 0; i < 200; i++ {
		st, _ := os.ReadFile(proc + "/stat")
		exe, _ := os.Readlink(proc + "/exe")
		loading := false
		fds, _ := os.ReadDir(proc + "/fd")
		for _, fd := range fds {
			l, _ := os.Readlink(proc + "/fd/" + fd.Name())
			loading = loading || strings.Contains(l, ".so")
		}
		if !loading && strings.HasSuffix(exe, "/sleep") && strings.Contains(string(st), ") S ") {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	return cmd
}

// A dump refuses a packet socket with an *UnsupportedError naming task and fd,
// and leaves the task running.
func TestDumpUnsupported(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	// A packet socket: a kind ckpt does not dump.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal("packet socket:", err)
	}
	f := os.NewFile(uintptr(fd), "packet")
	defer f.Close()
	cmd := startSleep(t, f) // the socket is its fd 3
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	_, err = ckpt.Dump(ckpt.DumpOptions{Pid: cmd.Process.Pid, ImagesDir: t.TempDir()})
	var ue *ckpt.UnsupportedError
	if !errors.Is(err, ckpt.ErrUnsupported) || !errors.As(err, &ue) {
		t.Fatalf("dump of a task with a socket: %v; want an *UnsupportedError", err)
	}
	if ue.Task != cmd.Process.Pid || !strings.Contains(ue.Object, "fd 3") || !strings.Contains(ue.Object, "a packet socket") || ue.Reason == "" {
		t.Errorf("refusal %+v", ue)
	}
	st, err := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/status")
	if err != nil || !strings.Contains(string(st), "TracerPid:\t0\n") || strings.Contains(string(st), "State:\tZ") {
		t.Errorf("the refused task is not left running and untraced: %v\n%s", err, st)
	}
}

func TestCheckSummary(t *testing.T) {
	rs := []ckpt.CheckResult{
		{Name: "ptrace", OK: true, Required: true},
		{Name: "compat self-test", OK: false, Detail: "ENOEXEC"},
	}
	if !ckpt.CheckOK(rs) || ckpt.CheckCompatOK(rs) {
		t.Errorf("CheckOK %v, CheckCompatOK %v", ckpt.CheckOK(rs), ckpt.CheckCompatOK(rs))
	}
	if got, want := ckpt.CheckSummary(rs), "summary: native (x86_64) checkpoint/restore: yes; ia32 (compat): no"; got != want {
		t.Errorf("CheckSummary = %q, want %q", got, want)
	}
	if got, want := rs[1].String(), "FAIL  compat self-test: ENOEXEC"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
	rs[0].OK = false
	if ckpt.CheckOK(rs) {
		t.Error("CheckOK with a failed required probe")
	}
}

// A dump kills the task without reaping it when it is the caller's own
// child: the caller's Wait gets its status (SIGKILL), not ECHILD.
func TestDumpLeavesOwnChildToCaller(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	cmd := startSleep(t)
	if _, err := ckpt.Dump(ckpt.DumpOptions{Pid: cmd.Process.Pid, ImagesDir: t.TempDir()}); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("dump: %v", err)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ProcessState.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("Wait after the dump: %v; want the status of a task killed by SIGKILL", err)
	}
}
