//go:build linux && amd64

package dump

import (
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/fault"
	"github.com/ckpt/ckpt/internal/image"
	"github.com/ckpt/ckpt/internal/inject"
	"github.com/ckpt/ckpt/internal/ptrace"
)

// This file copies the pages a dump saves from the frozen task into its
// pages image. The fast path makes one copy: the task itself, by injected
// vmsplice calls, hands references to its pages to a pipe whose read end
// ckpt took with pidfd_getfd, and ckpt splices the pipe into the image
// (the only copy, into the page cache). Pipes take turns: the task
// fills one while ckpt drains the others, with splice and, on a machine
// with a second CPU, also by reading a pipe into a shared mapping of the
// image (fileSink.second): the two copy at once. Where that path is not there
// (no pidfd_getfd before Linux 5.6, a pipe that cannot be made, a task
// without room for one more fd), the pages are read through the task's
// memory (process_vm_readv, /proc/PID/mem) and written, two copies.

// pageRun is a run of pages the dump saves, in pagemap order.
type pageRun struct {
	addr, size uint64
	// viaMem: read through the memory file, not vmsplice: the vDSO (a
	// special mapping) and mappings the task itself cannot read.
	viaMem bool
	// data, when set, is the run's content read before syscalls were
	// injected (the page the injected code is written over), or while
	// the tree was frozen (a run marked frozen, when the other pages are
	// read from a snapshot).
	data []byte
	// frozen: a run a copy-on-write snapshot of the task does not hold
	// as the task has it (snapshot.go).
	frozen bool
}

const (
	// splicePipes is the number of pipes that take turns with one
	// writer; each further writer (pageSink.second) has one more, so
	// that the task fills one while every writer drains another.
	splicePipes = 2
	// spliceIovMax is UIO_MAXIOV (include/uapi/linux/uio.h): the most
	// iovecs one vmsplice takes.
	spliceIovMax = 1024
	// spliceScratch is the size of the task's scratch mapping: the fds
	// pipe2 returns, then the iovecs of one vmsplice (16 bytes each, 8
	// for an ia32 task).
	spliceScratch = x86.PageSize + spliceIovMax*16
	// spliceMin is the least a process must have to save for the fast
	// path: setting it up and taking it down costs about a dozen
	// injected calls, as much as copying a megabyte the other way (a
	// tree of many small processes would pay it in each).
	spliceMin = 1 << 20
)

// splicePipeSizes are the pipe sizes tried with F_SETPIPE_SZ, largest
// first: a larger pipe takes more pages per injected call. Above
// /proc/sys/fs/pipe-max-size (1 MiB by default) they need
// CAP_SYS_RESOURCE, which a dump run as root has.
var splicePipeSizes = []int{8 << 20, 4 << 20, 1 << 20}

// copyRuns writes the content of runs to the pages image, in order.
// code is where injected syscalls run from (0: nowhere, no fast path).
func (t *task) copyRuns(runs []pageRun, code uint64, mem *ptrace.Mem, f pageSink, stats *Stats) error {
	if len(t.threads) == 0 || t.threads[0].Tid != t.pid {
		code = 0 // no leader thread to inject into
	}
	var th ptrace.Thread
	if code != 0 {
		th = t.threads[0]
	}
	return t.copyRunsFrom(th, t.pid, runs, code, mem, f, stats)
}

// copyRunsFrom is copyRuns from process pid, the task or its snapshot
// (snapshot.go), whose thread th runs the injected calls; mem is pid's.
func (t *task) copyRunsFrom(th ptrace.Thread, pid int, runs []pageRun, code uint64, mem *ptrace.Mem, f pageSink, stats *Stats) error {
	off, err := f.offset()
	if err != nil {
		return err
	}
	total := runsBytes(runs)
	if total == 0 {
		return nil
	}
	// A buffer no larger than the pages: a tree of a thousand small
	// processes would otherwise allocate and clear 4 MiB for each.
	c := &pageCopier{t: t, mem: mem, f: f, off: off, buf: make([]byte, min(total, 4<<20))}
	var sp *splicer
	if code != 0 && total >= spliceMin {
		writers := []pipeWriter{f.spliceAt}
		if t.opts.pageWriters.n > 1 {
			w, err := f.second(off + int64(total))
			if err != nil {
				return err
			}
			if w != nil {
				writers = append(writers, w)
			}
		}
		if sp, err = t.startSplice(th, pid, code, mem, writers); err != nil {
			t.opts.logf("dump %d: pages copied through the memory file of %d, not vmsplice: %v", t.pid, pid, err)
			sp = nil
		}
	}
	if sp == nil {
		err = c.runsViaMem(runs)
	} else {
		// On a panic the run's undo stack takes back what the task
		// holds; ckpt's own ends are closed here.
		defer sp.closeLocal()
		err = sp.copy(c, runs)
		if ferr := sp.finish(); ferr != nil && err == nil {
			err = ferr
		}
		if err == nil {
			stats.PagesSpliced += sp.spliced / x86.PageSize
			if by := sp.byWriter; len(by) > 1 && by[1] > 0 {
				t.opts.logf("dump %d: pages of %d copied by 2 writers: %d KiB by splice, %d KiB read into a mapping of the image", t.pid, pid, by[0]>>10, by[1]>>10)
			} else if len(by) > 1 {
				t.opts.logf("dump %d: pages of %d copied by splice alone; the second writer was not needed", t.pid, pid)
			}
		}
	}
	if err != nil {
		return err
	}
	// Later writers of the image go on from its end.
	return f.end(c.off)
}

