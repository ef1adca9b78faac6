package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/ckpt/ckpt/internal/fault"
	"github.com/ckpt/ckpt/test/testsupport"
)

// TestDaemonUndo proves that a restore that fails while temporary
// session and group leaders exist (or after they made a daemon's session)
// leaves nothing behind: no leader, no task, no child.
func TestDaemonUndo(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	for _, c := range []struct{ prog, step string }{
		{"daemon_pgrp", fault.RestoreLeaders},
		{"daemon_pgrp", fault.RestoreCloned},
		{"daemon", fault.RestoreLeaders},
		{"daemon", fault.RestoreMemberLeaders},
		{"daemon", fault.RestoreRebuild},
	} {
		t.Run(c.prog+"/"+c.step, func(t *testing.T) {
			restorePanicsIn(t, dumpDaemon(t, c.prog), c.step)
		})
	}
}

// dumpDaemon starts a daemon=yes program, dumps its daemon (which the
// dump kills) and returns the images directory.
func dumpDaemon(t *testing.T, prog string) string {
	t.Helper()
	work := t.TempDir()
	cmd, logPath := startProg(t, prog, work, false)
	launcher := cmd.Process.Pid
	ready, err := testsupport.WaitReady(logPath, readyTimeout, launcher)
	if err != nil {
		t.Fatal(err)
	}
	d, err := daemonPid(ready, launcher)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		killSession(d)
		_, _ = reap(d, goneTimeout)
		reapAdopted()
	}()
	img := filepath.Join(work, "img")
	if out, err := exec.Command(ckptBin, "dump", "-t", strconv.Itoa(d), "-D", img).CombinedOutput(); err != nil {
		t.Fatalf("dump: %v: %s", err, out)
	}
	return img
}
