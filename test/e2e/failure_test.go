package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/pstree"
	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/internal/fault"
	"github.com/ckpt/ckpt/internal/image"
	"github.com/ckpt/ckpt/test/testsupport"
)

// restoreMustFail runs ckpt restore (with the extra options given) and
// checks that it fails naming want, and that no task of it is left behind.
func restoreMustFail(t *testing.T, img, want string, pid string, extra ...string) {
	t.Helper()
	before := len(testsupport.Children())
	out, err := exec.Command(ckptBin, append([]string{"restore", "-D", img, "-d"}, extra...)...).CombinedOutput()
	if err == nil {
		t.Fatalf("restore succeeded; want an error naming %q", want)
	}
	if !strings.Contains(string(out), want) {
		t.Errorf("restore error does not name %q: %s", want, out)
	}
	if strings.Contains(string(out), "panic") {
		t.Errorf("restore panicked: %s", out)
	}
	if pid != "" {
		if _, err := os.Stat("/proc/" + pid); err == nil {
			t.Errorf("a task with pid %s exists after the failed restore", pid)
		}
	}
	if after := len(testsupport.Children()); after > before {
		t.Errorf("the failed restore left %d new child process(es)", after-before)
	}
}

func dumpedPid(t *testing.T, img string) string {
	t.Helper()
	ps, err := image.ReadAll(image.Dir{Path: img}, image.PstreeName(), image.MagicPstree, func() *pstree.PstreeEntry { return &pstree.PstreeEntry{} })
	if err != nil || len(ps) == 0 {
		t.Fatalf("read the pstree of %s: %v", img, err)
	}
	return strconv.Itoa(int(ps[0].GetPid()))
}