// pageCopier writes to the pages image at off, which grows with each run.
type pageCopier struct {
	t       *task
	mem     *ptrace.Mem
	f       pageSink
	off     int64
	buf     []byte
	written bool // the fault point after the first pages was passed
}

// wrote notes n more bytes in the image and passes the fault point that
// stands for a dump stopped with part of the pages written.
func (c *pageCopier) wrote(n uint64) {
	c.off += int64(n)
	if !c.written && n > 0 {
		c.written = true
		fault.Panic(fault.DumpMemory)
	}
}

// runsViaMem copies runs through the task's memory file.
func (c *pageCopier) runsViaMem(runs []pageRun) error {
	for _, r := range runs {
		if err := c.viaMem(r); err != nil {
			return err
		}
	}
	return nil
}

// viaMem copies one run, read through the memory file (or from r.data),
// in chunks of len(buf); between chunks the dump may be interrupted.
func (c *pageCopier) viaMem(r pageRun) error {
	addr, size := r.addr, r.size
	for size > 0 {
		if err := c.t.opts.interrupted(); err != nil {
			return err
		}
		n := min(size, uint64(len(c.buf)))
		b := c.buf[:n]
		if r.data != nil {
			b = r.data[addr-r.addr:][:n]
		} else if err := c.mem.ReadAt(b, addr); err != nil {
			return fmt.Errorf("pages at %#x: %w", addr, err)
		}
		if err := c.f.writeAt(b, c.off); err != nil {
			return err
		}
		c.wrote(n)
		addr += n
		size -= n
	}
	return nil
}

// splicer is the fast path's state: syscalls injected into the task's
// leader (or its snapshot), a scratch mapping there, and pipes whose
// write ends the task holds and whose read ends ckpt holds.
type splicer struct {
	t       *task
	pid     int // the process injected into: the task or its snapshot
	inj     *inject.Task
	compat  bool
	scratch uint64
	wfd     []int // in the task
	rfd     []int // in ckpt
	size    int   // bytes each pipe holds
	// writers move the pages from the pipes to the image, each on a
	// goroutine of its own.
	writers []pipeWriter
	undo    []*ptrace.Step // newest last
	spliced uint64
	// byWriter is how many bytes each writer moved.
	byWriter []int64
	off      bool // vmsplice failed other than for bad pages: not used again
}

// direct says whether run r can go through the pipes: not a run read
// through the memory file, and for an ia32 task below 4 GiB where its
// 32-bit iovecs reach.
func (s *splicer) direct(r pageRun) bool {
	return !r.viaMem && r.data == nil && (!s.compat || r.addr+r.size <= 1<<32)
}

// closeLocal closes ckpt's ends of the pipes.
func (s *splicer) closeLocal() {
	for i := range s.rfd {
		if s.rfd[i] >= 0 {
			unix.Close(s.rfd[i])
			s.rfd[i] = -1
		}
	}
}

func (s *splicer) syscall(nr x86.Syscall, args ...uint64) (uint64, error) {
	if s.compat {
		return s.inj.Syscall32(nr, args...)
	}
	return s.inj.Syscall(nr, args...)
}

