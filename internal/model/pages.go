//go:build linux && amd64

package model

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/pagemap"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/ckerr"
	"github.com/ckpt/ckpt/internal/image"
)

// PageRun is one pagemap entry whose pages are in the pages image: NrPages
// pages from Vaddr, stored at Off in pages-ID.img. Index is the entry's
// position in the pagemap image (the head is 0).
type PageRun struct {
	Index   int
	Vaddr   uint64
	NrPages uint64
	Off     int64
}

// entryPages is the page count of a pagemap entry: nr_pages, or the
// compat_nr_pages that go-criu v8 made required.
func entryPages(e *pagemap.PagemapEntry) uint64 {
	if n := e.GetNrPages(); n != 0 {
		return n
	}
	return uint64(e.GetCompatNrPages())
}

// EntryPages is the number of pages a pagemap entry covers.
func EntryPages(e *pagemap.PagemapEntry) uint64 { return entryPages(e) }

// forEachRun calls f for every entry of pm whose pages are in the pages
// image, and returns the offset past the last one.
func forEachRun(pm []*pagemap.PagemapEntry, f func(PageRun) error) (int64, error) {
	var off int64
	for i, e := range pm {
		if e.GetFlags()&image.PEPresent == 0 {
			continue
		}
		n := entryPages(e)
		if err := f(PageRun{Index: i + 1, Vaddr: e.GetVaddr(), NrPages: n, Off: off}); err != nil {
			return off, err
		}
		off += int64(n * x86.PageSize)
	}
	return off, nil
}

// PageRuns calls f for every run of the process's pages that the pages
// image holds, and returns the offset past the last one (the size the
// pages image must have).
func (p *Process) PageRuns(f func(PageRun) error) (int64, error) { return forEachRun(p.Pagemap, f) }

// OpenPages opens the process's pages image.
func (p *Process) OpenPages() (*os.File, error) { return p.Tree.Dir.OpenPages(p.PagesID) }

// readPagemap reads a pagemap image: its head's pages id and its entries.
func (d *Dump) readPagemap(name string) (uint32, []*pagemap.PagemapEntry, error) {
	raw, err := d.Dir.ReadRaw(name, image.MagicPagemap)
	if err != nil {
		return 0, nil, err
	}
	if len(raw) == 0 {
		return 0, nil, fmt.Errorf("%s: no pagemap head", name)
	}
	head := &pagemap.PagemapHead{}
	if err := d.Dir.Unmarshal(name, 0, raw[0], head); err != nil {
		return 0, nil, err
	}
	var out []*pagemap.PagemapEntry
	for i, r := range raw[1:] {
		e := &pagemap.PagemapEntry{}
		if err := d.Dir.Unmarshal(name, i+1, r, e); err != nil {
			return 0, nil, err
		}
		out = append(out, e)
	}
	return head.GetPagesId(), out, nil
}

