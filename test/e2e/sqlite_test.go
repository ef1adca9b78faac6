package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/test/testsupport"
)

// TestSqliteTransaction is the data loss that issue 10 found, with the
// real program: sqlite3 in the middle of a write transaction holds POSIX
// locks on its database. Dumped and restored with --file-locks, it still
// holds them, so another sqlite3 is locked out until the restored session
// commits; the committed row is there afterwards and the other writer
// then gets in. (Without the locks the other writer's row would be
// overwritten by the restored session's commit.)
func TestSqliteTransaction(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	realProgram(t, "sqlite3 in a write transaction", "native")
	sqlite, err := exec.LookPath("sqlite3")
	if err != nil {
		t.Fatal("sqlite3 is not installed (apt-get install sqlite3; scripts/setup.sh does it)")
	}
	work := t.TempDir()
	db := filepath.Join(work, "db")
	sql := func(stmt string) (string, error) {
		out, err := exec.Command(sqlite, "-cmd", ".timeout 0", db, stmt).CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	lockedOut := func(when string) {
		t.Helper()
		out, err := sql("INSERT INTO t VALUES('other')")
		if err == nil || !strings.Contains(out, "locked") {
			t.Fatalf("%s: another sqlite3 wrote to the database (err %v, %q): the transaction's locks are gone", when, err, out)
		}
	}
	if out, err := sql("CREATE TABLE t(x)"); err != nil {
		t.Fatalf("create table: %v: %s", err, out)
	}

	logPath := filepath.Join(work, "sqlite.log")
	logF, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logF.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Close()
	cmd := exec.Command(sqlite, db)
	cmd.Dir = work
	cmd.Stdin, cmd.Stdout, cmd.Stderr = pr, logF, logF
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pr.Close()
	pid := cmd.Process.Pid
	defer func() {
		_ = unix.Kill(pid, unix.SIGKILL)
		_ = cmd.Wait()
	}()
	if _, err := pw.WriteString("BEGIN IMMEDIATE;\nINSERT INTO t VALUES('restored');\nSELECT 'READY';\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := testsupport.WaitReady(logPath, readyTimeout, pid); err != nil {
		t.Fatalf("sqlite3: %v", err)
	}
	lockedOut("before the dump")

	img := filepath.Join(work, "img")
	if out, err := exec.Command(ckptBin, "dump", "-t", strconv.Itoa(pid), "-D", img, "--file-locks", "--shell-job").CombinedOutput(); err != nil {
		t.Fatalf("dump: %v: %s", err, out)
	}
	_ = cmd.Wait()
	pw.Close()

	// Restored with a new pipe as its stdin (--shell-job: the dumped one
	// led outside the tree), detached: it becomes this subreaper's child.
	pr2, pw2, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pw2.Close()
	pidfile := filepath.Join(work, "pid")
	rc := exec.Command(ckptBin, "restore", "-D", img, "--file-locks", "--shell-job", "-d", "--pidfile", pidfile)
	rc.Stdin = pr2
	var rout bytes.Buffer
	rc.Stdout, rc.Stderr = &rout, &rout
	err = rc.Run()
	pr2.Close()
	if err != nil {
		t.Fatalf("restore: %v: %s", err, rout.String())
	}
	b, err := os.ReadFile(pidfile)
	if err != nil {
		t.Fatal(err)
	}
	rpid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("pidfile %q: %v", b, err)
	}
	defer unix.Kill(rpid, unix.SIGKILL)
	lockedOut("after the restore")

	if _, err := pw2.WriteString("COMMIT;\nSELECT 'DONE';\n.quit\n"); err != nil {
		t.Fatal(err)
	}
	pw2.Close()
	ws, err := reap(rpid, goneTimeout)
	if err != nil {
		t.Fatal(err)
	}
	log, _ := os.ReadFile(logPath)
	if !ws.Exited() || ws.ExitStatus() != 0 || !strings.Contains(string(log), "DONE") {
		t.Fatalf("restored sqlite3 ended with %#x; its output: %s", ws, log)
	}
	if out, err := sql("SELECT x FROM t"); err != nil || out != "restored" {
		t.Fatalf("after the commit the table holds %q (%v), want the restored session's row", out, err)
	}
	if out, err := sql("INSERT INTO t VALUES('other')"); err != nil {
		t.Fatalf("after the commit another sqlite3 cannot write: %v: %s", err, out)
	}
}
