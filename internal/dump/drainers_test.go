//go:build linux && amd64

package dump

import (
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// drainAll gives n requests of size bytes to d as splicer.copy does (an
// empty pipe each, of pipes) and waits for them all.
func drainAll(d *drainers, pipes, n, size int) {
	free := make([]int, 0, pipes)
	for k := range pipes {
		free = append(free, k)
	}
	for i := range n {
		for len(free) == 0 {
			free = append(free, d.wait())
		}
		k := free[len(free)-1]
		free = free[:len(free)-1]
		free = d.poll(free)
		d.send(drainReq{k: k, n: size, off: int64(i * size)})
	}
	for d.busy > 0 {
		d.wait()
	}
	d.stop()
}

// fakeWriter is a pipeWriter that takes delay per call (spinning: a
// sleep this short oversleeps) and notes the offsets it was given.
type fakeWriter struct {
	delay time.Duration
	err   error
	mu    sync.Mutex
	offs  []int64
}

func (f *fakeWriter) write(pipe, n int, off int64) error {
	for start := time.Now(); time.Since(start) < f.delay; {
	}
	f.mu.Lock()
	f.offs = append(f.offs, off)
	f.mu.Unlock()
	return f.err
}

// TestDrainersSpliceAlone: while splice keeps a fast pace the helper
// takes nothing, however busy splice is.
func TestDrainersSpliceAlone(t *testing.T) {
	splice, helper := &fakeWriter{delay: 50 * time.Microsecond}, &fakeWriter{}
	d := startDrainers([]pipeWriter{splice.write, helper.write}, []int{-1, -1, -1}, false, nil)
	drainAll(d, 3, 40, 1<<20)
	if len(helper.offs) != 0 || len(splice.offs) != 40 {
		t.Errorf("splice took %d requests, the helper %d; want 40 and 0", len(splice.offs), len(helper.offs))
	}
	if d.bytes[0] != 40<<20 || d.bytes[1] != 0 || d.err != nil {
		t.Errorf("bytes %v, err %v", d.bytes, d.err)
	}
}

// TestDrainersHelpSlowSplice: once splice is slower than slowSplice per
// MiB the helper takes the pipes that come while splice is busy, and
// every request is drained once.
func TestDrainersHelpSlowSplice(t *testing.T) {
	splice, helper := &fakeWriter{delay: 4 * slowSplice}, &fakeWriter{delay: 2 * slowSplice}
	d := startDrainers([]pipeWriter{splice.write, helper.write}, []int{-1, -1, -1}, false, nil)
	drainAll(d, 3, 40, 1<<20)
	if len(helper.offs) == 0 {
		t.Errorf("the helper took nothing from a splice of %v per MiB", 4*slowSplice)
	}
	seen := map[int64]bool{}
	for _, off := range append(splice.offs, helper.offs...) {
		if seen[off] {
			t.Errorf("offset %d drained twice", off)
		}
		seen[off] = true
	}
	if len(seen) != 40 || d.bytes[0]+d.bytes[1] != 40<<20 {
		t.Errorf("%d offsets drained, bytes %v; want 40 and 40 MiB", len(seen), d.bytes)
	}
}

// TestDrainersAlways: with always the helper takes the first pipe and
// a share of the rest.
func TestDrainersAlways(t *testing.T) {
	splice, helper := &fakeWriter{delay: 100 * time.Microsecond}, &fakeWriter{delay: 100 * time.Microsecond}
	d := startDrainers([]pipeWriter{splice.write, helper.write}, []int{-1, -1, -1}, true, nil)
	drainAll(d, 3, 20, 1<<20)
	if len(helper.offs) == 0 || helper.offs[0] != 0 {
		t.Errorf("the helper took %v; want the first request (offset 0) among them", helper.offs)
	}
	if len(splice.offs)+len(helper.offs) != 20 {
		t.Errorf("%d + %d requests drained, want 20", len(splice.offs), len(helper.offs))
	}
}

// TestDrainersError: a writer's error is kept, the first one, and its
// bytes are not counted as moved.
func TestDrainersError(t *testing.T) {
	boom := errors.New("boom")
	splice := &fakeWriter{err: boom}
	d := startDrainers([]pipeWriter{splice.write}, []int{-1, -1}, false, nil)
	drainAll(d, 2, 3, 4096)
	if !errors.Is(d.err, boom) || d.bytes[0] != 0 {
		t.Errorf("err %v, bytes %v; want boom and none", d.err, d.bytes)
	}
}

// TestKeepOff: a thread kept off its own CPU runs elsewhere where there
// is another CPU, and is left alone when every CPU it may use is busy.
func TestKeepOff(t *testing.T) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // the thread ends with the goroutine
		var before unix.CPUSet
		if err := unix.SchedGetaffinity(0, &before); err != nil {
			t.Error(err)
			return
		}
		keepOff(&before) // every CPU busy: nothing changes
		var same unix.CPUSet
		if err := unix.SchedGetaffinity(0, &same); err != nil || same != before {
			t.Errorf("all CPUs busy: mask %v -> %v (%v), want it unchanged", before, same, err)
		}
		if before.Count() < 2 {
			t.Log("one CPU: only the unchanged case is checked")
			return
		}
		var one unix.CPUSet
		for c := 0; c < len(before)*64; c++ {
			if before.IsSet(c) {
				one.Set(c)
				break
			}
		}
		keepOff(&one)
		var after unix.CPUSet
		if err := unix.SchedGetaffinity(0, &after); err != nil {
			t.Error(err)
			return
		}
		want := before
		for c := 0; c < len(before)*64; c++ {
			if one.IsSet(c) {
				want.Clear(c)
			}
		}
		if after != want {
			t.Errorf("kept off %v: mask %v, want %v", one, after, want)
		}
	}()
	<-done
}
