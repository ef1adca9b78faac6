package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/test/testsupport"
)

// TestGoHTTPServer checkpoints a Go net/http server (testdata/httpserver,
// built GOARCH=amd64 and GOARCH=386) while a keep-alive client in the test
// process, outside the dumped tree, holds a connection to it. The server
// is dumped with --tcp-established (and killed), restored, and then the
// same client connection carries a second request, answered with the
// counter the server kept in its heap; a new client connects too.
func TestGoHTTPServer(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	for _, arch := range []string{"amd64", "386"} {
		t.Run(arch, func(t *testing.T) {
			work := t.TempDir()
			bin := filepath.Join(work, "httpserver")
			src, _ := filepath.Abs("testdata/httpserver")
			cmd := exec.Command("go", "build", "-o", bin, ".")
			cmd.Dir = src
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOARCH="+arch)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("go build GOARCH=%s: %v\n%s", arch, err, out)
			}
			col := "native"
			if arch == "386" {
				col = "compat"
			}
			t.Run("tcp", func(t *testing.T) {
				realProgram(t, "Go net/http server (TCP listener)", col)
				testHTTPServer(t, t.TempDir(), bin, false)
			})
			t.Run("mptcp", func(t *testing.T) {
				realProgram(t, "Go net/http server (MPTCP listener, Go's default)", col)
				testHTTPServer(t, t.TempDir(), bin, true)
			})
		})
	}
}

// testHTTPServer runs the server of bin in work. With mptcp, its listener
// is Go's default, an MPTCP socket, and the connection it accepted from
// the (plain TCP) client is a TCP socket under the listener's name: it is
// kept across the dump as with a TCP listener, and the listener comes
// back as MPTCP.
func testHTTPServer(t *testing.T, work, bin string, mptcp bool) {
	logPath := filepath.Join(work, "server.log")
	logF, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logF.Close()
	cmd := exec.Command(bin)
	cmd.Dir = work
	// A TCP listener: since Go 1.24 net.Listen makes an MPTCP socket
	// where the kernel has MPTCP (the mptcp subtest keeps that default).
	if !mptcp {
		cmd.Env = append(os.Environ(), "GODEBUG=multipathtcp=0")
	}
	cmd.Stdout, cmd.Stderr = logF, logF
	ready, err := testsupport.StartReady(cmd, logPath, readyTimeout)
	if err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	defer func() { _ = unix.Kill(pid, unix.SIGKILL); _ = cmd.Wait() }()
	port, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(ready, "READY")))
	if err != nil {
		t.Fatalf("server's READY line %q: %v", ready, err)
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/count", port)

	// One keep-alive connection, never replaced: a second dial would mean
	// the first connection was lost.
	dials := 0
	tr := &http.Transport{
		MaxConnsPerHost: 1,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials++
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: readyTimeout}
	get := func(c *http.Client) (n int, local string, reused bool) {
		t.Helper()
		trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
			local, reused = i.Conn.LocalAddr().String(), i.Reused
		}}
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", url, nil)
		resp, err := c.Do(req)
		if err != nil {
			b, _ := os.ReadFile(logPath)
			t.Fatalf("GET %s: %v (server log %q)", url, err, b)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		f := strings.Fields(string(body))
		if len(f) != 2 {
			t.Fatalf("answer %q", body)
		}
		if n, err = strconv.Atoi(f[0]); err != nil {
			t.Fatalf("answer %q", body)
		}
		if f[1] != local {
			t.Fatalf("the server saw the request from %s, the client sent it from %s", f[1], local)
		}
		return n, local, reused
	}
	n, firstLocal, _ := get(client)
	if n != 1 {
		t.Fatalf("first answer %d, want 1", n)
	}
	if n, _, reused := get(client); n != 2 || !reused {
		t.Fatalf("second answer %d (connection reused %v), want 2 on the same connection", n, reused)
	}

	if n := mptcpSockets(pid); mptcp && n != 2 {
		t.Fatalf("the server holds %d sockets named MPTCP, want 2: its listener and the connection it accepted", n)
	}
	img := filepath.Join(work, "img")
	dump := func() ([]byte, error) {
		return exec.Command(ckptBin, "dump", "-t", strconv.Itoa(pid), "-D", img, "--tcp-established").CombinedOutput()
	}
	if out, err := dump(); err != nil {
		t.Fatalf("dump --tcp-established: %v: %s", err, out)
	}
	_ = cmd.Wait()
	if err := testsupport.WaitGone(pid, goneTimeout); err != nil {
		t.Fatal(err)
	}
	rc := exec.Command(ckptBin, "restore", "-D", img, "--tcp-established", "--pidfile", filepath.Join(work, "pid"))
	rc.Stdout, rc.Stderr = logF, logF
	rpid, done := restoreInBackground(t, rc, filepath.Join(work, "pid"))
	defer func() {
		_ = unix.Kill(rpid, unix.SIGKILL)
		select {
		case <-done:
		case <-time.After(finishTimeout):
		}
	}()

	if mptcp {
		// The listener is MPTCP again (and the kept connection is TCP,
		// as it was under the listener's name).
		if n := mptcpSockets(rpid); n != 1 {
			t.Errorf("the restored server holds %d sockets named MPTCP, want its listener", n)
		}
	}
	// The same connection goes on, and the counter with it.
	n, local, reused := get(client)
	if n != 3 || !reused || local != firstLocal || dials != 1 {
		t.Fatalf("after the restore: answer %d from %s (reused %v, %d dials), want 3 on the connection from %s", n, local, reused, dials, firstLocal)
	}
	// A new client connects to the restored listener.
	other := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: readyTimeout}
	if n, local, _ := get(other); n != 4 || local == firstLocal {
		t.Fatalf("a new client: answer %d from %s, want 4 on a new connection", n, local)
	}
	if n, _, _ := get(client); n != 5 {
		t.Fatalf("the kept connection, again: answer %d, want 5", n)
	}
}

// mptcpSockets counts the fds of pid that sockfs names MPTCP: MPTCP
// sockets, and the TCP sockets an MPTCP listener accepted, which accept
// names after their listener.
func mptcpSockets(pid int) int {
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	n := 0
	for _, e := range fds {
		buf := make([]byte, 32)
		if l, err := unix.Getxattr(fmt.Sprintf("/proc/%d/fd/%s", pid, e.Name()), "system.sockprotoname", buf); err == nil && strings.TrimRight(string(buf[:l]), "\x00") == "MPTCP" {
			n++
		}
	}
	return n
}
