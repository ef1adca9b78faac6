package e2e

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/test/testsupport"
)

// TestPostgres checkpoints Debian's PostgreSQL server: the postmaster and
// its background processes (checkpointer, background writer, WAL writer,
// autovacuum and logical replication launchers), which share a SysV
// shared memory segment, anonymous shared memory and POSIX shared memory
// in /dev/shm, each waiting in epoll on its latch. It runs as the
// postgres user from a cluster made by initdb in a temporary directory,
// listening on 127.0.0.1 and on a unix socket there. Rows written with
// psql before the dump are read back after the restore, over TCP and over
// the unix socket, and new rows go in (each connection is a new backend
// the restored postmaster forks). A psql session (outside the tree) keeps
// its TCP connection across (--tcp-established), and its backend an open
// transaction, committed after the restore.
func TestPostgres(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	realProgram(t, "PostgreSQL with a psql session in a transaction", "native")
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	if len(bins) == 0 {
		t.Fatal("postgresql is not installed (apt-get install postgresql; scripts/setup.sh does it)")
	}
	sort.Strings(bins)
	bin := filepath.Dir(bins[len(bins)-1])
	pgUser, err := user.Lookup("postgres")
	if err != nil {
		t.Fatalf("the postgresql package made no postgres user: %v", err)
	}
	uid, _ := strconv.Atoi(pgUser.Uid)
	gid, _ := strconv.Atoi(pgUser.Gid)
	asPostgres := &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, Setpgid: true}

	work := t.TempDir()
	// The server runs as postgres, which must reach its directory.
	for _, d := range []string{filepath.Dir(work), work} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(work, uid, gid); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(work, "data")
	port := strconv.Itoa(freePort(t))
	env := append(os.Environ(), "HOME="+work, "LC_ALL=C")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-A", "trust", "-U", "postgres", "--no-sync")
	initdb.Dir, initdb.Env, initdb.SysProcAttr = work, env, asPostgres
	if out, err := initdb.CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v: %s", err, testsupport.LastLines(string(out), 20))
	}

	logPath := filepath.Join(work, "postgres.log")
	logF, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logF.Close()
	// huge_pages is left at its default (try): where the machine has
	// huge pages reserved, the main shared memory is hugetlb memory,
	// which ckpt dumps too.
	cmd := exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-k", work, "-p", port,
		"-c", "listen_addresses=127.0.0.1", "-c", "shared_buffers=16MB", "-c", "dynamic_shared_memory_type=posix")
	cmd.Dir, cmd.Env, cmd.SysProcAttr = work, env, asPostgres
	cmd.Stdout, cmd.Stderr = logF, logF
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	defer func() { _ = unix.Kill(-pid, unix.SIGKILL); _ = cmd.Wait() }()
	defer func() {
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("postgres's output and ckpt's:\n%s", testsupport.LastLines(string(b), 30))
		}
	}()

	// psql runs one statement over TCP (host "127.0.0.1") or the unix
	// socket (host work) and returns its unaligned output.
	psql := func(host, sql string) (string, error) {
		c := exec.Command(filepath.Join(bin, "psql"), "-X", "-At", "-h", host, "-p", port, "-U", "postgres", "-d", "postgres",
			"-v", "ON_ERROR_STOP=1", "-c", sql)
		c.Dir, c.Env, c.SysProcAttr = work, env, &syscall.SysProcAttr{Credential: asPostgres.Credential}
		out, err := c.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	want := func(what, host, sql, w string) {
		t.Helper()
		got, err := psql(host, sql)
		if err != nil || got != w {
			t.Fatalf("%s: %s: %q (%v), want %q", what, sql, got, err, w)
		}
	}
	waitServing(t, "postgres does not answer", func() error {
		if out, err := psql("127.0.0.1", "SELECT 1"); err != nil || out != "1" {
			return fmt.Errorf("%q %v", out, err)
		}
		return nil
	})
	want("create", "127.0.0.1", "CREATE TABLE t (i int PRIMARY KEY, s text)", "CREATE TABLE")
	want("insert", work, "INSERT INTO t SELECT g, 'row ' || g FROM generate_series(1, 1000) g", "INSERT 0 1000")
	want("count", "127.0.0.1", "SELECT count(*), sum(i) FROM t", "1000|500500")
	// Every background process is up before the dump (the launchers
	// start a moment after the server answers).
	waitServing(t, "postgres's background processes", func() error {
		if n := len(procChildren(pid)); n < 5 {
			return fmt.Errorf("%d children", n)
		}
		return nil
	})
	time.Sleep(200 * time.Millisecond) // let the first connections' backends end

	// A psql session reading statements from a pipe holds its TCP
	// connection, and its backend a transaction, across the dump.
	session := exec.Command(filepath.Join(bin, "psql"), "-X", "-At", "-h", "127.0.0.1", "-p", port, "-U", "postgres", "-d", "postgres")
	session.Dir, session.Env, session.SysProcAttr = work, env, &syscall.SysProcAttr{Credential: asPostgres.Credential}
	in, err := session.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	outPipe, err := session.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	session.Stderr = session.Stdout
	if err := session.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = session.Process.Kill(); _ = session.Wait() }()
	replies := bufio.NewScanner(outPipe)
	ask := func(what, sql, w string) {
		t.Helper()
		if _, err := fmt.Fprintln(in, sql); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		got := make(chan bool, 1)
		go func() { got <- replies.Scan() }()
		select {
		case ok := <-got:
			if !ok {
				t.Fatalf("%s: psql ended: %v", what, replies.Err())
			}
			if w != "" && replies.Text() != w {
				t.Fatalf("%s: %s: %q, want %q", what, sql, replies.Text(), w)
			}
		case <-time.After(readyTimeout):
			t.Fatalf("%s: no answer to %s", what, sql)
		}
	}
	ask("session", "SELECT 'session ' || pg_backend_pid();", "")
	backend := replies.Text()
	ask("begin", "BEGIN;", "BEGIN")
	ask("insert in the transaction", "INSERT INTO t VALUES (5000, 'in a transaction');", "INSERT 0 1")

	srv := restartServer(t, cmd, work, logF, procChildren(pid))
	rpid := srv.pid

	want("count after the restore", "127.0.0.1", "SELECT count(*), sum(i) FROM t", "1000|500500")
	// The same session, the same backend, the same transaction.
	ask("session after the restore", "SELECT 'session ' || pg_backend_pid();", backend)
	ask("commit", "COMMIT;", "COMMIT")
	want("the session's row", work, "SELECT s FROM t WHERE i = 5000", "in a transaction")
	ask("session delete", "DELETE FROM t WHERE i = 5000;", "DELETE 1")
	want("a row over the unix socket", work, "SELECT s FROM t WHERE i = 777", "row 777")
	want("insert after the restore", "127.0.0.1", "INSERT INTO t VALUES (1001, 'after')", "INSERT 0 1")
	want("update after the restore", work, "UPDATE t SET s = 'changed' WHERE i <= 10", "UPDATE 10")
	want("count after the writes", "127.0.0.1", "SELECT count(*), sum(i), count(*) FILTER (WHERE s = 'changed') FROM t", "1001|501501|10")
	// A checkpoint goes through the restored checkpointer and its
	// shared memory.
	want("checkpoint", work, "CHECKPOINT", "CHECKPOINT")
	// A fast shutdown: the postmaster tells its restored children to
	// end, waits for them and exits.
	if err := unix.Kill(rpid, unix.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := srv.end(t, "SIGINT"); err != nil {
		t.Errorf("restored postgres: %v", err)
	}
	if b, _ := os.ReadFile(logPath); !strings.Contains(string(b), "database system is shut down") {
		t.Errorf("postgres did not shut down cleanly:\n%s", testsupport.LastLines(string(b), 20))
	}
}
