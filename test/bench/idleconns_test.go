//go:build linux

package bench

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ckpt/ckpt"
	"github.com/ckpt/ckpt/test/testsupport"
)

// idleConns is the number of client connections the server holds.
const idleConns = 1000

// BenchmarkIdleConnections dumps (TcpEstablished, with the network lock)
// and restores a TCP server holding 1,000 idle connections from clients
// in this process, outside the dumped tree, and reports the wall time of
// each. After the restore a few connections must still echo.
//
//	go test ./test/bench -run '^$' -bench IdleConnections -benchtime=3x -v
func BenchmarkIdleConnections(b *testing.B) {
	tmp := benchSetup(b)
	exe := filepath.Join(tmp, "idleconns")
	if err := testsupport.BuildC(exe, filepath.Join("testdata", "idleconns.c"), "-O2", "-Wall"); err != nil {
		b.Fatal(err)
	}
	var dumpSum, restoreSum, frozenSum time.Duration
	for i := 0; i < b.N; i++ {
		d, r, f, err := idleRun(b, exe, filepath.Join(tmp, fmt.Sprintf("run%d", i)))
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("run %d: %d connections: dump %v (frozen %v), restore %v", i+1, idleConns, d, f, r)
		dumpSum, restoreSum, frozenSum = dumpSum+d, restoreSum+r, frozenSum+f
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) / float64(b.N) }
	b.ReportMetric(ms(dumpSum), "dump-ms")
	b.ReportMetric(ms(frozenSum), "freeze-ms")
	b.ReportMetric(ms(restoreSum), "restore-ms")
}

// idleRun starts the server, connects idleConns clients, dumps and
// restores it, and checks that connections echo.
func idleRun(b *testing.B, exe, dir string) (dump, restore, frozen time.Duration, err error) {
	images := filepath.Join(dir, "images")
	if err := os.MkdirAll(images, 0o700); err != nil {
		return 0, 0, 0, err
	}
	outPath := filepath.Join(dir, "server.out")
	out, err := os.Create(outPath)
	if err != nil {
		return 0, 0, 0, err
	}
	defer out.Close()
	cmd := exec.Command(exe, strconv.Itoa(idleConns))
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, out, out
	if err := cmd.Start(); err != nil {
		return 0, 0, 0, err
	}
	reaped := false
	defer func() {
		if !reaped {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()
	line, err := waitLine(outPath, "LISTEN port=")
	if err != nil {
		return 0, 0, 0, err
	}
	port := strings.TrimPrefix(line, "LISTEN port=")
	conns := make([]net.Conn, 0, idleConns)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < idleConns; i++ {
		c, err := net.Dial("tcp4", "127.0.0.1:"+port)
		if err != nil {
			return 0, 0, 0, fmt.Errorf("connection %d: %w", i, err)
		}
		conns = append(conns, c)
	}
	if _, err := waitLine(outPath, "READY"); err != nil {
		return 0, 0, 0, err
	}
	pid := cmd.Process.Pid
	runtime.GC()
	b.StartTimer()
	start := time.Now()
	st, err := ckpt.Dump(ckpt.DumpOptions{Pid: pid, ImagesDir: images, TcpEstablished: true})
	dump = time.Since(start)
	b.StopTimer()
	if err != nil {
		return 0, 0, 0, fmt.Errorf("ckpt.Dump: %w", err)
	}
	frozen = st.FrozenFor
	reaped = true
	_ = cmd.Wait()
	if err := testsupport.WaitGone(pid, 5*time.Second); err != nil {
		return 0, 0, 0, err
	}
	runtime.GC()
	b.StartTimer()
	start = time.Now()
	p, err := ckpt.Restore(ckpt.RestoreOptions{ImagesDir: images})
	restore = time.Since(start)
	b.StopTimer()
	if err != nil {
		return 0, 0, 0, fmt.Errorf("ckpt.Restore: %w", err)
	}
	defer func() {
		if kerr := killRestored(p); kerr != nil && err == nil {
			err = kerr
		}
	}()
	for i := 0; i < idleConns; i += idleConns / 10 {
		c := conns[i]
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 4)
		if _, err := c.Write([]byte("ping")); err != nil {
			return 0, 0, 0, fmt.Errorf("connection %d after the restore: %w", i, err)
		}
		if _, err := c.Read(buf); err != nil || string(buf) != "ping" {
			return 0, 0, 0, fmt.Errorf("connection %d after the restore: echo %q, %v", i, buf, err)
		}
	}
	return dump, restore, frozen, nil
}

// waitLine waits for a line of the file at path that starts with prefix.
func waitLine(path, prefix string) (string, error) {
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, prefix) {
				return l, nil
			}
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("%s: no line %q: %q", path, prefix, b)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
