//go:build linux && amd64

package lazypages

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/internal/fault"
	"github.com/ckpt/ckpt/internal/model"
	"github.com/ckpt/ckpt/internal/uapi"
)

// Options control a lazy-pages server.
type Options struct {
	// ImagesDir holds the dump; the socket is made there.
	ImagesDir string
	// Context, if set, stops the server when cancelled: the tasks whose
	// pages are not all in are killed (their memory would read zeros
	// where the images have pages).
	Context context.Context
	// Ready, if set, is called once the socket listens.
	Ready func()
	// Logf, if set, receives progress messages.
	Logf func(format string, args ...any)
}

func (o *Options) logf(format string, args ...any) {
	if o.Logf != nil {
		o.Logf(format, args...)
	}
}

// Stats say what a server did.
type Stats struct {
	// Tasks is how many tasks the restore handed over; Forks how many
	// processes they forked while pages were still missing.
	Tasks, Forks int
	// Faults is how many page faults were served; FaultPages the pages
	// copied for them, PushedPages those copied in the background,
	// ZeroPages the zero pages given where the images have none.
	Faults, FaultPages, PushedPages, ZeroPages uint64
	// Gone is how many tasks went away (exited, killed) before all
	// their pages were in.
	Gone int
	// AllIn is the time from the first task handed over to the last
	// page in (or the last task gone).
	AllIn time.Duration
}

// How many pages one copy puts in: a few around a fault, more in the
// background (bounded so that a fault waits at most one such copy).
const (
	// low4G bounds a source address every mm's TASK_SIZE admits (an
	// ia32 mm's is IA32_PAGE_OFFSET, 0xFFFFE000).
	low4G      = 0xFFFFE000
	faultPages = 16
	pushPages  = 256
)

type server struct {
	opts  Options
	ctx   context.Context
	dump  *model.Dump
	procs map[int]*model.Process
	wg    sync.WaitGroup
	mu    sync.Mutex
	srcs  [][]byte // mapped pages images, unmapped at the end
	slow  bool     // CKPT_FAULT=lazy-slow: push at a crawl
	// over is done once the restore is over (done or gone): the
	// background push waits for it, so as not to slow the restore down;
	// faults are served from the start.
	over     context.Context
	overDone context.CancelFunc
	first    time.Time
	last     atomic.Int64 // UnixNano of the last mm done

	faults, faultPages, pushed, zero atomic.Uint64
	forks, gone, tasks               atomic.Int64
}

// Serve runs a lazy-pages server for the dump in opts.ImagesDir: it
// listens on SocketPath, takes the userfaultfds of one restore, puts
// every page in, and returns once all pages of all tasks are in or the
// tasks are gone. Should it die before that, the tasks' registrations
// go with its fds and the pages not yet in read as zeros: it kills them
// when it is stopped through Context, and nothing can when it is
// killed (SIGKILL).
func Serve(opts Options) (*Stats, error) {
	if opts.Context == nil {
		opts.Context = context.Background()
	}
	if err := fault.Check(); err != nil {
		return nil, fmt.Errorf("lazy-pages: %w", err)
	}
	d, err := model.Load(opts.ImagesDir)
	if err != nil {
		return nil, fmt.Errorf("lazy-pages: %w", err)
	}
	s := &server{opts: opts, ctx: opts.Context, dump: d, procs: map[int]*model.Process{}, slow: fault.On(fault.LazySlow)}
	s.over, s.overDone = context.WithCancel(context.Background())
	for _, p := range d.Procs {
		s.procs[p.Pid] = p
	}
	path := SocketPath(opts.ImagesDir)
	if err := stale(path); err != nil {
		return nil, fmt.Errorf("lazy-pages: %w", err)
	}
	ln, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err != nil {
		return nil, fmt.Errorf("lazy-pages: listen: %w", err)
	}
	ln.SetUnlinkOnClose(true)
	defer ln.Close()
	stop := context.AfterFunc(s.ctx, func() { ln.Close() })
	defer stop()
	opts.logf("lazy-pages: listening on %s", path)
	if opts.Ready != nil {
		opts.Ready()
	}
	c, err := ln.AcceptUnix()
	if err != nil {
		if s.ctx.Err() != nil {
			return nil, fmt.Errorf("lazy-pages: stopped before a restore connected: %w", context.Cause(s.ctx))
		}
		return nil, fmt.Errorf("lazy-pages: accept: %w", err)
	}
	// One restore only: nobody else connects from now on.
	ln.Close()
	serr := s.session(c)
	s.overDone()
	c.Close()
	s.wg.Wait()
	for _, b := range s.srcs {
		// Not unix.Munmap: mapLow's mappings are not of unix.Mmap.
		_ = unix.MunmapPtr(unsafe.Pointer(&b[0]), uintptr(len(b)))
	}
	st := &Stats{
		Tasks: int(s.tasks.Load()), Forks: int(s.forks.Load()), Gone: int(s.gone.Load()),
		Faults: s.faults.Load(), FaultPages: s.faultPages.Load(), PushedPages: s.pushed.Load(), ZeroPages: s.zero.Load(),
	}
	if l := s.last.Load(); l != 0 && !s.first.IsZero() {
		st.AllIn = time.Unix(0, l).Sub(s.first)
	}
	if serr != nil {
		return st, fmt.Errorf("lazy-pages: %w", serr)
	}
	if err := s.ctx.Err(); err != nil {
		return st, fmt.Errorf("lazy-pages: stopped: %w", context.Cause(s.ctx))
	}
	return st, nil
}

