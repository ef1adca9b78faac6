package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/test/testsupport"
)

// TestRestoreDetachedWithoutCPU dumps with --cpu-cap=none, which leaves
// out cpuinfo.img as CRIU does, and restores that dump with the default
// CPU check, which has nothing to compare and lets it run.
func TestRestoreDetachedWithoutCPU(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	work := t.TempDir()
	cmd, logPath := startProg(t, "mem_heap", work, false)
	pid := cmd.Process.Pid
	img := filepath.Join(work, "img")
	out, err := exec.Command(ckptBin, "dump", "-t", strconv.Itoa(pid), "-D", img, "--cpu-cap=none").CombinedOutput()
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("dump --cpu-cap=none: %v: %s", err, out)
	}
	_ = cmd.Wait()
	reapAdopted()
	if _, err := os.Stat(filepath.Join(img, "cpuinfo.img")); !os.IsNotExist(err) {
		t.Errorf("dump --cpu-cap=none wrote cpuinfo.img (%v)", err)
	}
	if err := testsupport.WaitGone(pid, goneTimeout); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(ckptBin, "restore", "-D", img, "-d").CombinedOutput(); err != nil {
		t.Fatalf("restore -d of a dump without cpuinfo.img: %v: %s", err, out)
	}
	defer unix.Kill(pid, unix.SIGKILL)
	r := &Run{}
	alive := true
	if err := r.finish(pid, logPath, &alive); err != nil {
		t.Errorf("restored task: %v", err)
	}
}
