package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/internal/pageserver"
	"github.com/ckpt/ckpt/test/testsupport"
)

// pageServer is a `ckpt page-server` run by a test.
type pageServer struct {
	cmd    *exec.Cmd
	port   string
	stderr bytes.Buffer
	done   chan error
	waited bool // done was received from
}

// startPageServer runs ckpt page-server -D dir on addr and a free port
// (inside the network namespace netns when set) and waits until it
// listens.
func startPageServer(t *testing.T, dir, addr, netns string) *pageServer {
	t.Helper()
	args := []string{"page-server", "-D", dir, "--address", addr, "--port", "0"}
	var cmd *exec.Cmd
	if netns != "" {
		cmd = exec.Command("ip", append([]string{"netns", "exec", netns, ckptBin}, args...)...)
	} else {
		cmd = exec.Command(ckptBin, args...)
	}
	ps := &pageServer{cmd: cmd, done: make(chan error, 1)}
	cmd.Stderr = &ps.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !ps.waited {
			_ = cmd.Process.Kill()
			_ = ps.wait()
		}
	})
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			line <- sc.Text()
		}
		close(line)
		_, _ = io.Copy(io.Discard, out)
		ps.done <- cmd.Wait()
	}()
	select {
	case l, ok := <-line:
		i := strings.LastIndexByte(l, ':')
		if !ok || !strings.HasPrefix(l, "page server listening on ") || i < 0 {
			t.Fatalf("page server: %q; %s", l, ps.stderr.String())
		}
		ps.port = l[i+1:]
	case <-time.After(readyTimeout):
		t.Fatal("page server did not listen")
	}
	return ps
}

// wait waits for the page server's exit: nil after one dump received.
func (ps *pageServer) wait() error {
	select {
	case err := <-ps.done:
		ps.waited = true
		if err != nil {
			return fmt.Errorf("%v: %s", err, ps.stderr.String())
		}
		return nil
	case <-time.After(finishTimeout):
		return fmt.Errorf("page server still running")
	}
}

// pageServerRun says how dumpToPageServer dumps and restores.
type pageServerRun struct {
	netns        string // the page server's network namespace
	leaveRunning bool   // dump -R
	lazy         bool   // restore --lazy-pages from the server's directory
}