// DumpedRange reads the dumped bytes of [start,end) from the pages image;
// every page of the range must be there.
func (p *Process) DumpedRange(start, end uint64) ([]byte, error) {
	out := make([]byte, end-start)
	covered := uint64(0)
	pf, err := p.OpenPages()
	if err != nil {
		return nil, err
	}
	defer pf.Close()
	_, err = p.PageRuns(func(r PageRun) error {
		b := r.Vaddr + r.NrPages*x86.PageSize
		if r.Vaddr < end && start < b {
			lo, hi := max(r.Vaddr, start), min(b, end)
			if err := image.ReadFullAt(pf, out[lo-start:hi-start], r.Off+int64(lo-r.Vaddr)); err != nil {
				return err
			}
			covered += hi - lo
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if covered != end-start {
		return nil, fmt.Errorf("the pages image holds %d of the %d bytes of %#x-%#x", covered, end-start, start, end)
	}
	return out, nil
}

// DumpedVDSO returns the range and image of the dumped [vdso].
func (p *Process) DumpedVDSO() (start, end uint64, b []byte, err error) {
	for _, v := range p.MM.GetVmas() {
		if v.GetStatus()&image.VMAAreaVDSO != 0 {
			b, err := p.DumpedRange(v.GetStart(), v.GetEnd())
			return v.GetStart(), v.GetEnd(), b, err
		}
	}
	return 0, 0, nil, fmt.Errorf("the dump has no [vdso]")
}

// PagesWriter writes one process's pages image and builds its pagemap.
type PagesWriter struct {
	f  *os.File
	w  *bufio.Writer
	id uint32
	pm []*pagemap.PagemapEntry
	// direct is the image open a second time with O_DIRECT (DirectFile).
	direct *os.File
	// rw is the image open a second time for reading and writing
	// (MappableFile).
	rw *os.File
}

// DirectFile returns the image open with O_DIRECT, for a writer that
// puts whole pages at page-aligned offsets straight to the disk, past
// the page cache; nil when the file system refuses O_DIRECT (tmpfs).
// Close closes it too.
func (w *PagesWriter) DirectFile() *os.File {
	if w.direct == nil {
		f, err := os.OpenFile(w.f.Name(), os.O_WRONLY|unix.O_DIRECT, 0)
		if err != nil {
			return nil
		}
		w.direct = f
	}
	return w.direct
}

// MappableFile returns the image open for reading and writing, which a
// shared writable mapping needs (the image itself is open write-only);
// nil when it cannot be opened so. Close closes it too.
func (w *PagesWriter) MappableFile() *os.File {
	if w.rw == nil {
		f, err := os.OpenFile(w.f.Name(), os.O_RDWR, 0)
		if err != nil {
			return nil
		}
		w.rw = f
	}
	return w.rw
}

// CreatePages starts pages-ID.img in dir.
func CreatePages(dir image.Dir, id uint32) (*PagesWriter, error) {
	f, err := dir.CreatePages(id)
	if err != nil {
		return nil, err
	}
	return &PagesWriter{f: f, w: bufio.NewWriterSize(f, 1<<20), id: id}, nil
}

// Writer is where the bytes of the next run go, in order.
func (w *PagesWriter) Writer() *bufio.Writer { return w.w }

// File flushes what Writer holds and returns the image file, for a writer
// that puts the bytes of the next runs there itself (splice, pwrite from
// the file's current size on) and leaves its offset at the end.
func (w *PagesWriter) File() (*os.File, error) {
	if err := w.w.Flush(); err != nil {
		return nil, fmt.Errorf("write pages image: %w", err)
	}
	return w.f, nil
}

// Add records that the next nrPages pages written are those at vaddr.
func (w *PagesWriter) Add(vaddr, nrPages uint64) {
	w.pm = append(w.pm, &pagemap.PagemapEntry{
		Vaddr: proto.Uint64(vaddr), NrPages: proto.Uint64(nrPages),
		CompatNrPages: proto.Uint32(uint32(nrPages)), Flags: proto.Uint32(image.PEPresent),
	})
}

// Finish flushes the pages image and returns its id and pagemap. The
// dump syncs every image at its end (or none, with NoSync).
func (w *PagesWriter) Finish() (uint32, []*pagemap.PagemapEntry, error) {
	if err := w.w.Flush(); err != nil {
		return 0, nil, fmt.Errorf("write pages image: %w", err)
	}
	return w.id, w.pm, nil
}

// Close closes the pages image; after Finish, or to give up.
func (w *PagesWriter) Close() error {
	for _, f := range []*os.File{w.direct, w.rw} {
		if f != nil {
			_ = f.Close()
		}
	}
	return w.f.Close()
}

// CheckPages checks that the process's pages image is there and holds
// every page its pagemap lists; a dump without them cannot be restored.
// The error names the image and wraps ckerr.ErrCorruptImage.
func (p *Process) CheckPages() error {
	if p.Zombie {
		return nil
	}
	want, err := p.PageRuns(func(PageRun) error { return nil })
	if err != nil {
		return err
	}
	return p.Tree.checkPagesSize(p.PagesID, image.PagemapName(p.Pid), want)
}

// CheckPages checks the pages images of every process and shared memory
// object of the dump against their pagemaps (see Process.CheckPages).
func (d *Dump) CheckPages() error {
	shmem := map[uint64]bool{}
	for _, p := range d.Procs {
		if err := p.CheckPages(); err != nil {
			return err
		}
		for _, v := range p.MM.GetVmas() {
			// A SysV segment's contents are with its IPC namespace
			// (sysvipc.go), even where CRIU saved them in pagemaps.
			if v.GetStatus()&image.VMAAnonShared != 0 && v.GetStatus()&image.VMAAreaSysVIPC == 0 {
				shmem[v.GetShmid()] = true
			}
		}
	}
	for ino := range shmem {
		name := image.ShmemPagemapName(ino)
		id, pm, err := d.readPagemap(name)
		if err != nil {
			return err
		}
		want, _ := forEachRun(pm, func(PageRun) error { return nil })
		if err := d.checkPagesSize(id, name, want); err != nil {
			return err
		}
	}
	return nil
}

func (d *Dump) checkPagesSize(id uint32, pagemapName string, want int64) error {
	name := image.PagesName(id)
	fi, err := os.Stat(filepath.Join(d.Dir.Path, name))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			if want == 0 {
				return nil
			}
			return fmt.Errorf("%s is missing: %s lists %d bytes of pages in it: %w", name, pagemapName, want, ckerr.ErrCorruptImage)
		}
		return fmt.Errorf("%s: %w", name, err)
	}
	if fi.Size() < want {
		return fmt.Errorf("%s holds %d bytes, %s lists %d: %w", name, fi.Size(), pagemapName, want, ckerr.ErrCorruptImage)
	}
	return nil
}
