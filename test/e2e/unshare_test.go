package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/internal/procfs"
	"github.com/ckpt/ckpt/test/testsupport"
)

// TestUnsharePidFork dumps and restores the usual way of starting a
// sandboxed job, util-linux's `unshare --pid --fork --uts --ipc CMD`,
// by its unshare process: unshare is the root, in ckpt's PID namespace,
// and CMD (testdata/progs pidns_init, which forks a child and a
// grandchild) is PID 1 of the namespace unshare made, with a host name
// of its own (set with nsenter). After the restore CMD is PID 1 there again with its outer
// PID, in a UTS namespace with its host name and an IPC namespace that
// are not ckpt's, unshare still waits for it, and the program PASSes.
//
// With --mount-proc, CMD is in a mount namespace of its own too (all
// mounts private, and a proc of its PID namespace on /proc): after the
// restore its /proc is again a proc of its PID namespace, stacked on the
// restorer's.
func TestUnsharePidFork(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Fatal("util-linux unshare is not installed (scripts/setup.sh installs it)")
	}
	for _, mountProc := range []bool{false, true} {
		name := "plain"
		if mountProc {
			name = "mount-proc"
		}
		t.Run(name, func(t *testing.T) { testUnshare(t, unshare, mountProc) })
	}
}

func testUnshare(t *testing.T, unshare string, mountProc bool) {
	name := "unshare --pid --fork"
	if mountProc {
		name += " --mount-proc"
	}
	realProgram(t, name, "native")
	const host = "ckpt-unshare"
	work := t.TempDir()
	bin, _ := filepath.Abs(filepath.Join(progsDir, "build", "pidns_init.64"))
	logPath := filepath.Join(work, "prog.log")
	logF, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logF.Close()
	args := []string{"--pid", "--fork", "--uts", "--ipc"}
	if mountProc {
		args = append(args, "--mount-proc")
	}
	cmd := exec.Command(unshare, append(args, bin)...)
	cmd.Dir = work
	cmd.Stdout, cmd.Stderr = logF, logF
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if _, err := testsupport.StartReady(cmd, logPath, readyTimeout); err != nil {
		t.Fatal(err)
	}
	root := cmd.Process.Pid
	defer func() {
		_ = unix.Kill(root, unix.SIGKILL)
		_ = cmd.Wait()
	}()
	init, err := onlyChild(root)
	if err != nil {
		t.Fatal(err)
	}
	before, err := procfs.ReadStatus(init)
	if err != nil {
		t.Fatal(err)
	}
	// The host name of the job's namespace, set from outside (a shell
	// as CMD would take PID 2 for its own children).
	if out, err := exec.Command("nsenter", "--target", strconv.Itoa(init), "--uts", "hostname", host).CombinedOutput(); err != nil {
		t.Fatalf("nsenter hostname %s: %v: %s", host, err, out)
	}
	img := filepath.Join(work, "img")
	if out, err := exec.Command(ckptBin, "dump", "-t", strconv.Itoa(root), "-D", img, "-v4", "-o", "dump.log").CombinedOutput(); err != nil {
		t.Fatalf("dump: %v: %s", err, out)
	}
	_ = cmd.Wait()
	reapAdopted()
	for _, p := range []int{root, init} {
		if err := testsupport.WaitGone(p, goneTimeout); err != nil {
			t.Fatal(err)
		}
	}

	t.Cleanup(func() {
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(img, "restore.log"))
			t.Logf("restore log: %s", testsupport.LastLines(string(log), 8))
		}
	})
	pidfile := filepath.Join(work, "pidfile")
	rc := exec.Command(ckptBin, "restore", "-D", img, "--pidfile", pidfile, "-v4", "-o", "restore.log")
	got, done := restoreInBackground(t, rc, pidfile)
	if got != root {
		t.Errorf("unshare restored as pid %d, want %d", got, root)
	}
	check := func() error {
		c, err := onlyChild(got)
		if err != nil {
			return err
		}
		st, err := procfs.ReadStatus(c)
		if err != nil {
			return err
		}
		if fmt.Sprint(st.NSpid) != fmt.Sprint(before.NSpid) {
			return fmt.Errorf("CMD's NSpid is %v, was %v", st.NSpid, before.NSpid)
		}
		kinds := []string{"pid", "uts", "ipc"}
		if mountProc {
			kinds = append(kinds, "mnt")
			// Its /proc shows its PID namespace: PID 1 is CMD itself.
			self, err := os.Readlink(fmt.Sprintf("/proc/%d/root/proc/1/ns/pid", c))
			its, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", c))
			if err != nil || self != its {
				return fmt.Errorf("CMD's /proc/1 is in PID namespace %q (%v), CMD's is %s", self, err, its)
			}
		}
		for _, ns := range kinds {
			mine, _ := os.Readlink("/proc/self/ns/" + ns)
			its, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", c, ns))
			if err != nil || its == mine {
				return fmt.Errorf("CMD's %s namespace is %q (%v), ckpt's is %s", ns, its, err, mine)
			}
		}
		for _, ns := range kinds[1:] {
			a, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", got, ns))
			b, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", c, ns))
			if a != b {
				return fmt.Errorf("unshare's %s namespace is %s, CMD's %s", ns, a, b)
			}
		}
		pfc, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid_for_children", got))
		its, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", c))
		if pfc != its {
			return fmt.Errorf("unshare's pid_for_children is %s, CMD's namespace %s", pfc, its)
		}
		out, err := exec.Command("nsenter", "--target", strconv.Itoa(c), "--uts", "hostname").Output()
		if err != nil {
			return fmt.Errorf("nsenter hostname: %v", err)
		}
		if h := string(bytes.TrimSpace(out)); h != host {
			return fmt.Errorf("CMD's hostname is %q, want %q", h, host)
		}
		return unix.Kill(c, unix.SIGTERM)
	}
	if err := check(); err != nil {
		_ = unix.Kill(got, unix.SIGKILL)
		<-done
		t.Fatal(err)
	}
	code := testsupport.ExitCode(<-done)
	if err := verdict(logPath, code, ""); err != nil {
		log, _ := os.ReadFile(filepath.Join(img, "restore.log"))
		t.Errorf("after restore: %v (exit %d); restore log: %s", err, code, testsupport.LastLines(string(log), 5))
	}
}

// onlyChild is the one child of process pid.
func onlyChild(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) != 1 {
		return 0, fmt.Errorf("process %d has children %v, want one", pid, f)
	}
	return strconv.Atoi(f[0])
}
