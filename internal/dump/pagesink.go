//go:build linux && amd64

package dump

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/image"
	"github.com/ckpt/ckpt/internal/model"
	"github.com/ckpt/ckpt/internal/pageserver"
	"github.com/ckpt/ckpt/internal/procfs"
)

// This file is where the bytes of a pages image go: the image file in
// the images directory (fileSink), or a page server (remoteSink, with
// Options.PageServer), which receives them over TCP. The copy
// (pagecopy.go) writes through pageSink and knows nothing of either.
//
// With a page server, the dump connects to it before it touches the
// tree (a server that is not there fails the dump at once), streams each
// process's pages to it while the tree is frozen (or from a snapshot),
// and at the end (sendToPageServer) sends it every other image too and
// waits for its answer that all are synced in its directory; only then
// is the dump published and the tree killed or let go. The server's
// directory then holds the whole dump; the local one holds every image
// but the pages images.

// pipeWriter moves n bytes from the pipe fd pipe to a pages image at off.
type pipeWriter func(pipe, n int, off int64) error

// pageSink is where a pages image's bytes go, in order of offset.
type pageSink interface {
	// offset is where the next bytes go.
	offset() (int64, error)
	// writeAt writes b at off.
	writeAt(b []byte, off int64) error
	// spliceAt moves n bytes from the pipe fd pipe to off.
	spliceAt(pipe, n int, off int64) error
	// second returns a pipeWriter that can run beside spliceAt, for
	// the bytes up to end, or nil where there is none.
	second(end int64) (pipeWriter, error)
	// end notes that the image ends at off, for now (more runs may
	// follow: the vDSO and frozen runs, then the snapshot's).
	end(off int64) error
	// size is how many bytes the image holds so far (progress).
	size() int64
}

// pagesSink returns the sink of process t's pages image, written by w,
// for the runs about to be copied.
func (t *task) pagesSink(w *model.PagesWriter, runs []pageRun) (pageSink, error) {
	c := t.opts.pageServer
	if c == nil {
		f, err := w.File()
		if err != nil {
			return nil, err
		}
		s := &fileSink{f: f, sync: !t.opts.NoSync, rw: w.MappableFile}
		if s.sync && t.opts.goDirect(runsBytes(runs)) {
			if s.direct = w.DirectFile(); s.direct != nil {
				name := filepath.Base(f.Name())
				t.opts.logf("dump %d: pages image %s written directly to the disk (O_DIRECT), past the page cache", t.pid, name)
				s.fellBack = func(err error) {
					t.opts.logf("dump %d: pages image %s: the rest through the page cache: %v", t.pid, name, err)
				}
			}
		}
		return s, nil
	}
	name := image.PagesName(uint32(t.index))
	h, err := c.Open(name)
	if err != nil {
		return nil, err
	}
	s := &remoteSink{c: c, h: h, name: name}
	t.opts.remote = append(t.opts.remote, s)
	return s, nil
}

// fileSink is the pages image file. With sync, the writeback of each
// chunk starts as soon as it is written, so that the sync at the end of
// the dump finds little left; without (NoSync) the page cache keeps it.
//
// A large dump that syncs splices into direct, the image open with
// O_DIRECT: the disk then takes the pages straight from the pipes, which
// hold the task's own pages (vmsplice), with no copy by the CPU and no
// page cache to fill. Once the dump's pages pass what the kernel lets
// sit dirty before it writes back (goDirect), buffered writes would be
// throttled down to the speed of writeback, which is far below that of
// direct writes on the disks measured (test/bench DumpRestoreSizes); the
// cost is a restore that reads the images from the disk, not the cache.
type fileSink struct {
	f      *os.File
	sync   bool
	direct *os.File // nil: through the page cache
	// fellBack notes that a direct write was refused.
	fellBack func(error)
	// rw opens the image for a shared writable mapping (second).
	rw func() *os.File
	// unmappable: a mapping of the image was refused; the second
	// writer splices too.
	unmappable atomic.Bool
}

func (s *fileSink) offset() (int64, error) {
	off, err := s.f.Seek(0, io.SeekCurrent)
	if err != nil {
		return 0, fmt.Errorf("pages image: %w", err)
	}
	return off, nil
}