// dumpToPageServer dumps prog (a -m64 or -m32 build) with --page-server
// to a page server at addr, restores the dump from the server's
// directory, which holds it whole, and checks the program's verdict.
func dumpToPageServer(t *testing.T, prog, addr string, how pageServerRun) {
	netns, leaveRunning := how.netns, how.leaveRunning
	if strings.HasSuffix(prog, ".32") && !hostIA32 {
		t.Skip("this kernel runs no ia32 programs")
	}
	work := t.TempDir()
	srvDir := filepath.Join(work, "srv")
	local := filepath.Join(work, "img")
	ps := startPageServer(t, srvDir, addr, netns)
	cmd, logPath := startProg(t, prog, work, false)
	pid := cmd.Process.Pid
	alive := true
	defer func() {
		if alive {
			_ = unix.Kill(pid, unix.SIGKILL)
			_ = cmd.Wait()
		}
	}()
	args := []string{"dump", "-t", strconv.Itoa(pid), "-D", local, "--page-server", "--address", addr, "--port", ps.port}
	if leaveRunning {
		// The pages are read from a copy-on-write snapshot once the
		// tree is let go (sent to the server then).
		args = append(args, "-R")
	}
	out, err := exec.Command(ckptBin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("dump --page-server: %v: %s", err, out)
	}
	if leaveRunning {
		_ = unix.Kill(pid, unix.SIGKILL)
	}
	_ = cmd.Wait()
	// The server first: reapAdopted reaps any child.
	if err := ps.wait(); err != nil {
		t.Fatalf("page server: %v", err)
	}
	reapAdopted()
	if err := testsupport.WaitGone(pid, goneTimeout); err != nil {
		t.Fatal(err)
	}
	// The pages went only to the server; the server holds every image.
	ents, _ := os.ReadDir(local)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "pages-") {
			t.Errorf("the local images hold %s", e.Name())
		}
		if e.Name() == "stats-dump" {
			continue
		}
		if _, err := os.Stat(filepath.Join(srvDir, e.Name())); err != nil {
			t.Errorf("the page server lacks %s: %v", e.Name(), err)
		}
	}
	var pages int64
	srvEnts, _ := os.ReadDir(srvDir)
	for _, e := range srvEnts {
		if fi, err := e.Info(); err == nil && strings.HasPrefix(e.Name(), "pages-") {
			pages += fi.Size()
		}
	}
	if pages == 0 {
		t.Fatalf("the page server received no pages")
	}
	if how.lazy {
		// As TestLazyPages does it: slowly, so that the program wakes
		// with pages missing, and restored by a ckpt that waits for it.
		_, lazyDone := startLazyServer(t, srvDir, "CKPT_FAULT=lazy-slow")
		pidfile := filepath.Join(t.TempDir(), "pid")
		rc := exec.Command(ckptBin, "restore", "-D", srvDir, "--lazy-pages", "--pidfile", pidfile)
		var out strings.Builder
		rc.Stdout, rc.Stderr = &out, &out
		got, done := restoreInBackground(t, rc, pidfile)
		if got != pid {
			t.Fatalf("restored pid %d, want %d", got, pid)
		}
		alive = false
		if err := unix.Kill(pid, unix.SIGTERM); err != nil {
			t.Fatal(err)
		}
		var rerr error
		select {
		case rerr = <-done:
		case <-time.After(finishTimeout):
			_ = unix.Kill(pid, unix.SIGKILL)
			t.Fatalf("restored task did not end within %v", finishTimeout)
		}
		if err := verdict(logPath, testsupport.ExitCode(rerr), out.String()); err != nil {
			t.Errorf("%s after a lazy restore: %v", prog, err)
		}
		waitServer(t, srvDir, lazyDone, false)
		reapAdopted()
		return
	}
	if out, err := exec.Command(ckptBin, "restore", "-D", srvDir, "-d").CombinedOutput(); err != nil {
		t.Fatalf("restore from the page server's directory: %v: %s", err, out)
	}
	r := &Run{}
	if err := r.finish(pid, logPath, &alive); err != nil {
		t.Errorf("restored task: %v", err)
	}
}

var pageServerProgs = []string{"mem_anon", "mem_anon.32"}

// TestPageServer dumps a program whose pages go to a page server over
// loopback, restores it from the server's directory, and the program
// checks its memory. Besides mem_anon (-m64, -m32): a tree of four
// processes sharing pages (cow_shared), shared anonymous memory (whose
// pages image is written with the other images and sent at the end:
// shmem_offset), a dump with -R (pages read from a snapshot after the
// tree is let go), and lazy_mem restored lazily from the server's
// directory.
func TestPageServer(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	for _, prog := range append(pageServerProgs, "cow_shared", "shmem_offset", "shmem_offset.32") {
		t.Run(prog, func(t *testing.T) { dumpToPageServer(t, prog, "127.0.0.1", pageServerRun{}) })
	}
	for _, prog := range pageServerProgs {
		t.Run(prog+"/leave-running", func(t *testing.T) { dumpToPageServer(t, prog, "127.0.0.1", pageServerRun{leaveRunning: true}) })
	}
	// The server's directory restored lazily (ckpt lazy-pages there).
	for _, prog := range []string{"lazy_mem", "lazy_mem.32"} {
		t.Run(prog+"/lazy", func(t *testing.T) { dumpToPageServer(t, prog, "127.0.0.1", pageServerRun{lazy: true}) })
	}
}

