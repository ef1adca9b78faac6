package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/internal/kinds/fd"
	"github.com/ckpt/ckpt/internal/model"
	"github.com/ckpt/ckpt/test/testsupport"
)

// startProg starts build/PROG.64 in work with its log in work/prog.log
// (stdin a pipe when stdinPipe) and waits for READY.
func startProg(t *testing.T, prog, work string, stdinPipe bool) (*exec.Cmd, string) {
	t.Helper()
	name := prog + ".64"
	if strings.HasSuffix(prog, ".32") {
		name = prog // the ia32 build, named as such
	}
	bin, _ := filepath.Abs(filepath.Join(progsDir, "build", name))
	logPath := filepath.Join(work, "prog.log")
	logF, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logF.Close() })
	cmd := exec.Command(bin)
	cmd.Dir = work
	cmd.Stdout, cmd.Stderr = logF, logF
	// Its own session, as in the matrix: a restore elsewhere (the test
	// guest) has no process group of ours to join.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if stdinPipe {
		pr, pw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pr.Close(); pw.Close() })
		cmd.Stdin = pr
	}
	if _, err := testsupport.StartReady(cmd, logPath, readyTimeout); err != nil {
		t.Fatal(err)
	}
	return cmd, logPath
}

// dumpOne starts a test program, waits for READY and dumps it (killed),
// with the extra ckpt options given.
func dumpOne(t *testing.T, prog string, shellJob bool, extra ...string) string {
	t.Helper()
	work := t.TempDir()
	cmd, _ := startProg(t, prog, work, shellJob)
	pid := cmd.Process.Pid
	defer func() {
		_ = unix.Kill(pid, unix.SIGKILL)
		_ = cmd.Wait()
	}()
	img := filepath.Join(work, "img")
	args := []string{"dump", "-t", strconv.Itoa(pid), "-D", img}
	if shellJob {
		args = append(args, "--shell-job")
	}
	args = append(args, extra...)
	if out, err := exec.Command(ckptBin, args...).CombinedOutput(); err != nil {
		t.Fatalf("dump: %v: %s", err, out)
	}
	_ = cmd.Wait()
	reapAdopted()
	t.Cleanup(func() {
		removeLinkRemaps(t, img)
		removeShmNames(pid)
	})
	return img
}

// removeShmNames removes what the test program pid left in /dev/shm: a
// program that is dumped and never restored does not get to remove its
// POSIX shared memory and semaphore names, which end in "-PID" (see
// posix_shm.c).
func removeShmNames(pid int) {
	names, _ := filepath.Glob(fmt.Sprintf("/dev/shm/*-%d", pid))
	for _, n := range names {
		_ = os.Remove(n)
	}
}

// removeLinkRemaps removes the links that a dump never restored made for
// files unlinked while they kept other links (a restore removes them).
func removeLinkRemaps(t *testing.T, img string) {
	d, err := model.Load(img)
	if err != nil {
		t.Logf("load %s: %v", img, err)
		return
	}
	for _, to := range d.Linked {
		if name := d.Files[to].GetReg().GetName(); fd.IsLinkRemap(name) {
			_ = os.Remove(name)
		}
	}
}

// TestCritShow proves that Debian's crit decodes every image ckpt writes.
func TestCritShow(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	crit, err := exec.LookPath("crit")
	if err != nil {
		t.Fatal("crit is not installed (apt-get install criu python3-protobuf; scripts/setup.sh does it)")
	}
	for _, c := range []struct {
		prog     string
		shellJob bool
		args     []string
	}{{"files", false, nil}, {"signals", false, nil}, {"restart_read", true, nil}, {"pipes", false, nil}, {"eventfd_epoll", false, nil}, {"zombie", false, nil},
		{"file_locks_cr", false, []string{"--file-locks"}}, {"ghost_file", false, nil}, {"memfd", false, nil}, {"fifo", false, nil},
		{"uts_ns", false, nil}, {"ipc_ns", false, nil}, {"mnt_ns", false, nil}, {"pidns_nested", false, nil},
		{"unix_pair", false, nil}, {"unix_renamed", false, nil}, {"inotify", false, nil}, {"pty", false, nil},
		{"udp", false, nil}, {"netlink", false, nil}, {"tcp_established", false, []string{"--tcp-established"}},
		{"posix_shm", false, nil}, {"posix_shm", false, []string{"--link-remap"}}, {"sysv_ipc", false, nil}, {"shared_anon", false, nil}, {"cow_shared", false, nil}, {"posix_mqueue", false, nil},
		{"udp_mcast", false, nil}, {"netlink_dgram", false, nil}} {
		img := dumpOne(t, c.prog, c.shellJob, c.args...)
		ents, err := os.ReadDir(img)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range ents {
			if (!strings.HasSuffix(e.Name(), ".img") && !strings.HasPrefix(e.Name(), "stats-")) || strings.HasPrefix(e.Name(), "pages-") {
				continue
			}
			out, err := exec.Command(crit, "show", filepath.Join(img, e.Name())).CombinedOutput()
			if err != nil {
				t.Errorf("%s: crit show %s: %v: %s", c.prog, e.Name(), err, testsupport.LastLines(string(out), 3))
				continue
			}
			if !strings.Contains(string(out), `"magic"`) {
				t.Errorf("%s: crit show %s printed no image: %s", c.prog, e.Name(), testsupport.LastLines(string(out), 3))
			}
			n++
		}
		if n < 8 {
			t.Errorf("%s: only %d images checked", c.prog, n)
		}
	}
	// crit x DIR ps walks pstree.img from the root, whose parent is 0 as
	// CRIU writes it, and lists every task.
	for _, prog := range []string{"process_tree", "zombie", "pidns_nested"} {
		img := dumpOne(t, prog, false)
		out, err := exec.Command(crit, "x", img, "ps").CombinedOutput()
		if err != nil {
			t.Errorf("%s: crit x ps: %v: %s", prog, err, testsupport.LastLines(string(out), 3))
			continue
		}
		if pid := dumpedPid(t, img); !strings.Contains(string(out), pid) {
			t.Errorf("%s: crit x ps does not list the root %s: %s", prog, pid, out)
		}
	}
}
