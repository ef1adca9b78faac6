//go:build linux && amd64

package dump

import (
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// slowSplice is the time per MiB past which the splice writer is taken
// to be held up by the memory the page cache needs rather than by the
// copy, and a second writer (fileSink.second) takes full pipes while it
// is busy. On the 2-CPU VM measured (1 GiB dumps in 32 KiB splices),
// splice kept a pace of 0.44-0.58 ms per MiB on most dumps and 0.9-1.2
// ms on the others, where the host faulted memory in again; the mapping
// writer takes about 1.2 ms per MiB at best and slows splice down when
// both run, so with it always at work 1 GiB took 0.63-0.73 s, against
// 0.46-0.55 s for most dumps with it only helping a slow splice
// (test/bench DumpCompare1GiB).
const slowSplice = 800 * time.Microsecond

// drainReq asks for n bytes of pipe k to go to the image at off.
type drainReq struct {
	k   int
	n   int
	off int64
}

// drained is what a writer did with a drainReq.
type drained struct {
	k, w int // the pipe, and the writer that drained it
	n    int
	took time.Duration
	err  error
}

// drainers runs each writer on a goroutine of its own and gives it full
// pipes: writer 0 (splice) every one, but for those a helper (writer 1)
// takes while writer 0 is busy and slow. The helper costs more CPU per
// byte than splice and slows it down; it pays off only when the copy
// waits on memory, not on the CPU.
type drainers struct {
	reqs   []chan drainReq
	done   chan drained
	queued []int         // requests given to each writer, not yet done
	pace   time.Duration // writer 0's time per MiB, a moving average; 0: none yet
	busy   int           // requests given, not yet done
	err    error         // the first writer's error
	bytes  []int64       // moved by each writer
	// always: the helper takes a pipe whenever it has no more to do
	// than writer 0 (CKPT_PAGE_WRITERS=2, for tests and comparisons).
	always bool
}

// startDrainers starts the writers; rfd are the pipes' read ends. Each
// writer runs on a thread of its own kept off the CPUs in offCPUs where
// another is allowed (the tracer's: injected calls run there, see
// ptrace.Thread.ShareCPU); the thread ends with the writer.
func startDrainers(writers []pipeWriter, rfd []int, always bool, offCPUs *unix.CPUSet) *drainers {
	d := &drainers{
		reqs:   make([]chan drainReq, len(writers)),
		done:   make(chan drained, len(rfd)),
		queued: make([]int, len(writers)),
		bytes:  make([]int64, len(writers)),
		always: always,
	}
	for i, w := range writers {
		reqs := make(chan drainReq, len(rfd))
		d.reqs[i] = reqs
		go func() {
			if offCPUs != nil {
				// Never unlocked: the thread and its mask end with
				// the goroutine.
				runtime.LockOSThread()
				keepOff(offCPUs)
			}
			for r := range reqs {
				start := time.Now()
				err := w(rfd[r.k], r.n, r.off)
				d.done <- drained{k: r.k, w: i, n: r.n, took: time.Since(start), err: err}
			}
		}()
	}
	return d
}

// keepOff moves the calling thread off the CPUs in busy, where it may
// run elsewhere. Only a hint: an error leaves the thread where it was.
// With injection on one CPU and a writer on another, 1 GiB dumps took
// 0.43-0.51 s on most runs, against 0.50-0.60 s with the writers free to
// share the tracer's CPU (2-CPU VM, 10 rounds in random order).
func keepOff(busy *unix.CPUSet) {
	var mask unix.CPUSet
	if unix.SchedGetaffinity(0, &mask) != nil {
		return
	}
	for c := 0; c < len(mask)*64; c++ {
		if busy.IsSet(c) {
			mask.Clear(c)
		}
	}
	if mask.Count() > 0 {
		_ = unix.SchedSetaffinity(0, &mask)
	}
}

// route picks the writer for the next full pipe.
func (d *drainers) route() int {
	switch {
	case len(d.reqs) < 2:
		return 0
	case d.always:
		if d.queued[1] <= d.queued[0] {
			return 1
		}
		return 0
	case d.queued[0] > 0 && d.queued[1] == 0 && d.pace > slowSplice:
		return 1
	}
	return 0
}

// send gives r to the writer route picks.
func (d *drainers) send(r drainReq) {
	w := d.route()
	d.queued[w]++
	d.busy++
	d.reqs[w] <- r
}

// note takes in what a writer did and returns the pipe, empty again.
func (d *drainers) note(x drained) int {
	d.busy--
	d.queued[x.w]--
	if x.w == 0 && x.n > 0 && x.err == nil {
		sample := x.took * (1 << 20) / time.Duration(x.n)
		if d.pace == 0 {
			d.pace = sample
		} else {
			d.pace = (3*d.pace + sample) / 4
		}
	}
	if x.err != nil && d.err == nil {
		d.err = x.err
	}
	if x.err == nil {
		d.bytes[x.w] += int64(x.n)
	}
	return x.k
}

// wait waits for one writer to finish a request and returns its pipe.
func (d *drainers) wait() int { return d.note(<-d.done) }

// poll takes in every request already finished, without waiting, and
// returns their pipes: route then sees which writers are idle.
func (d *drainers) poll(free []int) []int {
	for {
		select {
		case x := <-d.done:
			free = append(free, d.note(x))
		default:
			return free
		}
	}
}

// stop ends the writers' goroutines once their requests are done.
func (d *drainers) stop() {
	for _, c := range d.reqs {
		close(c)
	}
}