// startSplice sets up the fast path in the frozen task, or says why it
// cannot; then nothing of it is left in the task.
func (t *task) startSplice(th ptrace.Thread, pid int, code uint64, mem *ptrace.Mem, writers []pipeWriter) (sp *splicer, err error) {
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil, fmt.Errorf("pidfd_open: %w", err)
	}
	defer unix.Close(pidfd)
	inj, err := inject.BeginUndo(t.s.Undo, th, code)
	if err != nil {
		return nil, fmt.Errorf("prepare injection: %w", err)
	}
	s := &splicer{t: t, pid: pid, inj: inj, compat: t.abi == x86.ABI32, writers: writers}
	pipes := splicePipes + len(writers) - 1
	s.wfd, s.rfd = make([]int, pipes), make([]int, pipes)
	for i := range s.rfd {
		s.wfd[i], s.rfd[i] = -1, -1
	}
	defer func() {
		if err != nil {
			if ferr := s.finish(); ferr != nil {
				err = fmt.Errorf("%w; then: %v", err, ferr)
			}
			sp = nil
		}
	}()
	// An ia32 task's scratch comes from the ia32 mmap2, below 4 GiB
	// where its syscalls can point.
	s.scratch, err = s.syscall(x86.SysMmap, 0, spliceScratch, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS, ^uint64(0), 0)
	if err != nil {
		return nil, fmt.Errorf("map scratch: %w", err)
	}
	scratch := s.scratch
	s.push(fmt.Sprintf("unmap splice scratch %#x in %d", scratch, pid), func() error {
		_, err := s.syscall(x86.SysMunmap, scratch, spliceScratch)
		return err
	})
	for i := range s.wfd {
		if _, err := s.syscall(x86.SysPipe2, scratch, unix.O_CLOEXEC); err != nil {
			return nil, fmt.Errorf("pipe2: %w", err)
		}
		var fds [8]byte
		if err := mem.ReadAt(fds[:], scratch); err != nil {
			return nil, fmt.Errorf("pipe2: read fds: %w", err)
		}
		r, w := uint64(binary.LittleEndian.Uint32(fds[:4])), uint64(binary.LittleEndian.Uint32(fds[4:]))
		s.wfd[i] = int(w)
		s.push(fmt.Sprintf("close pipe fd %d in %d", w, pid), func() error {
			_, err := s.syscall(x86.SysClose, w)
			return err
		})
		closeR := s.push(fmt.Sprintf("close pipe fd %d in %d", r, pid), func() error {
			_, err := s.syscall(x86.SysClose, r)
			return err
		})
		local, err := unix.PidfdGetfd(pidfd, int(r), 0)
		if err != nil {
			return nil, fmt.Errorf("pidfd_getfd: %w", err)
		}
		s.rfd[i] = local
		// The task needs only the write end.
		if err := closeR.Run(); err != nil {
			return nil, err
		}
		for _, size := range splicePipeSizes {
			if _, err = unix.FcntlInt(uintptr(local), unix.F_SETPIPE_SZ, size); err == nil {
				break
			}
		}
		if err != nil {
			return nil, fmt.Errorf("F_SETPIPE_SZ: %w", err)
		}
		size, err := unix.FcntlInt(uintptr(local), unix.F_GETPIPE_SZ, 0)
		if err != nil {
			return nil, fmt.Errorf("F_GETPIPE_SZ: %w", err)
		}
		if s.size == 0 || size < s.size {
			s.size = size
		}
	}
	return s, nil
}

func (s *splicer) push(what string, fn func() error) *ptrace.Step {
	st := s.t.s.Push(what, fn)
	s.undo = append(s.undo, st)
	return st
}

// finish closes the pipes on both sides, unmaps the scratch and puts the
// task's registers back.
func (s *splicer) finish() error {
	var errs []error
	s.closeLocal()
	for i := len(s.undo) - 1; i >= 0; i-- {
		if err := s.undo[i].Run(); err != nil {
			errs = append(errs, err)
		}
	}
	s.undo = nil
	if err := s.inj.End(); err != nil {
		errs = append(errs, fmt.Errorf("finish injection: %w", err))
	}
	return errors.Join(errs...)
}

