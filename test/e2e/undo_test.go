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
	"github.com/ckpt/ckpt/internal/procfs"
	"github.com/ckpt/ckpt/test/testsupport"
)

// TestPanicUndo proves the undo of a run with CKPT_FAULT=panic-at=STEP:
// a dump that panics at any of its steps leaves the tree running,
// untraced and unchanged (the programs then pass their own checks), and
// a restore that panics at any of its steps leaves no process behind.
func TestPanicUndo(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	// mnt_ns and pidns_nested: a tree in namespaces of its own (mounts
	// made inside a new mount namespace, a nested PID namespace).
	for _, prog := range []string{"threads", "process_tree", "mnt_ns", "pidns_nested"} {
		for _, step := range []string{fault.DumpFrozen, fault.DumpInjecting, fault.DumpMemory} {
			t.Run(prog+"/"+step, func(t *testing.T) { dumpPanics(t, prog, step) })
		}
		for _, step := range []string{fault.RestoreHelper, fault.RestoreCloned, fault.RestoreRebuild} {
			t.Run(prog+"/"+step, func(t *testing.T) { restorePanics(t, prog, step) })
		}
	}
	// A tree of ia32 processes is restored from the ia32 helper (exec'd
	// from a memfd), which must be undone as well.
	for _, step := range []string{fault.RestoreHelper, fault.RestoreCloned, fault.RestoreRebuild} {
		t.Run("process_tree.32/"+step, func(t *testing.T) {
			if !hostIA32 {
				t.Skip("this kernel does not run ia32 programs")
			}
			restorePanics(t, "process_tree.32", step)
		})
	}
}

// mustNamePanic checks that ckpt failed and said it panicked at step.
func mustNamePanic(t *testing.T, what string, out []byte, err error, step string) {
	t.Helper()
	want := "panic: CKPT_FAULT panic-at=" + step
	if err == nil {
		t.Fatalf("%s succeeded with CKPT_FAULT=panic-at=%s: %s", what, step, out)
	}
	if !strings.Contains(string(out), want) || !strings.Contains(string(out), "fault.Panic") {
		t.Errorf("%s error does not name %q with its stack: %s", what, want, testsupport.LastLines(string(out), 5))
	}
}

// session lists the processes of session sid (a test program's tree).
func session(sid int) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if s, err := unix.Getsid(p); err == nil && s == sid {
			out = append(out, p)
		}
	}
	return out
}

func dumpPanics(t *testing.T, prog, step string) {
	work := t.TempDir()
	cmd, logPath := startProg(t, prog, work, false)
	pid := cmd.Process.Pid
	alive := true
	defer func() {
		killSession(pid)
		if alive {
			_ = cmd.Wait()
		}
		reapAdopted()
	}()
	procs := session(pid)
	before := map[int]*State{}
	for _, p := range procs {
		s, err := stableSnapshot(p)
		if err != nil {
			t.Fatal(err)
		}
		before[p] = s
	}
	img := filepath.Join(work, "img")
	dc := exec.Command(ckptBin, "dump", "-t", strconv.Itoa(pid), "-D", img)
	dc.Env = append(os.Environ(), fault.Env+"="+fault.PanicAt+"="+step)
	out, err := dc.CombinedOutput()
	mustNamePanic(t, "dump", out, err, step)
	if left, _ := os.ReadDir(img); len(left) != 0 {
		t.Errorf("the failed dump left %d files in the images directory", len(left))
	}
	if got := session(pid); len(got) != len(procs) {
		t.Errorf("the tree had processes %v before the dump, %v after", procs, got)
	}
	for _, p := range procs {
		tids, err := procfs.Threads(p)
		if err != nil {
			t.Errorf("process %d after the failed dump: %v", p, err)
			continue
		}
		for _, tid := range tids {
			st, err := procfs.ReadTaskStatus(p, tid)
			if err != nil {
				t.Errorf("thread %d of %d: %v", tid, p, err)
			} else if st.TracerPid != 0 {
				t.Errorf("thread %d of %d is still traced by %d", tid, p, st.TracerPid)
			}
		}
		// Settled: a thread the dump interrupted in sigwaitinfo shows
		// its full mask until it is back in the call.
		_, d, err := settledSnapshot(p, before[p], false)
		if err != nil {
			t.Errorf("process %d after the failed dump: %v", p, err)
		} else if d != "" {
			t.Errorf("the failed dump changed process %d: %s", p, d)
		}
	}
	r := &Run{}
	if err := r.finish(pid, logPath, &alive); err != nil {
		t.Errorf("%s after the failed dump: %v", prog, err)
	}
}

func restorePanics(t *testing.T, prog, step string) {
	restorePanicsIn(t, dumpOne(t, prog, false), step)
}

// restorePanicsIn restores the dump in img with a panic at step and
// checks that nothing is left: no task with a dumped PID, session or
// group id (a temporary leader), no child process.
func restorePanicsIn(t *testing.T, img, step string) {
	ps, err := image.ReadAll(image.Dir{Path: img}, image.PstreeName(), image.MagicPstree, func() *pstree.PstreeEntry { return &pstree.PstreeEntry{} })
	if err != nil {
		t.Fatal(err)
	}
	var ids []int
	for _, p := range ps {
		ids = append(ids, int(p.GetPid()), int(p.GetSid()), int(p.GetPgid()))
		for _, tid := range p.GetThreads() {
			ids = append(ids, int(tid))
		}
	}
	for _, id := range ids {
		if err := testsupport.WaitGone(id, goneTimeout); err != nil {
			t.Fatal(err)
		}
	}
	before := testsupport.Children()
	rc := exec.Command(ckptBin, "restore", "-D", img, "-d")
	rc.Env = append(os.Environ(), fault.Env+"="+fault.PanicAt+"="+step)
	out, err := rc.CombinedOutput()
	mustNamePanic(t, "restore", out, err, step)
	for _, id := range ids {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", id)); err == nil {
			t.Errorf("a task with the dumped pid %d exists after the failed restore", id)
			_ = unix.Kill(id, unix.SIGKILL)
		}
	}
	if after := testsupport.Children(); len(after) > len(before) {
		t.Errorf("the failed restore left child processes: %v before, %v after", before, after)
	}
	reapAdopted()
}