func (s *fileSink) writeAt(b []byte, off int64) error {
	if _, err := image.WriteAtCached(s.f, b, off); err != nil {
		return fmt.Errorf("write pages image: %w", err)
	}
	if s.sync && len(b) >= 1<<20 {
		startWriteback(int(s.f.Fd()), off, int64(len(b)))
	}
	return nil
}

func (s *fileSink) spliceAt(pipe, n int, off int64) error {
	if s.direct != nil {
		moved, err := spliceSome(pipe, int(s.direct.Fd()), n, off, n)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EINVAL) {
			return err
		}
		// The file system took the open but not this write (its
		// alignment): the rest of the image goes through the cache.
		s.direct = nil
		s.fellBack(err)
		n -= moved
		off += int64(moved)
	}
	if err := spliceOut(pipe, int(s.f.Fd()), n, off); err != nil {
		return err
	}
	if s.sync {
		startWriteback(int(s.f.Fd()), off, int64(n))
	}
	return nil
}

// second returns the writer that copies from a pipe into a shared
// mapping of the image: page-cache writes through a mapping do not take
// the file's inode lock, which every write(2) and splice to an ext4 file
// holds while it copies, so it copies on another CPU at the same time
// as spliceAt. It costs more CPU per byte than splice (the kernel
// zero-fills each page of the mapping before the copy, and calls the
// file system for each page written), so it only helps while splice is
// slow (drainers.route): on the 2-CPU VM measured, which gives freed
// memory back to its host, about one dump in three finds memory the
// host must fault in again, and there the two together take half the
// time splice alone does. The image is first made end bytes long, as a
// mapping cannot reach past the end of its file. None with O_DIRECT,
// whose writes need no CPU.
func (s *fileSink) second(end int64) (pipeWriter, error) {
	if s.direct != nil || s.rw == nil {
		return nil, nil
	}
	f := s.rw()
	if f == nil {
		return nil, nil
	}
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("pages image: %w", err)
	}
	if fi.Size() < end {
		if err := f.Truncate(end); err != nil {
			return nil, fmt.Errorf("pages image: %w", err)
		}
	}
	return func(pipe, n int, off int64) error { return s.mapIn(f, pipe, n, off) }, nil
}

// mapIn reads n bytes from pipe into a shared mapping of f at off; only
// the kernel touches the mapping (read(2)), so an image cut short under
// it gives EFAULT, not SIGBUS.
func (s *fileSink) mapIn(f *os.File, pipe, n int, off int64) error {
	if off%x86.PageSize != 0 || n%x86.PageSize != 0 || s.unmappable.Load() {
		return s.spliceAt(pipe, n, off)
	}
	b, err := unix.Mmap(int(f.Fd()), off, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		// A file system without shared writable mappings.
		s.unmappable.Store(true)
		return s.spliceAt(pipe, n, off)
	}
	done := 0
	for done < n {
		m, err := unix.Read(pipe, b[done:])
		if err == unix.EINTR {
			continue
		}
		if err == unix.EFAULT {
			// A page of the mapping the file system could not give
			// (a full disk: ENOSPC comes as a fault). What the read
			// did not take is still in the pipe: splice says why.
			_ = unix.Munmap(b)
			return s.spliceAt(pipe, n-done, off+int64(done))
		}
		if err == nil && m == 0 {
			err = fmt.Errorf("pipe empty with %d bytes to go", n-done)
		}
		if err != nil {
			_ = unix.Munmap(b)
			return fmt.Errorf("read pipe into pages image at %d: %w", off, err)
		}
		done += m
	}
	if err := unix.Munmap(b); err != nil {
		return fmt.Errorf("unmap pages image at %d: %w", off, err)
	}
	if s.sync {
		startWriteback(int(f.Fd()), off, int64(n))
	}
	return nil
}

// end leaves the file's offset at the end: later writers of the image
// go on from there.
func (s *fileSink) end(off int64) error {
	if _, err := s.f.Seek(off, io.SeekStart); err != nil {
		return fmt.Errorf("pages image: %w", err)
	}
	return nil
}