// session serves the restore's requests until it is done or gone.
func (s *server) session(c *net.UnixConn) error {
	stop := context.AfterFunc(s.ctx, func() { c.Close() })
	defer stop()
	for {
		req, fds, err := readRequest(c)
		if errors.Is(err, errEOF) || (err != nil && s.ctx.Err() != nil) {
			// The restore failed (its tasks are killed, which ends
			// their service) or was stopped.
			return errors.New("the restore closed the connection before it was done (did it fail?)")
		}
		if err != nil {
			return fmt.Errorf("read request: %w", err)
		}
		switch req.Op {
		case opDone:
			closeAll(fds)
			s.opts.logf("lazy-pages: the restore is done")
			return writeReply(c, nil)
		case opTask:
			if len(fds) != 1 {
				closeAll(fds)
				err = fmt.Errorf("task %d: %d fds with the request, want its userfaultfd", req.Pid, len(fds))
			} else {
				err = s.addTask(req, fds[0])
			}
		default:
			closeAll(fds)
			err = fmt.Errorf("unknown request %q", req.Op)
		}
		if werr := writeReply(c, err); werr != nil {
			return werr
		}
	}
}

// addTask starts serving the userfaultfd of one restored task.
func (s *server) addTask(req request, uffd int) error {
	p := s.procs[req.Pid]
	if p == nil {
		unix.Close(uffd)
		return fmt.Errorf("task %d is not in the dump in %s", req.Pid, s.opts.ImagesDir)
	}
	src, pages, err := s.taskPages(p, req.Areas)
	if err != nil {
		unix.Close(uffd)
		return fmt.Errorf("task %d: %w", req.Pid, err)
	}
	if s.first.IsZero() {
		s.first = time.Now()
	}
	s.tasks.Add(1)
	m := &mm{s: s, name: fmt.Sprintf("task %d", req.Pid), hostPid: req.HostPid, src: src, set: newPageSet(pages), born: time.Now()}
	s.opts.logf("lazy-pages: %s (pid %d here): %d pages in %d areas", m.name, req.HostPid, m.set.pending, len(req.Areas))
	return m.start(uffd)
}

// taskPages maps the pages image of p and lists its pages in areas.
func (s *server) taskPages(p *model.Process, areas [][2]uint64) ([]byte, []page, error) {
	sort.Slice(areas, func(i, j int) bool { return areas[i][0] < areas[j][0] })
	var pages []page
	count := 0
	each := func(r model.PageRun) error {
		// The part of the run in each area.
		re := r.Vaddr + r.NrPages*pageSize
		for _, a := range areas {
			lo, hi := max(a[0], r.Vaddr), min(a[1], re)
			if pages == nil {
				if hi > lo {
					count += int((hi - lo) / pageSize)
				}
				continue
			}
			for addr := lo; addr < hi; addr += pageSize {
				pages = append(pages, page{addr: addr, off: r.Off + int64(addr-r.Vaddr), first: addr == a[0]})
			}
		}
		return nil
	}
	// Counted first: one allocation.
	if _, err := p.PageRuns(each); err != nil {
		return nil, nil, err
	}
	pages = make([]page, 0, count)
	end, err := p.PageRuns(each)
	if err != nil {
		return nil, nil, err
	}
	if len(pages) == 0 {
		return nil, nil, nil
	}
	f, err := p.OpenPages()
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if fi.Size() < end {
		return nil, nil, fmt.Errorf("%s: %d bytes, the pagemap accounts for %d", f.Name(), fi.Size(), end)
	}
	// UFFDIO_COPY checks its source address against the TASK_SIZE of
	// the task's mm, not the caller's (fs/userfaultfd.c, userfaultfd_copy:
	// validate_unaligned_range(ctx->mm, src)): for an ia32 task the
	// source must lie below 4 GiB, so the image is mapped there where it
	// fits (mapLow); else through a bounce buffer there (mm.copy).
	src, err := mapLow(f, int(end))
	if err != nil {
		src, err = unix.Mmap(int(f.Fd()), 0, int(end), unix.PROT_READ, unix.MAP_SHARED)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("map %s: %w", f.Name(), err)
	}
	s.mu.Lock()
	s.srcs = append(s.srcs, src)
	s.mu.Unlock()
	return src, pages, nil
}

