package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/test/testsupport"
)

// TestGhostLimitRaised dumps ghost_limit, whose unlinked 2 MiB file the
// default --ghost-limit refuses (its matrix cell), with the limit raised:
// the dump saves it and the restored program finds it as it was.
func TestGhostLimitRaised(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	work := t.TempDir()
	cmd, logPath := startProg(t, "ghost_limit", work, false)
	pid := cmd.Process.Pid
	img := filepath.Join(work, "img")
	out, err := exec.Command(ckptBin, "dump", "-t", strconv.Itoa(pid), "-D", img, "--ghost-limit", "3M").CombinedOutput()
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("dump --ghost-limit 3M: %v: %s", err, out)
	}
	_ = cmd.Wait()
	if err := testsupport.WaitGone(pid, goneTimeout); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(ckptBin, "restore", "-D", img, "-d").CombinedOutput(); err != nil {
		t.Fatalf("restore: %v: %s", err, out)
	}
	defer unix.Kill(pid, unix.SIGKILL)
	r := &Run{}
	alive := true
	if err := r.finish(pid, logPath, &alive); err != nil {
		t.Errorf("restored task: %v", err)
	}
	if b, _ := os.ReadFile(logPath); !strings.Contains(string(b), "PASS") {
		t.Errorf("log: %s", testsupport.LastLines(string(b), 3))
	}
}