func (s *fileSink) size() int64 {
	fi, err := s.f.Stat()
	if err != nil {
		return 0
	}
	return fi.Size()
}

// remoteSink is a pages image on the page server.
type remoteSink struct {
	c    *pageserver.Client
	h    uint32
	name string
	n    atomic.Int64 // the image's size so far
}

func (s *remoteSink) offset() (int64, error) { return s.n.Load(), nil }

func (s *remoteSink) grow(end int64) {
	for {
		n := s.n.Load()
		if end <= n || s.n.CompareAndSwap(n, end) {
			return
		}
	}
}

func (s *remoteSink) writeAt(b []byte, off int64) error {
	if err := s.c.WriteAt(s.h, b, off); err != nil {
		return fmt.Errorf("%s: %w", s.name, err)
	}
	s.grow(off + int64(len(b)))
	return nil
}

func (s *remoteSink) spliceAt(pipe, n int, off int64) error {
	if err := s.c.SpliceAt(s.h, pipe, n, off); err != nil {
		return fmt.Errorf("%s: %w", s.name, err)
	}
	s.grow(off + int64(n))
	return nil
}

func (s *remoteSink) end(off int64) error { s.grow(off); return nil }

// second: the page server's connection takes one writer.
func (s *remoteSink) second(int64) (pipeWriter, error) { return nil, nil }

func (s *remoteSink) size() int64 { return s.n.Load() }

// pageServerTimeout bounds the connection to the page server and the
// wait for its last answer (the sync of everything it received).
const pageServerTimeout = 60 * time.Second

// dialPageServer connects to Options.PageServer, if set: before the tree
// is touched.
func (o *Options) dialPageServer() error {
	if o.PageServer == "" {
		return nil
	}
	if o.PreDump || o.PrevImagesDir != "" || o.TrackMem {
		// A pre-copy chain links to its parent's directory, which
		// would have to be on the server too.
		return fmt.Errorf("a page server with pre-copy (pre-dump, --prev-images-dir, --track-mem) is not supported yet: dump into a local directory")
	}
	c, err := pageserver.Dial(o.PageServer, 10*time.Second)
	if err != nil {
		return fmt.Errorf("%w: is `ckpt page-server` listening there?", err)
	}
	o.pageServer = c
	return nil
}

