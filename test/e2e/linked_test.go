package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestLinkedRestoreTwice dumps posix_shm, whose semaphores and linked
// file are files in /dev/shm unlinked under the name they were mapped or
// opened by while they keep another (internal/kinds/fd/linked.go).
// Without --link-remap the dump adds nothing in /dev/shm and its images
// restore twice: the first restored tree is killed and reaped, the
// second is checked by the program itself (PASS). The first is not: its
// check takes the semaphore and removes the names, which live on disk,
// not in the dump. With --link-remap the dump adds its link_remap
// links, the first restore removes them, and a second restore fails
// naming why, leaving no process behind.
func TestLinkedRestoreTwice(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	for _, bits := range []string{"64", "32"} {
		for _, linkRemap := range []bool{false, true} {
			name := bits
			if linkRemap {
				name += "/link-remap"
			}
			t.Run(name, func(t *testing.T) { linkedRestoreTwice(t, bits, linkRemap) })
		}
	}
}

func shmNames(t *testing.T) map[string]bool {
	t.Helper()
	ents, err := os.ReadDir("/dev/shm")
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, e := range ents {
		names[e.Name()] = true
	}
	return names
}

func linkedRestoreTwice(t *testing.T, bits string, linkRemap bool) {
	work := t.TempDir()
	prog := "posix_shm"
	if bits == "32" {
		prog = "posix_shm.32"
	}
	cmd, logPath := startProg(t, prog, work, false)
	pid := cmd.Process.Pid
	tag := "-" + strconv.Itoa(pid)
	defer func() {
		// The program's names, left by the killed trees.
		for n := range shmNames(t) {
			if strings.HasSuffix(n, tag) {
				_ = os.Remove(filepath.Join("/dev/shm", n))
			}
		}
	}()
	defer endSession(t, pid)
	before := shmNames(t)
	img := filepath.Join(work, "img")
	args := []string{"dump", "-t", strconv.Itoa(pid), "-D", img, "-o", "dump.log", "-v4"}
	if linkRemap {
		args = append(args, "--link-remap")
	}
	if out, err := exec.Command(ckptBin, args...).CombinedOutput(); err != nil {
		t.Fatalf("dump: %v: %s", err, out)
	}
	_ = cmd.Wait()
	endSession(t, pid) // the child, adopted
	// Other tests may add names in /dev/shm meanwhile: the dump's links
	// are link_remap.*, and the program's names end in its PID.
	var added []string
	for n := range shmNames(t) {
		if !before[n] && (strings.HasPrefix(n, "link_remap.") || strings.HasSuffix(n, tag)) {
			added = append(added, n)
		}
	}
	defer func() {
		// What the dump added, if the restore did not remove it.
		for _, n := range added {
			_ = os.Remove(filepath.Join("/dev/shm", n))
		}
	}()
	if !linkRemap && len(added) != 0 {
		t.Fatalf("the dump added %v in /dev/shm", added)
	}
	if linkRemap && (len(added) == 0 || !strings.HasPrefix(added[0], "link_remap.")) {
		t.Fatalf("the dump with --link-remap added %v in /dev/shm, want its link_remap links", added)
	}
	restore := func() ([]byte, error) {
		return exec.Command(ckptBin, "restore", "-D", img, "-d", "-o", "restore.log", "-v4").CombinedOutput()
	}
	// First restore: the tree runs; then it is killed and reaped.
	if out, err := restore(); err != nil {
		t.Fatalf("first restore: %v: %s", err, out)
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err != nil {
		t.Fatalf("first restore: task %d is not there: %v", pid, err)
	}
	for _, n := range added {
		if _, err := os.Lstat(filepath.Join("/dev/shm", n)); !os.IsNotExist(err) {
			t.Errorf("the restore left the dump's link /dev/shm/%s (%v)", n, err)
		}
	}
	endSession(t, pid)
	out, err := restore()
	if linkRemap {
		if err == nil {
			t.Fatalf("second restore of a --link-remap dump succeeded: %s", out)
		}
		if !strings.Contains(string(out), "restores once") {
			t.Errorf("second restore of a --link-remap dump: %v: %s; want the message that it restores once", err, out)
		}
		if left := session(pid); len(left) != 0 {
			t.Errorf("the failed restore left processes %v", left)
		}
		return
	}
	if err != nil {
		t.Fatalf("second restore: %v: %s", err, out)
	}
	r := &Run{}
	alive := true
	if err := r.finish(pid, logPath, &alive); err != nil {
		t.Errorf("second restored tree: %v", err)
	}
}

// endSession kills every process of session sid (a test program's tree)
// and reaps them, as this subreaper adopts them.
func endSession(t *testing.T, sid int) {
	t.Helper()
	deadline := time.Now().Add(goneTimeout)
	for {
		killSession(sid)
		reapAdopted()
		if len(session(sid)) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("session %d: processes %v left", sid, session(sid))
		}
	}
}
