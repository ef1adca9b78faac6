package ckpt_test

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

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

// A dump refuses a socket with an *UnsupportedError naming task and fd,
// and leaves the task running.
func TestDumpUnsupported(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Skip("no loopback:", err)
	}
	defer l.Close()
	f, err := l.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command("sleep", "60")
	cmd.ExtraFiles = []*os.File{f} // fd 3
	if err := cmd.Start(); err != nil {
		t.Skip("no sleep:", err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	_, err = ckpt.Dump(ckpt.DumpOptions{Pid: cmd.Process.Pid, ImagesDir: t.TempDir()})
	var ue *ckpt.UnsupportedError
	if !errors.Is(err, ckpt.ErrUnsupported) || !errors.As(err, &ue) {
		t.Fatalf("dump of a task with a socket: %v; want an *UnsupportedError", err)
	}
	if ue.Task != cmd.Process.Pid || !strings.Contains(ue.Object, "fd 3") || !strings.Contains(ue.Object, "a TCP socket (IPv4) in state LISTEN") || ue.Reason == "" {
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
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Skip("no sleep:", err)
	}
	// Dumped once it sleeps: while the dynamic loader runs, it holds
	// files open that it closes a moment later.
	proc := "/proc/" + strconv.Itoa(cmd.Process.Pid)
	for i := 0; i < 200; i++ {
		st, _ := os.ReadFile(proc + "/stat")
		loading := false
		fds, _ := os.ReadDir(proc + "/fd")
		for _, fd := range fds {
			l, _ := os.Readlink(proc + "/fd/" + fd.Name())
			loading = loading || strings.Contains(l, ".so")
		}
		if !loading && strings.Contains(string(st), ") S ") {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
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