// sendToPageServer ends the pages images streamed to the page server,
// sends it every other image written in stage and waits until it has
// synced them all. The pages images go only to the server: the empty
// local files that stood for them are removed, and so are other pages
// images (of shared memory, written with the other images) once sent,
// so that copying the local images over the server's never overwrites
// pages; so are those an earlier dump left in the images directory.
func (tr *tree) sendToPageServer() error {
	o := tr.opts
	c := o.pageServer
	if c == nil {
		return nil
	}
	streamed := map[string]bool{}
	for _, s := range o.remote {
		if err := c.Close(s.h, s.size()); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		streamed[s.name] = true
	}
	ents, err := os.ReadDir(tr.stage)
	if err != nil {
		return err
	}
	var inv string
	for _, e := range ents {
		name := e.Name()
		if !e.Type().IsRegular() {
			return fmt.Errorf("page server: %s in the images is not a regular file; cannot send it", name)
		}
		if streamed[name] {
			if err := os.Remove(filepath.Join(tr.stage, name)); err != nil {
				return err
			}
			continue
		}
		if name == image.InventoryName() {
			inv = name // last, as publish moves it
			continue
		}
		if err := c.SendFile(name, filepath.Join(tr.stage, name)); err != nil {
			return fmt.Errorf("send %s: %w", name, err)
		}
		if isPagesImage(name) {
			if err := os.Remove(filepath.Join(tr.stage, name)); err != nil {
				return err
			}
		}
	}
	if inv != "" {
		if err := c.SendFile(inv, filepath.Join(tr.stage, inv)); err != nil {
			return fmt.Errorf("send %s: %w", inv, err)
		}
	}
	if err := c.Finish(pageServerTimeout); err != nil {
		return err
	}
	o.logf("dump %d: %d bytes sent to the page server %s", o.Pid, c.Sent(), c.Addr())
	old, _ := os.ReadDir(o.ImagesDir)
	for _, e := range old {
		if isPagesImage(e.Name()) {
			if err := os.Remove(filepath.Join(o.ImagesDir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("remove an earlier dump's %s: %w", e.Name(), err)
			}
		}
	}
	return nil
}

// isPagesImage says whether name is a pages-N.img.
func isPagesImage(name string) bool {
	return strings.HasPrefix(name, "pages-") && strings.HasSuffix(name, ".img")
}

// directWrites is the dump's account of the pages it writes through the
// page cache, for goDirect.
type directWrites struct {
	// threshold is the dirty page cache, in bytes, past which the
	// kernel starts writing back in the background (0: never direct;
	// below 0: always).
	threshold int64
	buffered  atomic.Int64
}

// directEnv reads CKPT_DIRECT, for tests and comparisons: "always"
// writes every pages image directly, "off" none; unset or "auto", the
// images past the kernel's background writeback threshold.
func directEnv() (*directWrites, error) {
	switch v := os.Getenv("CKPT_DIRECT"); v {
	case "", "auto":
		return &directWrites{threshold: dirtyBackgroundBytes()}, nil
	case "off":
		return &directWrites{}, nil
	case "always":
		return &directWrites{threshold: -1}, nil
	default:
		return nil, fmt.Errorf("CKPT_DIRECT=%q: want off, auto or always", v)
	}
}

// pageWriters says how the pages move from the pipes to a pages image.
type pageWriters struct {
	// n is 1 (splice alone) or 2 (splice, and fileSink.second when
	// splice is slow: drainers.route).
	n int
	// always: the second writer takes every pipe it is free for.
	always bool
}

// pageWritersEnv reads CKPT_PAGE_WRITERS, for tests and comparisons: 1,
// splice alone; 2, splice and fileSink.second, each taking pipes while
// it is free; unset or "auto", the second writer where there is a
// second CPU for it, helping only while splice is slow.
func pageWritersEnv() (pageWriters, error) {
	switch v := os.Getenv("CKPT_PAGE_WRITERS"); v {
	case "", "auto":
		return pageWriters{n: min(runtime.NumCPU(), 2)}, nil
	case "1":
		return pageWriters{n: 1}, nil
	case "2":
		return pageWriters{n: 2, always: true}, nil
	default:
		return pageWriters{}, fmt.Errorf("CKPT_PAGE_WRITERS=%q: want 1, 2 or auto", v)
	}
}

// goDirect says whether a pages image of n more bytes goes to the disk
// directly (fileSink): once this dump's buffered pages would pass the
// kernel's background writeback threshold, each further image does. A
// smaller dump stays in the page cache, where a restore finds it.
func (o *Options) goDirect(n uint64) bool {
	d := o.direct
	switch {
	case d == nil || d.threshold == 0:
		return false
	case d.threshold < 0:
		return true
	}
	if d.buffered.Load()+int64(n) > d.threshold {
		return true
	}
	d.buffered.Add(int64(n))
	return false
}

// runsBytes is the size of runs.
func runsBytes(runs []pageRun) uint64 {
	var n uint64
	for _, r := range runs {
		n += r.size
	}
	return n
}

// dirtyBackgroundBytes is the amount of dirty page cache past which the
// kernel writes back in the background: vm.dirty_background_bytes, or
// vm.dirty_background_ratio percent of the memory available for the
// page cache (MemAvailable: close to the kernel's own "dirtyable"
// memory; Documentation/admin-guide/sysctl/vm.rst). 0 when unknown.
func dirtyBackgroundBytes() int64 {
	read := func(name string) int64 {
		b, err := os.ReadFile("/proc/sys/vm/" + name)
		if err != nil {
			return 0
		}
		v, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		return v
	}
	if v := read("dirty_background_bytes"); v > 0 {
		return v
	}
	ratio := read("dirty_background_ratio")
	avail, err := procfs.MemAvailable()
	if ratio <= 0 || err != nil {
		return 0
	}
	return int64(avail) * ratio / 100
}