// TestPageServerNetns runs the page server in another network namespace,
// reached through a veth pair, as another machine would be.
func TestPageServerNetns(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	// A run killed before its cleanup (a test timeout) left its
	// namespace, and with it a route to the same subnet: gone first.
	if out, err := exec.Command("ip", "netns", "list").Output(); err == nil {
		for _, l := range strings.Split(string(out), "\n") {
			if f := strings.Fields(l); len(f) > 0 && strings.HasPrefix(f[0], "ckpt-ps-") {
				_ = exec.Command("ip", "netns", "del", f[0]).Run()
			}
		}
	}
	id := os.Getpid() % 100000
	ns := fmt.Sprintf("ckpt-ps-%d", id)
	host, peer := fmt.Sprintf("ckps%d", id), fmt.Sprintf("ckpp%d", id)
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	// Deleting the namespace deletes the peer in it, and with it the
	// pair; the host end is deleted too, should the namespace be gone.
	t.Cleanup(func() {
		_ = exec.Command("ip", "netns", "del", ns).Run()
		_ = exec.Command("ip", "link", "del", host).Run()
	})
	run("netns", "add", ns)
	run("link", "add", host, "type", "veth", "peer", "name", peer)
	run("link", "set", peer, "netns", ns)
	run("addr", "add", "10.251.77.1/30", "dev", host)
	run("link", "set", host, "up")
	run("-n", ns, "addr", "add", "10.251.77.2/30", "dev", peer)
	run("-n", ns, "link", "set", peer, "up")
	run("-n", ns, "link", "set", "lo", "up")
	for _, prog := range pageServerProgs {
		t.Run(prog, func(t *testing.T) { dumpToPageServer(t, prog, "10.251.77.2", pageServerRun{netns: ns}) })
	}
}

// pageServerDumpFails dumps prog to the page server at addr, which must
// fail naming want; the task must go on untouched and pass its checks,
// and the images directory must hold nothing.
func pageServerDumpFails(t *testing.T, prog, addr, want string) {
	t.Helper()
	work := t.TempDir()
	img := filepath.Join(work, "img")
	cmd, logPath := startProg(t, prog, work, false)
	pid := cmd.Process.Pid
	alive := true
	defer func() {
		if alive {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()
	before, err := stableSnapshot(pid)
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(addr)
	out, err := exec.Command(ckptBin, "dump", "-t", strconv.Itoa(pid), "-D", img,
		"--page-server", "--address", host, "--port", port).CombinedOutput()
	if err == nil || !strings.Contains(string(out), want) {
		t.Fatalf("dump: %v: %s; want an error naming %q", err, out, want)
	}
	if strings.Contains(string(out), "panic") {
		t.Errorf("dump panicked: %s", out)
	}
	t.Logf("dump: %s", bytes.TrimSpace(out))
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

// TestPageServerFailures: no page server (the dump fails before it
// touches the tree), and a server whose connection drops in the middle of
// the pages (the dump fails and lets the tree go as it was).
func TestPageServerFailures(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	t.Run("not running", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		pageServerDumpFails(t, "mem_anon", addr, "is `ckpt page-server` listening there?")
	})
	t.Run("server disk full", func(t *testing.T) {
		srvDir := filepath.Join(t.TempDir(), "srv")
		if err := os.Mkdir(srvDir, 0o700); err != nil {
			t.Fatal(err)
		}
		mountTmpfs(t, srvDir, 256)
		ps := startPageServer(t, srvDir, "127.0.0.1", "")
		pageServerDumpFails(t, "mem_anon", net.JoinHostPort("127.0.0.1", ps.port), "no space left")
		if err := ps.wait(); err == nil || !strings.Contains(err.Error(), "nothing of this dump was kept") {
			t.Errorf("page server: %v", err)
		}
		if left, _ := os.ReadDir(srvDir); len(left) != 0 {
			t.Errorf("the page server kept %d files of the failed dump", len(left))
		}
	})
	t.Run("connection dropped", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		// A server that answers the hello, takes 64 KiB of the pages
		// and hangs up.
		go func() {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			if _, err := pageserver.ReadHeader(c); err != nil {
				return
			}
			_, _ = c.Write(pageserver.AppendFrame(nil, pageserver.Header{Op: pageserver.OpHello, Offset: pageserver.Version}, nil))
			_, _ = io.CopyN(io.Discard, c, 64<<10)
			_ = c.(*net.TCPConn).SetLinger(0) // a reset, as a machine gone
		}()
		pageServerDumpFails(t, "mem_anon", l.Addr().String(), "page server")
	})
}