// mm serves one userfaultfd: one address space, a restored task's or
// that of a process it forked.
//
// One goroutine reads its messages and copies its pages. The kernel
// refuses copies (EAGAIN) while a change of the mm (fork, mremap,
// munmap, madvise) has its event unread, and lets them through once it
// is read: a second goroutine reading the events could let a copy to
// the old place of an mremap'd area through before the event that moved
// it is handled, and that page would be lost (the kernel's
// userfaultfd_event_wait_completion lowers mmap_changing when the event
// is read, not when it is acted on).
type mm struct {
	s       *server
	name    string
	hostPid int // 0 for a forked process (the fork event gives no PID)
	src     []byte
	set     *pageSet
	f       *os.File
	fd      uintptr
	buf     []byte
	born    time.Time
	// bounce is a buffer below 4 GiB for an image mapped above (copy).
	bounce []byte
	// deferred are faults that met a change of the mm in progress
	// (EAGAIN): served again once its event is read.
	deferred []uint64
}

// start sets the userfaultfd up and serves it on a goroutine of its own.
func (m *mm) start(uffd int) error {
	if err := unix.SetNonblock(uffd, true); err != nil {
		unix.Close(uffd)
		return err
	}
	// Non-blocking, the file is polled: reads can time out (poll).
	m.f = os.NewFile(uintptr(uffd), "userfaultfd of "+m.name)
	m.fd = uintptr(uffd)
	m.buf = make([]byte, 64*uapi.SizeofUffdMsg)
	m.s.wg.Add(1)
	go m.serve()
	return nil
}

// errGone says the mm is gone (its processes exited).
var errGone = errors.New("gone")

// serve puts every page in: faults first, the rest in the background,
// following the events of the mm; it closes the userfaultfd once none
// is missing, which unregisters the areas.
func (m *mm) serve() {
	defer m.s.wg.Done()
	// A wait for messages ends early when the restore is over or the
	// server is stopped (poll checks both after setting its deadline).
	wake := func() { m.f.SetReadDeadline(time.Now()) }
	stopOver := context.AfterFunc(m.s.over, wake)
	stopCtx := context.AfterFunc(m.s.ctx, wake)
	err := m.loop()
	stopOver()
	stopCtx()
	m.f.Close()
	if m.bounce != nil {
		unix.Munmap(m.bounce)
	}
	m.s.last.Store(time.Now().UnixNano())
	switch {
	case err == nil:
		m.s.opts.logf("lazy-pages: %s: all pages in after %v", m.name, time.Since(m.born).Round(time.Microsecond))
	case errors.Is(err, errGone):
		m.s.gone.Add(1)
		m.s.opts.logf("lazy-pages: %s went away with %d pages not in", m.name, m.set.pending)
	default:
		if m.set.pending > 0 && m.hostPid > 0 {
			// Its memory would read zeros where the images have pages.
			unix.Kill(m.hostPid, unix.SIGKILL)
			m.s.opts.logf("lazy-pages: %s: %v: killed it (pid %d), %d pages were not in", m.name, err, m.hostPid, m.set.pending)
		} else {
			m.s.opts.logf("lazy-pages: %s: %v (%d pages not in)", m.name, err, m.set.pending)
		}
	}
}

func (m *mm) isOver() bool { return m.s.over.Err() != nil }

// While the restore goes on, an mm only serves its faults, waiting for
// them at most idleWait at a time (the wait ends early when the restore
// is over).
const idleWait = 100 * time.Millisecond

