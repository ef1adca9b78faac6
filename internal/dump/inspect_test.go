package dump

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/ckpt/ckpt/internal/ckerr"
	"github.com/ckpt/ckpt/internal/kinds/fd"
)

// TestInspectRefusesSocket checks that the refusal of an fd ckpt cannot
// dump is a typed error naming the task and the fd. inspect does not stop
// the task, so this needs no ptrace; reading another task's fds needs root.
func TestInspectRefusesSocket(t *testing.T) {
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
	_, err = inspect(&Options{}, fd.New(), cmd.Process.Pid, 1)
	if !errors.Is(err, ckerr.ErrUnsupported) {
		t.Fatalf("inspect of a task with a socket: %v; want ckerr.ErrUnsupported", err)
	}
	var ue *ckerr.UnsupportedError
	if !errors.As(err, &ue) || ue.Task != cmd.Process.Pid || !strings.HasPrefix(ue.Object, "fd 3, a socket") || !strings.Contains(ue.Reason, "close it") {
		t.Errorf("refusal %+v", ue)
	}
	if !strings.Contains(err.Error(), "socket") {
		t.Errorf("message %q does not say socket", err)
	}
}
