package testsupport

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestExitCode(t *testing.T) {
	for _, c := range []struct {
		err  error
		want int
	}{
		{nil, 0},
		{errors.New("not an exit"), -1},
		{exec.Command("sh", "-c", "exit 3").Run(), 3},
		{exec.Command("sh", "-c", "kill -KILL $$").Run(), -1},
	} {
		if got := ExitCode(c.err); got != c.want {
			t.Errorf("ExitCode(%v) = %d, want %d", c.err, got, c.want)
		}
	}
	if got := StatusCode(unix.WaitStatus(3 << 8)); got != 3 {
		t.Errorf("StatusCode(exit 3) = %d", got)
	}
	if got := StatusCode(unix.WaitStatus(unix.SIGKILL)); got != 128+9 {
		t.Errorf("StatusCode(SIGKILL) = %d", got)
	}
}

// startLogged starts sh -c script with its output in a log and waits for
// READY.
func startLogged(t *testing.T, script string) (*exec.Cmd, string, error) {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), "log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command("sh", "-c", script)
	cmd.Stdout, cmd.Stderr = f, f
	line, err := StartReady(cmd, logPath, 10*time.Second)
	if err == nil {
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	}
	return cmd, line, err
}

func TestStartReady(t *testing.T) {
	cmd, line, err := startLogged(t, "echo hello; echo 'READY x=1'; exec sleep 10")
	if err != nil || line != "READY x=1" {
		t.Fatalf("StartReady: %q, %v", line, err)
	}
	if !slices.Contains(Children(), cmd.Process.Pid) {
		t.Errorf("Children() = %v lacks %d", Children(), cmd.Process.Pid)
	}
	if s := State(cmd.Process.Pid); s != 'S' && s != 'R' {
		t.Errorf("State = %q", s)
	}
	if c := Comm(cmd.Process.Pid); c != "sh" && c != "sleep" {
		t.Errorf("Comm = %q", c)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if err := WaitGone(cmd.Process.Pid, 5*time.Second); err != nil {
		t.Error(err)
	}

	if _, _, err := startLogged(t, "echo 'FAIL: boom'; exec sleep 10"); err == nil || err.Error() != "FAIL: boom" {
		t.Errorf("FAIL line: %v", err)
	}
	if _, _, err := startLogged(t, "echo bye; exit 3"); err == nil || !strings.Contains(err.Error(), "status 0x300") || !strings.Contains(err.Error(), "bye") {
		t.Errorf("ended: %v", err)
	}
}

func TestWaitPidfile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pid")
	go func() {
		_ = os.WriteFile(path+".tmp", []byte("1234\n"), 0o644)
		time.Sleep(20 * time.Millisecond)
		_ = os.Rename(path+".tmp", path)
	}()
	if pid, err := WaitPidfile(path, 5*time.Second, nil); err != nil || pid != 1234 {
		t.Errorf("WaitPidfile = %d, %v", pid, err)
	}
	exited := make(chan error, 1)
	exited <- errors.New("exit status 1")
	_, err := WaitPidfile(filepath.Join(t.TempDir(), "none"), 5*time.Second, exited)
	var ended *EndedError
	if !errors.As(err, &ended) || ended.Err == nil || ended.Err.Error() != "exit status 1" {
		t.Errorf("ended restore: %v", err)
	}
	if _, err := WaitPidfile(filepath.Join(t.TempDir(), "none"), 20*time.Millisecond, nil); err == nil || errors.As(err, &ended) {
		t.Errorf("timeout: %v", err)
	}
}

func TestKillAndReap(t *testing.T) {
	cmd := exec.Command("sleep", "10")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	KillAndReap([]int{cmd.Process.Pid}, 5*time.Second)
	if err := WaitGone(cmd.Process.Pid, time.Second); err != nil {
		t.Error(err)
	}
}

// TestPagesBytes: the pages images' sizes are summed, other files left out.
func TestPagesBytes(t *testing.T) {
	dir := t.TempDir()
	for name, size := range map[string]int{"pages-1.img": 4096, "pages-2.img": 100, "pagemap-1.img": 7, "core-1.img": 9} {
		if err := os.WriteFile(filepath.Join(dir, name), make([]byte, size), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := PagesBytes(dir); n != 4196 || err != nil {
		t.Errorf("PagesBytes: %d, %v; want 4196", n, err)
	}
}