func TestRestoreFailures(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	t.Run("truncated core image", func(t *testing.T) {
		img := dumpOne(t, "mem_heap", false)
		pid := dumpedPid(t, img)
		core := filepath.Join(img, "core-"+pid+".img")
		fi, _ := os.Stat(core)
		if err := os.Truncate(core, fi.Size()/2); err != nil {
			t.Fatal(err)
		}
		restoreMustFail(t, img, "core-"+pid+".img", pid)
	})
	t.Run("truncated pages image", func(t *testing.T) {
		img := dumpOne(t, "mem_heap", false)
		pid := dumpedPid(t, img)
		pages := filepath.Join(img, "pages-1.img")
		fi, _ := os.Stat(pages)
		if err := os.Truncate(pages, fi.Size()-4096); err != nil {
			t.Fatal(err)
		}
		restoreMustFail(t, img, "pages-1.img", pid)
		// ckpt show says the dump cannot be restored, and fails.
		out, err := exec.Command(ckptBin, "show", img).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "pages-1.img holds") || strings.Contains(string(out), "the images load") {
			t.Errorf("ckpt show of a dump with a short pages image: %v: %s", err, testsupport.LastLines(string(out), 3))
		}
		if err := os.Remove(pages); err != nil {
			t.Fatal(err)
		}
		out, err = exec.Command(ckptBin, "show", img).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "pages-1.img is missing") {
			t.Errorf("ckpt show of a dump without its pages image: %v: %s", err, testsupport.LastLines(string(out), 3))
		}
	})
	t.Run("missing inventory", func(t *testing.T) {
		img := dumpOne(t, "mem_heap", false)
		if err := os.Remove(filepath.Join(img, "inventory.img")); err != nil {
			t.Fatal(err)
		}
		restoreMustFail(t, img, "inventory.img", dumpedPid(t, img))
	})
	t.Run("file gone before restore", func(t *testing.T) {
		img := dumpOne(t, "files", false)
		pid := dumpedPid(t, img)
		// files.c keeps its files in its cwd, the parent of img.
		victim := ""
		ents, _ := os.ReadDir(filepath.Dir(img))
		for _, e := range ents {
			if !e.IsDir() && e.Name() != "prog.log" {
				victim = filepath.Join(filepath.Dir(img), e.Name())
				break
			}
		}
		if victim == "" {
			t.Fatal("files left no file to remove")
		}
		if err := os.Remove(victim); err != nil {
			t.Fatal(err)
		}
		restoreMustFail(t, img, filepath.Base(victim), pid)
	})
	t.Run("file lock taken meanwhile", func(t *testing.T) {
		img := dumpOne(t, "file_locks_cr", false, "--file-locks")
		pid := dumpedPid(t, img)
		// Without --file-locks the dump's locks would be lost: refused.
		restoreMustFail(t, img, "use --file-locks", pid)
		// Another process (this test) takes a read lock where the task
		// had a write lock (bytes 20-29 of its file "posix", in its cwd,
		// the parent of img): the restore cannot take it back.
		f, err := os.OpenFile(filepath.Join(filepath.Dir(img), "posix"), os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := unix.FcntlFlock(f.Fd(), unix.F_SETLK, &unix.Flock_t{Type: unix.F_RDLCK, Start: 20, Len: 10}); err != nil {
			t.Fatal(err)
		}
		restoreMustFail(t, img, "/posix): take its POSIX write lock on bytes 20-29 again", pid, "--file-locks")
	})
	t.Run("ghost files", func(t *testing.T) {
		// A restore that fails after the unlinked files were made again
		// leaves nothing of them in the file system.
		img := dumpOne(t, "ghost_file", false)
		pid := dumpedPid(t, img)
		cwd := filepath.Dir(img)
		names := func() []string {
			var out []string
			ents, _ := os.ReadDir(cwd)
			for _, e := range ents {
				out = append(out, e.Name())
			}
			return out
		}
		before := names()
		// The rebuild fault strikes after the task's memory is mapped,
		// its unlinked files made again.
		rc := exec.Command(ckptBin, "restore", "-D", img, "-d")
		rc.Env = append(os.Environ(), fault.Env+"=panic-at="+fault.RestoreRebuild)
		if out, err := rc.CombinedOutput(); err == nil || !strings.Contains(string(out), fault.RestoreRebuild) {
			t.Fatalf("restore with the fault %s: %v: %s", fault.RestoreRebuild, err, testsupport.LastLines(string(out), 3))
		}
		if _, err := os.Stat("/proc/" + pid); err == nil {
			t.Errorf("a task with pid %s exists after the failed restore", pid)
		}
		if after := names(); strings.Join(after, " ") != strings.Join(before, " ") {
			t.Errorf("the failed restore changed the directory of the unlinked files: %v, was %v", after, before)
		}
		// A truncated ghost image is an error naming it.
		ghost := filepath.Join(img, "ghost-file-2.img")
		fi, _ := os.Stat(ghost)
		if err := os.Truncate(ghost, fi.Size()-100); err != nil {
			t.Fatal(err)
		}
		restoreMustFail(t, img, "ghost-file-2.img", pid)
	})
	t.Run("pid in use", func(t *testing.T) {
		img := dumpOne(t, "mem_heap", false)
		pid := dumpedPid(t, img)
		rc := exec.Command(ckptBin, "restore", "-D", img)
		if err := rc.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() {
			_ = exec.Command("kill", "-KILL", pid).Run()
			_ = rc.Wait()
		}()
		// Wait until the first restore has the pid.
		for i := 0; i < 500; i++ {
			if _, err := os.Stat("/proc/" + pid + "/exe"); err == nil {
				if l, _ := os.Readlink("/proc/" + pid + "/exe"); strings.HasSuffix(l, "mem_heap.64") {
					break
				}
			}
			waitALittle()
		}
		out, err := exec.Command(ckptBin, "restore", "-D", img, "-d").CombinedOutput()
		if err == nil || !strings.Contains(string(out), "pid "+pid+" is in use") {
			t.Fatalf("second restore: %v: %s; want 'pid %s is in use'", err, out, pid)
		}
	})
	t.Run("pid held by the unreaped original", func(t *testing.T) {
		// The dumped original is this test's child and is not reaped
		// before the restore: it is a zombie that holds the pid.
		work := t.TempDir()
		cmd, _ := startProg(t, "mem_heap", work, false)
		pid := strconv.Itoa(cmd.Process.Pid)
		img := filepath.Join(work, "img")
		if out, err := exec.Command(ckptBin, "dump", "-t", pid, "-D", img).CombinedOutput(); err != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("dump: %v: %s", err, out)
		}
		out, err := exec.Command(ckptBin, "restore", "-D", img, "-d").CombinedOutput()
		_ = cmd.Wait()
		want := fmt.Sprintf("a zombie until its parent %d reaps it", os.Getpid())
		if err == nil || !strings.Contains(string(out), want) {
			t.Fatalf("restore while the original is a zombie: %v: %s; want %q", err, out, want)
		}
	})
	t.Run("timeout is a dump option", func(t *testing.T) {
		out, err := exec.Command(ckptBin, "restore", "-D", t.TempDir(), "--timeout", "5").CombinedOutput()
		if err == nil || !strings.Contains(string(out), "--timeout is a dump option") {
			t.Fatalf("restore --timeout: %v: %s; want a refusal naming --timeout", err, out)
		}
	})
}

