/* ckpt-test: lang=go vdso=yes */

// A Go program as a test program: the Go runtime runs many threads,
// blocks in futex and epoll_pwait, preempts with SIGURG, keeps an epoll
// and an eventfd for its netpoller and calls the vDSO for time. After the
// restore its goroutines, timers, channels, heap and files must go on.
package main

import (
	"fmt"
	"hash/crc32"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"
)

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stdout, "FAIL: "+format+"\n", args...)
	os.Exit(1)
}

func main() {
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	pid := os.Getpid()
	start := time.Now()

	// Heap state: a map and a slice with a checksum.
	m := map[int]string{}
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	for i := 0; i < 10000; i++ {
		m[i] = fmt.Sprint("v", i*i)
	}
	sum := crc32.ChecksumIEEE(buf)

	// A busy goroutine, a ticking one, one blocked on a channel send and
	// one in a long sleep.
	var spins, ticks uint64
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
				spins++
			}
		}
	}()
	go func() {
		t := time.NewTicker(20 * time.Millisecond)
		for range t.C {
			ticks++
		}
	}()
	ch := make(chan int)
	go func() { ch <- 42 }()
	woke := make(chan time.Time, 1)
	go func() {
		time.Sleep(1500 * time.Millisecond)
		woke <- time.Now()
	}()

	f, err := os.Create("go-file.txt")
	if err != nil {
		fail("create: %v", err)
	}
	if _, err := f.WriteString("before\n"); err != nil {
		fail("write: %v", err)
	}

	time.Sleep(100 * time.Millisecond)
	os.Stdout.WriteString("READY\n")
	<-term

	if os.Getpid() != pid {
		fail("pid %d -> %d", pid, os.Getpid())
	}
	if crc32.ChecksumIEEE(buf) != sum {
		fail("heap slice changed")
	}
	for i := 0; i < 10000; i++ {
		if m[i] != fmt.Sprint("v", i*i) {
			fail("map entry %d is %q", i, m[i])
		}
	}
	if v := <-ch; v != 42 {
		fail("channel gave %d", v)
	}
	t0, s0 := ticks, spins
	time.Sleep(300 * time.Millisecond)
	if ticks <= t0 {
		fail("ticker stopped: %d ticks before, %d after 300 ms", t0, ticks)
	}
	if spins <= s0 {
		fail("busy goroutine stopped")
	}
	select {
	case w := <-woke:
		if w.Sub(start) < 1500*time.Millisecond {
			fail("sleep woke after %v", w.Sub(start))
		}
	case <-time.After(5 * time.Second):
		fail("a goroutine in time.Sleep never woke")
	}
	runtime.GC()
	if _, err := f.WriteString("after\n"); err != nil {
		fail("write after restore: %v", err)
	}
	f.Close()
	b, err := os.ReadFile("go-file.txt")
	if err != nil || string(b) != "before\nafter\n" {
		fail("file holds %q (%v)", b, err)
	}
	if d := time.Since(start); d < 400*time.Millisecond || d > 10*time.Minute {
		fail("monotonic time since start: %v", d)
	}
	close(stop)
	os.Stdout.WriteString("PASS\n")
}
