package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/test/testsupport"
)

// freePort is a TCP port of 127.0.0.1 free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitServing retries check until it succeeds or readyTimeout passes.
func waitServing(t *testing.T, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(readyTimeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// dumpServer dumps the tree of cmd with extra options, and waits for it
// to be gone.
func dumpServer(t *testing.T, cmd *exec.Cmd, img string, extra ...string) {
	t.Helper()
	pid := cmd.Process.Pid
	args := append([]string{"dump", "-t", strconv.Itoa(pid), "-D", img}, extra...)
	if out, err := exec.Command(ckptBin, args...).CombinedOutput(); err != nil {
		t.Fatalf("dump %s: %v: %s", strings.Join(extra, " "), err, out)
	}
	_ = cmd.Wait()
	if err := testsupport.WaitGone(pid, goneTimeout); err != nil {
		t.Fatal(err)
	}
}

// restoredServer is a server tree restored in the background by
// restartServer.
type restoredServer struct {
	pid   int
	done  <-chan error
	ended bool
}

// restartServer dumps the server tree of cmd with --tcp-established into
// work/img, reaps the children the dump killed (they come to this
// subreaper, and the restore needs their PIDs) and restores the tree in
// the background, its output to logF. When the test ends, a restored
// tree that did not end is killed.
func restartServer(t *testing.T, cmd *exec.Cmd, work string, logF *os.File, children []int) *restoredServer {
	t.Helper()
	dumpServer(t, cmd, filepath.Join(work, "img"), "--tcp-established")
	for _, c := range children {
		var ws unix.WaitStatus
		_, _ = unix.Wait4(c, &ws, unix.WALL, nil)
	}
	rc := exec.Command(ckptBin, "restore", "-D", filepath.Join(work, "img"), "--tcp-established", "--pidfile", filepath.Join(work, "pid"))
	rc.Stdout, rc.Stderr = logF, logF
	rpid, done := restoreInBackground(t, rc, filepath.Join(work, "pid"))
	srv := &restoredServer{pid: rpid, done: done}
	t.Cleanup(func() {
		if srv.ended {
			return
		}
		_ = unix.Kill(-rpid, unix.SIGKILL)
		_ = unix.Kill(rpid, unix.SIGKILL)
		select {
		case <-done:
		case <-time.After(finishTimeout):
		}
	})
	return srv
}

// end waits for the restored server to end after what stopped it and
// returns how it ended; a server still running then is an error of t.
func (srv *restoredServer) end(t *testing.T, after string) error {
	t.Helper()
	select {
	case err := <-srv.done:
		srv.ended = true
		return err
	case <-time.After(finishTimeout):
		t.Errorf("the restored server did not end after %s", after)
		return nil
	}
}

// TestRedis checkpoints Debian's redis-server, with keys written by
// redis-cli and a redis-cli session (another process, outside the dumped
// tree) connected over TCP across the dump and the restore
// (--tcp-established); a unix socket listens too. After the restore the
// same redis-cli session goes on, the keys are read back over TCP and
// over the unix socket, and new keys are written.
func TestRedis(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	realProgram(t, "redis-server", "native")
	server, err1 := exec.LookPath("redis-server")
	cli, err2 := exec.LookPath("redis-cli")
	if err1 != nil || err2 != nil {
		t.Fatal("redis-server or redis-cli is not installed (apt-get install redis-server redis-tools; scripts/setup.sh does it)")
	}
	work := t.TempDir()
	port := strconv.Itoa(freePort(t))
	sock := filepath.Join(work, "redis.sock")
	logPath := filepath.Join(work, "redis.log")
	logF, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logF.Close()
	cmd := exec.Command(server, "--port", port, "--bind", "127.0.0.1", "--unixsocket", sock,
		"--save", "", "--appendonly", "no", "--dir", work, "--daemonize", "no", "--logfile", "")
	cmd.Dir = work
	cmd.Stdout, cmd.Stderr = logF, logF
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	defer func() { _ = unix.Kill(pid, unix.SIGKILL); _ = cmd.Wait() }()
	redis := func(args ...string) (string, error) {
		out, err := exec.Command(cli, append([]string{"-p", port}, args...)...).CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	want := func(what, got string, err error, w string) {
		t.Helper()
		if err != nil || got != w {
			b, _ := os.ReadFile(logPath)
			t.Fatalf("%s: %q (%v), want %q; server log:\n%s", what, got, err, w, testsupport.LastLines(string(b), 20))
		}
	}
	waitServing(t, "redis-server does not answer", func() error {
		if out, err := redis("PING"); err != nil || out != "PONG" {
			return fmt.Errorf("%q %v", out, err)
		}
		return nil
	})
	for i := 0; i < 100; i++ {
		out, err := redis("SET", "key"+strconv.Itoa(i), "value"+strconv.Itoa(i))
		want("SET", out, err, "OK")
	}
	out, err := redis("RPUSH", "list", "a", "b", "c")
	want("RPUSH", out, err, "3")

	// A redis-cli session reading commands from a pipe: it holds its
	// connection from start to end.
	session := exec.Command(cli, "-p", port)
	in, err := session.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	outPipe, err := session.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := session.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = session.Process.Kill(); _ = session.Wait() }()
	replies := bufio.NewScanner(outPipe)
	ask := func(cmd string) (string, error) {
		if _, err := fmt.Fprintln(in, cmd); err != nil {
			return "", err
		}
		got := make(chan bool, 1)
		go func() { got <- replies.Scan() }()
		select {
		case ok := <-got:
			if !ok {
				return "", fmt.Errorf("redis-cli ended: %v", replies.Err())
			}
			return replies.Text(), nil
		case <-time.After(readyTimeout):
			return "", fmt.Errorf("no answer to %s", cmd)
		}
	}
	out, err = ask("INCR counter")
	want("session INCR", out, err, "1")
	out, err = ask("CLIENT ID")
	want("session CLIENT ID", out, err, out)
	clientID := out

	srv := restartServer(t, cmd, work, logF, nil)

	// The same session, the same connection (the same client ID).
	out, err = ask("INCR counter")
	want("session INCR after the restore", out, err, "2")
	out, err = ask("CLIENT ID")
	want("session CLIENT ID after the restore", out, err, clientID)
	for i := 0; i < 100; i += 7 {
		out, err := redis("GET", "key"+strconv.Itoa(i))
		want("GET after the restore", out, err, "value"+strconv.Itoa(i))
	}
	o, err := exec.Command(cli, "-s", sock, "LRANGE", "list", "0", "-1").CombinedOutput()
	want("LRANGE over the unix socket", strings.Join(strings.Fields(string(o)), " "), err, "a b c")
	out, err = redis("SET", "new", "after")
	want("SET after the restore", out, err, "OK")
	out, err = redis("DBSIZE")
	want("DBSIZE", out, err, "103")
	out, err = redis("SHUTDOWN", "NOSAVE")
	if err == nil && out != "" {
		t.Logf("SHUTDOWN: %q", out)
	}
	if err := srv.end(t, "SHUTDOWN"); err != nil {
		t.Errorf("restored redis-server: %v", err)
	}
}

// TestNginx checkpoints Debian's nginx, a master process and two worker
// processes (their channels are unix socketpairs, they share the
// listening socket and an accept mutex in shared memory), serving a file
// from a temporary root; curl fetches it before the dump (and holds a
// keep-alive connection to a worker across it, with --tcp-established)
// and after the restore, when the master still answers a reload.
func TestNginx(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	realProgram(t, "nginx, master and workers", "native")
	nginx, err1 := exec.LookPath("nginx")
	curl, err2 := exec.LookPath("curl")
	if err1 != nil || err2 != nil {
		t.Fatal("nginx or curl is not installed (apt-get install nginx-light curl; scripts/setup.sh does it)")
	}
	work := t.TempDir()
	port := strconv.Itoa(freePort(t))
	if err := os.MkdirAll(filepath.Join(work, "www"), 0o755); err != nil {
		t.Fatal(err)
	}
	page := "served by nginx " + port + "\n"
	if err := os.WriteFile(filepath.Join(work, "www", "index.html"), []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := `daemon off;
master_process on;
worker_processes 2;
user root;
pid ` + work + `/nginx.pid;
error_log ` + work + `/error.log info;
events { worker_connections 64; }
http {
	access_log off;
	client_body_temp_path ` + work + `/body;
	proxy_temp_path ` + work + `/proxy;
	fastcgi_temp_path ` + work + `/fastcgi;
	uwsgi_temp_path ` + work + `/uwsgi;
	scgi_temp_path ` + work + `/scgi;
	keepalive_timeout 300s;
	server {
		listen 127.0.0.1:` + port + `;
		root ` + work + `/www;
	}
}
`
	confPath := filepath.Join(work, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(work, "nginx.log")
	logF, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logF.Close()
	cmd := exec.Command(nginx, "-p", work, "-c", confPath)
	cmd.Dir = work
	cmd.Stdout, cmd.Stderr = logF, logF
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	defer func() { _ = unix.Kill(-pid, unix.SIGKILL); _ = cmd.Wait() }()
	defer func() {
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("nginx's output and ckpt's:\n%s", testsupport.LastLines(string(b), 20))
		}
	}()
	url := "http://127.0.0.1:" + port + "/index.html"
	fetch := func() error {
		out, err := exec.Command(curl, "-sS", "--max-time", "5", url).CombinedOutput()
		if err != nil || string(out) != page {
			b, _ := os.ReadFile(filepath.Join(work, "error.log"))
			return fmt.Errorf("curl: %v: %q; error.log:\n%s", err, out, testsupport.LastLines(string(b), 10))
		}
		return nil
	}
	waitServing(t, "nginx does not serve the page", fetch)
	workers := func(master int) []int {
		var ws []int
		for _, c := range procChildren(master) {
			if testsupport.Comm(c) == "nginx" {
				ws = append(ws, c)
			}
		}
		return ws
	}
	waitServing(t, "nginx's workers", func() error {
		if n := len(workers(pid)); n != 2 {
			return fmt.Errorf("%d workers", n)
		}
		return nil
	})

	// A keep-alive connection to a worker, across the dump.
	conn, err := net.Dial("tcp4", "127.0.0.1:"+port)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rd := bufio.NewReader(conn)
	get := func(what string) {
		t.Helper()
		_ = conn.SetDeadline(time.Now().Add(readyTimeout))
		if _, err := fmt.Fprintf(conn, "GET /index.html HTTP/1.1\r\nHost: localhost\r\n\r\n"); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		length := -1
		for {
			line, err := rd.ReadString('\n')
			if err != nil {
				t.Fatalf("%s: reading the answer: %v", what, err)
			}
			if v, ok := strings.CutPrefix(strings.ToLower(line), "content-length: "); ok {
				length, _ = strconv.Atoi(strings.TrimSpace(v))
			}
			if line == "\r\n" {
				break
			}
		}
		body := make([]byte, length)
		if _, err := io.ReadFull(rd, body); err != nil || string(body) != page {
			t.Fatalf("%s: body %q (%v), want %q", what, body, err, page)
		}
	}
	get("before the dump")

	srv := restartServer(t, cmd, work, logF, workers(pid))
	rpid := srv.pid
	if n := len(workers(rpid)); n != 2 {
		t.Fatalf("the restored master has %d workers, want 2", n)
	}
	get("on the kept connection after the restore")
	if err := fetch(); err != nil {
		t.Fatalf("after the restore: %v", err)
	}
	// The master still commands its workers: a reload starts new ones.
	old := workers(rpid)
	if err := unix.Kill(rpid, unix.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitServing(t, "new workers after a reload", func() error {
		ws := workers(rpid)
		if len(ws) != 2 || ws[0] == old[0] || ws[0] == old[1] || ws[1] == old[0] || ws[1] == old[1] {
			return fmt.Errorf("workers %v, were %v", ws, old)
		}
		return nil
	})
	waitServing(t, "nginx after the reload", fetch)
	if err := unix.Kill(rpid, unix.SIGQUIT); err != nil {
		t.Fatal(err)
	}
	_ = srv.end(t, "SIGQUIT")
}

// procChildren lists the children of pid (from each of its threads'
// children files).
func procChildren(pid int) []int {
	var kids []int
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	for _, task := range tasks {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, task.Name()))
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil {
				kids = append(kids, n)
			}
		}
	}
	return kids
}