func TestDumpFailures(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	out, err := exec.Command(ckptBin, "dump", "-t", "999999999", "-D", t.TempDir()).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "999999999") || !strings.Contains(string(out), "no such process") {
		t.Errorf("dump of a missing pid: %v: %s", err, out)
	}
	out, err = exec.Command(ckptBin, "dump", "-t", "1", "-D", t.TempDir(), "--auto-dedup").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--auto-dedup is not implemented") {
		t.Errorf("unimplemented CRIU option: %v: %s", err, out)
	}
	// CRIU options that take a separate value are refused by name, the
	// value consumed with them.
	for _, o := range [][]string{{"--cgroup-root", "/x"}, {"--lsm-profile", "x"}, {"--external", "mnt[]"}, {"--network-lock", "iptables"}, {"--freeze-cgroup", "/sys/fs/cgroup/x"}} {
		out, err := exec.Command(ckptBin, "dump", "-t", "999999999", "-D", t.TempDir(), o[0], o[1]).CombinedOutput()
		if err == nil || !strings.Contains(string(out), o[0]+" is not implemented") {
			t.Errorf("dump %s %s: %v: %s", o[0], o[1], err, out)
		}
	}
	// --address and --port name a page server, which --page-server asks
	// for: alone they are an error that says so.
	for _, o := range [][]string{{"--address", "127.0.0.1"}, {"--port", "1234"}} {
		out, err := exec.Command(ckptBin, "dump", "-t", "999999999", "-D", t.TempDir(), o[0], o[1]).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "add --page-server") {
			t.Errorf("dump %s %s without --page-server: %v: %s", o[0], o[1], err, out)
		}
	}
	// --ghost-limit takes its value (a size); --link-remap is taken (a
	// dump option: linked files as CRIU dumps them with it).
	out, err = exec.Command(ckptBin, "dump", "-t", "999999999", "-D", t.TempDir(), "--ghost-limit", "2M").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "no such process") {
		t.Errorf("dump --ghost-limit 2M of a missing pid: %v: %s", err, out)
	}
	out, err = exec.Command(ckptBin, "dump", "-t", "999999999", "-D", t.TempDir(), "--link-remap").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "no such process") {
		t.Errorf("dump --link-remap of a missing pid: %v: %s", err, out)
	}
	out, err = exec.Command(ckptBin, "dump", "-t", "999999999", "-D", t.TempDir(), "--pidfile", "x").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--pidfile is a restore option") {
		t.Errorf("dump --pidfile: %v: %s", err, out)
	}
	// PID 1 and kernel threads are refused for what they are.
	out, err = exec.Command(ckptBin, "dump", "-t", "1", "-D", t.TempDir()).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "init of the host") {
		t.Errorf("dump of pid 1: %v: %s", err, out)
	}
	if comm, _ := os.ReadFile("/proc/2/comm"); strings.TrimSpace(string(comm)) == "kthreadd" {
		out, err = exec.Command(ckptBin, "dump", "-t", "2", "-D", t.TempDir()).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "kernel thread") {
			t.Errorf("dump of kthreadd: %v: %s", err, out)
		}
	}
}

// TestDumpDiskFull dumps into a tiny tmpfs: the dump must fail with the
// cause, and the task must go on untouched and pass its own checks.
func TestDumpDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	work := t.TempDir()
	img := filepath.Join(work, "img")
	if err := os.Mkdir(img, 0o700); err != nil {
		t.Fatal(err)
	}
	mountTmpfs(t, img, 64)
	cmd, logPath := startProg(t, "mem_anon", work, false)
	pid := cmd.Process.Pid
	alive := true
	defer func() {
		if alive {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()
	// Stable and settled snapshots: a task in sigwaitinfo shows the
	// signals it waits for unblocked, and one the dump interrupted shows
	// them blocked until it is back in the call.
	before, err := stableSnapshot(pid)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(ckptBin, "dump", "-t", fmt.Sprint(pid), "-D", img).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "no space left") {
		t.Fatalf("dump into a full disk: %v: %s", err, out)
	}
	if left, _ := os.ReadDir(img); len(left) != 0 {
		t.Errorf("the failed dump left %d files in the images directory", len(left))
	}
	_, d, err := settledSnapshot(pid, before, false)
	if err != nil {
		t.Fatalf("task after the failed dump: %v", err)
	}
	if d != "" {
		t.Errorf("the failed dump changed the task: %s", d)
	}
	r := &Run{}
	if err := r.finish(pid, logPath, &alive); err != nil {
		t.Errorf("task after the failed dump: %v", err)
	}
	_ = cmd.Wait()
}

// mountTmpfs mounts a tmpfs of kib KiB on dir, a full disk for a dump to
// run into, unmounted when the test ends.
func mountTmpfs(t *testing.T, dir string, kib int64) {
	t.Helper()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%dk", kib), "ckpt-full", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", dir).Run() })
}