// copy writes runs to the image: runs that must be read through the
// memory file are, the others are vmspliced by the task into the pipes
// and drained from them by the writers, while the task fills the next.
func (s *splicer) copy(c *pageCopier, runs []pageRun) (err error) {
	pipes := len(s.rfd)
	// The writers keep off the CPU of this thread, the tracer's, where
	// the task runs its injected vmsplice calls (ptrace.Thread.ShareCPU).
	var tracer unix.CPUSet
	busyCPUs := &tracer
	if unix.SchedGetaffinity(0, &tracer) != nil {
		busyCPUs = nil
	}
	d := startDrainers(s.writers, s.rfd, s.t.opts.pageWriters.always, busyCPUs)
	// The task fills whichever pipe is empty first: a writer slower
	// than another (fileSink.second) holds up only the pipe it drains.
	free := make([]int, 0, pipes) // empty pipes
	for k := range pipes {
		free = append(free, k)
	}
	// next takes an empty pipe, waiting for a drain if none is.
	next := func() (int, error) {
		for len(free) == 0 {
			free = append(free, d.wait())
		}
		if d.err != nil {
			return 0, d.err
		}
		k := free[len(free)-1]
		free = free[:len(free)-1]
		return k, nil
	}
	// waitAll waits for every drain; the pipes are always waited for
	// before returning, also when panicking, so that no splice goes on
	// into a file or pipe being closed.
	waitAll := func() error {
		for d.busy > 0 {
			free = append(free, d.wait())
		}
		return d.err
	}
	defer func() {
		d.stop()
		if werr := waitAll(); werr != nil && err == nil {
			err = werr
		}
		s.byWriter = d.bytes
	}()

	iovAddr := s.scratch + x86.PageSize
	enc := make([]byte, 0, spliceIovMax*16)
	type span struct{ addr, size uint64 }
	var batch []span
	ri, roff := 0, uint64(0) // next byte to copy: runs[ri] at roff
	advance := func(n uint64) {
		for n > 0 {
			m := min(n, runs[ri].size-roff)
			roff += m
			n -= m
			if roff == runs[ri].size {
				ri, roff = ri+1, 0
			}
		}
	}
	for ri < len(runs) {
		if err := s.t.opts.interrupted(); err != nil {
			return err
		}
		if r := runs[ri]; s.off || !s.direct(r) {
			// In order in the image: what the pipes hold goes first.
			if err := waitAll(); err != nil {
				return err
			}
			if err := c.viaMem(r); err != nil {
				return err
			}
			ri, roff = ri+1, 0
			continue
		}
		k, err := next()
		if err != nil {
			return err
		}
		batch, enc = batch[:0], enc[:0]
		var total uint64
		for j, o := ri, roff; j < len(runs) && len(batch) < spliceIovMax && total < uint64(s.size); {
			r := runs[j]
			if !s.direct(r) {
				break
			}
			n := min(r.size-o, uint64(s.size)-total)
			batch = append(batch, span{r.addr + o, n})
			if s.compat {
				enc = binary.LittleEndian.AppendUint32(enc, uint32(r.addr+o))
				enc = binary.LittleEndian.AppendUint32(enc, uint32(n))
			} else {
				enc = binary.LittleEndian.AppendUint64(enc, r.addr+o)
				enc = binary.LittleEndian.AppendUint64(enc, n)
			}
			total += n
			if o += n; o == r.size {
				j, o = j+1, 0
			}
		}
		if err := c.mem.WriteAt(enc, iovAddr); err != nil {
			return fmt.Errorf("write iovecs: %w", err)
		}
		n, err := s.syscall(x86.SysVmsplice, uint64(s.wfd[k]), iovAddr, uint64(len(batch)), unix.SPLICE_F_NONBLOCK)
		if err != nil {
			free = append(free, k) // still empty
			var se *inject.SyscallError
			if !errors.As(err, &se) {
				return err
			}
			// Pages the task cannot hand over (EFAULT: PROT_NONE,
			// a mapping gup refuses): this batch goes through the
			// memory file instead; any other error turns the fast
			// path off for the rest.
			if se.Errno != unix.EFAULT {
				s.t.opts.logf("dump %d: vmsplice: %v; the rest of the pages through the memory file", s.t.pid, err)
				s.off = true
			}
			if err := waitAll(); err != nil {
				return err
			}
			for _, b := range batch {
				if err := c.viaMem(pageRun{addr: b.addr, size: b.size}); err != nil {
					return err
				}
			}
			advance(total)
			continue
		}
		if n == 0 || n > total {
			return fmt.Errorf("vmsplice of %d bytes returned %d", total, n)
		}
		free = d.poll(free)
		d.send(drainReq{k: k, n: int(n), off: c.off})
		s.spliced += n
		c.wrote(n)
		advance(n)
	}
	return nil
}

// startWriteback starts writing n bytes of the image at off to disk
// (sync_file_range SYNC_FILE_RANGE_WRITE, which does not wait for it), so
// that the fsync that ends the image finds little left and the page cache
// does not fill with dirty pages that throttle the copy. It is only a
// hint: an error shows again at the fsync.
func startWriteback(fd int, off, n int64) {
	_ = unix.SyncFileRange(fd, off, n, unix.SYNC_FILE_RANGE_WRITE)
}

// spliceOut moves n bytes from pipe rfd to file dst at off, through the
// page cache: at most image.CacheWriteMax bytes a call (one writer: 1
// GiB in 0.50-0.57 s on 10 of 15 dumps, 1.2-2.9 s on nearly all in 1 MiB
// splices, on the VM image.CacheWriteMax was measured on).
func spliceOut(rfd, dst, n int, off int64) error {
	_, err := spliceSome(rfd, dst, n, off, image.CacheWriteMax)
	return err
}

// spliceSome moves n bytes from pipe rfd to file dst at off, at most max
// a call, and says how many it moved before an error.
func spliceSome(rfd, dst, n int, off int64, max int) (int, error) {
	moved := 0
	for moved < n {
		m, err := unix.Splice(rfd, nil, dst, &off, min(n-moved, max), unix.SPLICE_F_MOVE)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return moved, fmt.Errorf("splice to pages image: %w", err)
		}
		if m == 0 {
			return moved, fmt.Errorf("splice to pages image: pipe empty with %d bytes to go", n-moved)
		}
		moved += int(m)
	}
	return moved, nil
}