func (m *mm) loop() error {
	cursor := 0
	for m.set.pending > 0 {
		if err := m.s.ctx.Err(); err != nil {
			return context.Cause(m.s.ctx)
		}
		if !m.isOver() {
			// The restore goes on: faults only.
			if err := m.poll(idleWait, true); err != nil {
				return err
			}
			continue
		}
		// Faults and events first, then a run of pages.
		if err := m.poll(0, false); err != nil {
			return err
		}
		i := m.set.next(cursor)
		if i < 0 {
			break
		}
		n := m.set.run(i, pushPages)
		if m.s.slow {
			// 16 pages every 2 ms or every batch of messages.
			n = min(n, 16)
			if err := m.poll(2*time.Millisecond, false); err != nil {
				return err
			}
			if m.set.find(m.set.pages[i].addr) != i {
				continue // the messages changed the set
			}
		}
		done, err := m.copy(i, n)
		m.s.pushed.Add(done)
		switch {
		case errors.Is(err, unix.EAGAIN):
			// The mm is changing (fork, mremap, munmap, madvise): its
			// event comes first.
			if err := m.poll(10*time.Millisecond, false); err != nil {
				return err
			}
		case err != nil:
			return err
		}
		cursor = i + int(done)
	}
	return nil
}

// poll handles the messages waiting on the userfaultfd, waiting at most
// d for one when none is (d 0: no wait), or until the server is stopped,
// or (untilOver) the restore is over; then it retries the faults that
// had to wait.
func (m *mm) poll(d time.Duration, untilOver bool) error {
	n, err := unix.Read(int(m.fd), m.buf)
	if errors.Is(err, unix.EAGAIN) && d > 0 {
		m.f.SetReadDeadline(time.Now().Add(d))
		if m.s.ctx.Err() != nil || (untilOver && m.isOver()) {
			// Stopped or over before the deadline was set: the wake-up
			// may have come before it.
			return m.handle(nil)
		}
		n, err = m.f.Read(m.buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			err = unix.EAGAIN
		}
	}
	switch {
	case errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR):
		return m.handle(nil)
	case err != nil:
		return fmt.Errorf("read the userfaultfd: %w", err)
	}
	batch := make([]uapi.UffdMsg, 0, n/uapi.SizeofUffdMsg)
	for o := 0; o+uapi.SizeofUffdMsg <= n; o += uapi.SizeofUffdMsg {
		batch = append(batch, uapi.ParseUffdMsg(m.buf[o:o+uapi.SizeofUffdMsg]))
	}
	return m.handle(batch)
}

// handle acts on messages of the userfaultfd, then on the faults that
// had to wait.
func (m *mm) handle(batch []uapi.UffdMsg) error {
	for _, msg := range batch {
		switch msg.Event {
		case uapi.UFFD_EVENT_PAGEFAULT:
			m.s.faults.Add(1)
			m.deferred = append(m.deferred, msg.Address)
		case uapi.UFFD_EVENT_FORK:
			m.fork(int(msg.Ufd))
		case uapi.UFFD_EVENT_REMAP:
			m.set.remap(msg.From, msg.To, msg.Len)
		case uapi.UFFD_EVENT_REMOVE, uapi.UFFD_EVENT_UNMAP:
			m.set.drop(msg.Start, msg.End)
		}
	}
	faults := m.deferred
	m.deferred = nil
	for k, addr := range faults {
		if err := m.fault(addr); errors.Is(err, unix.EAGAIN) {
			m.deferred = append(m.deferred, faults[k:]...)
			return nil
		} else if err != nil {
			return err
		}
	}
	return nil
}

// fault puts in the page at addr and a few after it, or a zero page
// where the images have none.
func (m *mm) fault(addr uint64) error {
	if i := m.set.find(addr); i >= 0 {
		done, err := m.copy(i, m.set.run(i, faultPages))
		m.s.faultPages.Add(done)
		return err
	}
	z := uapi.UffdioZeropage{Range: uapi.UffdioRange{Start: addr &^ (pageSize - 1), Len: pageSize}}
	err := m.ioctl(uapi.UFFDIO_ZEROPAGE, unsafe.Pointer(&z))
	switch {
	case err == nil:
		m.s.zero.Add(1)
	case errors.Is(err, unix.EEXIST):
		return m.wake(z.Range)
	case errors.Is(err, unix.ENOENT):
		// Unmapped meanwhile: its event follows.
	default:
		return err
	}
	return nil
}

