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

// TestRestoreDetached restores with -d: ckpt returns while the task runs,
// the task is re-parented to this subreaper, and it still passes its own
// checks.
func TestRestoreDetached(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	img := dumpOne(t, "mem_heap", false)
	pid, err := strconv.Atoi(dumpedPid(t, img))
	if err != nil {
		t.Fatal(err)
	}
	if err := testsupport.WaitGone(pid, goneTimeout); err != nil {
		t.Fatal(err)
	}
	pidfile := filepath.Join(t.TempDir(), "pid")
	out, err := exec.Command(ckptBin, "restore", "-D", img, "-d", "--pidfile", pidfile).CombinedOutput()
	if err != nil {
		t.Fatalf("restore -d: %v: %s", err, out)
	}
	b, err := os.ReadFile(pidfile)
	if err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(pid) {
		t.Fatalf("pidfile: %q, %v; want %d", b, err, pid)
	}
	defer unix.Kill(pid, unix.SIGKILL)
	st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatalf("restored task: %v", err)
	}
	if f := strings.Fields(string(st[strings.LastIndexByte(string(st), ')')+2:])); len(f) < 2 || f[1] != strconv.Itoa(os.Getpid()) {
		t.Errorf("restored task's parent is %v, want this subreaper %d", f[1], os.Getpid())
	}
	r := &Run{}
	alive := true
	if err := r.finish(pid, filepath.Join(filepath.Dir(img), "prog.log"), &alive); err != nil {
		t.Errorf("restored task: %v", err)
	}
}