// copy copies n pages from index i and returns how many went in. A page
// that is there already (EEXIST) or no longer registered (ENOENT) is
// done with; EAGAIN and other errors are returned.
func (m *mm) copy(i, n int) (uint64, error) {
	p := m.set.pages[i]
	c := uapi.UffdioCopy{Dst: p.addr, Src: uint64(uintptr(unsafe.Pointer(&m.src[p.off]))), Len: uint64(n) * pageSize}
	if c.Src+c.Len > low4G {
		// Not below 4 GiB: through a buffer that is (see taskPages).
		if m.bounce == nil {
			b, err := unix.Mmap(-1, 0, pushPages*pageSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_32BIT)
			if err != nil {
				return 0, fmt.Errorf("a copy buffer below 4 GiB: %w", err)
			}
			m.bounce = b
		}
		copy(m.bounce, m.src[p.off:p.off+int64(c.Len)])
		c.Src = uint64(uintptr(unsafe.Pointer(&m.bounce[0])))
	}
	err := m.ioctl(uapi.UFFDIO_COPY, unsafe.Pointer(&c))
	done := uint64(0)
	if c.Copy > 0 {
		done = uint64(c.Copy) / pageSize
		m.set.markDone(i, int(done))
	}
	if err == nil {
		return done, nil
	}
	switch {
	case errors.Is(err, unix.EEXIST):
		m.set.markDone(i+int(done), 1)
		return done, m.wake(uapi.UffdioRange{Start: p.addr + done*pageSize, Len: pageSize})
	case errors.Is(err, unix.ENOENT) && n-int(done) > 1:
		// The run crosses the end of a VMA (the program split an area,
		// with mprotect say): one copy fills one VMA. Page by page.
		for k := i + int(done); k < i+n; k++ {
			if m.set.pages[k].done {
				break
			}
			d, err := m.copy(k, 1)
			done += d
			if err != nil {
				return done, err
			}
		}
		return done, nil
	case errors.Is(err, unix.ENOENT):
		// Not registered (or not mapped) any more: its event follows.
		m.set.markDone(i+int(done), 1)
		return done, nil
	case errors.Is(err, unix.ESRCH):
		return done, errGone
	case errors.Is(err, unix.EAGAIN):
		return done, err
	}
	return done, fmt.Errorf("UFFDIO_COPY of %d pages at %#x: %w", n, p.addr, err)
}

// wake wakes the threads waiting on r, whose page is there.
func (m *mm) wake(r uapi.UffdioRange) error {
	err := m.ioctl(uapi.UFFDIO_WAKE, unsafe.Pointer(&r))
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	return err
}

func (m *mm) ioctl(req uintptr, arg unsafe.Pointer) error {
	for {
		_, _, e := unix.Syscall(unix.SYS_IOCTL, m.fd, req, uintptr(arg))
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return e
		}
		return nil
	}
}

// fork starts serving the userfaultfd of a process that the mm's task
// forked: it lacks what the parent lacked at the fork.
func (m *mm) fork(ufd int) {
	m.s.forks.Add(1)
	c := &mm{s: m.s, name: "a child of " + m.name, src: m.src, set: m.set.clone(), born: time.Now()}
	if err := c.start(ufd); err != nil {
		m.s.opts.logf("lazy-pages: %s: %v", c.name, err)
	}
}

// lowBase is where mapLow tries to map an image: above what a Go
// program maps low (its binary), below 4 GiB.
const lowBase = 0x10000000

// mapLow maps the first size bytes of f read-only below 4 GiB, at the
// first free place from lowBase on that it finds (MAP_FIXED_NOREPLACE).
func mapLow(f *os.File, size int) ([]byte, error) {
	sz := uint64(size+pageSize-1) &^ (pageSize - 1)
	for at := uint64(lowBase); at+sz <= low4G; at += 256 << 20 {
		// The hint as a pointer (nothing is there yet: it is free).
		p, err := unix.MmapPtr(int(f.Fd()), 0, unsafe.Add(unsafe.Pointer(nil), at), uintptr(size), unix.PROT_READ, unix.MAP_SHARED|unix.MAP_FIXED_NOREPLACE)
		if err == nil {
			return unsafe.Slice((*byte)(p), size), nil
		}
		if !errors.Is(err, unix.EEXIST) {
			return nil, err
		}
	}
	return nil, unix.ENOMEM
}
