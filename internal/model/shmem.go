//go:build linux && amd64

package model

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/pagemap"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/image"
)

// This file moves the content of shared memory objects (shared
// anonymous memory, memfds) between the object and its images, as CRIU
// lays them out: the non-zero pages in pages-ID.img, listed by their
// offset in the object in pagemap-shmem-INO.img. Neither direction holds
// the object whole: the bytes go through one buffer of shmemChunk bytes,
// so that an object of gigabytes (a database's shared buffers) costs
// ckpt a few megabytes, and the writes and reads are that large.
//
// The pagemap has one entry per run of consecutive non-zero pages, as
// CRIU's own dump of shared memory writes it (its page pipe merges
// adjacent pages into one iovec, and each iovec is one pagemap entry
// with nr_pages pages; criu/shmem.c dump_one_shmem, criu/page-xfer.c).

// shmemChunk is how many bytes of a shared memory object are copied at a
// time, both ways.
const shmemChunk = 4 << 20

// maxShmemEnd bounds a shared memory object read back from its pagemap.
const maxShmemEnd = 1 << 40

// Shmem is the content of one shared anonymous memory object (or memfd),
// named by its inode (vma_entry.shmid of the areas that map it). Either
// its pages are already in pages image PagesID, listed by Pagemap
// (SaveShmem), or Data holds the content whole, for Write to write.
type Shmem struct {
	Ino     uint64
	Data    []byte
	PagesID uint32
	Pagemap []*pagemap.PagemapEntry
}

// shmemPagesID is the pages image id of the k-th shared memory object of
// a dump of n processes: after the processes' own (1..n).
func shmemPagesID(n, k int) uint32 { return uint32(n + 1 + k) }

// SaveShmem copies the content of shared memory object ino, size bytes
// read from src (an open file of the object: /proc/PID/map_files/A-B,
// a memfd), into its pages image now, and records the pagemap for Write.
// d.ShmemPagesBase must be the number of processes the dump will hold.
// Holes of src (SEEK_DATA, SEEK_HOLE) are not read; zero pages are left
// out; a last partial page is padded with zeros.
func (d *Dump) SaveShmem(ino uint64, src *os.File, size int64) error {
	if d.HasShmem(ino) {
		// Two objects under one name: CRIU's images name a SysV
		// segment's by its IPC id, other objects' by their inode.
		return fmt.Errorf("shared memory %d: %s is taken by another object of the dump", ino, image.ShmemPagemapName(ino))
	}
	id := shmemPagesID(d.ShmemPagesBase, len(d.Shmem))
	pf, err := d.Dir.CreatePages(id)
	if err != nil {
		return err
	}
	w := &imageWriter{f: pf, writeback: d.ShmemWriteback}
	pm, err := encodeShmem(src, fileExtents(src, size), w)
	if cerr := pf.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("%s: %w", image.PagesName(id), cerr)
	}
	if err != nil {
		return fmt.Errorf("shared memory %d: %w", ino, err)
	}
	d.Shmem = append(d.Shmem, Shmem{Ino: ino, PagesID: id, Pagemap: pm})
	return nil
}

// HasShmem tells whether the dump holds shared memory object ino.
func (d *Dump) HasShmem(ino uint64) bool {
	for _, sh := range d.Shmem {
		if sh.Ino == ino {
			return true
		}
	}
	return false
}

// imageWriter writes a pages image from its start, in the page cache's
// pieces (image.WriteAtCached); with writeback it also starts the
// writeback of what it wrote (sync_file_range SYNC_FILE_RANGE_WRITE,
// which does not wait), as the process pages are written: the sync at
// the end of the dump then finds little left to write.
type imageWriter struct {
	f         *os.File
	off       int64
	writeback bool
}

func (w *imageWriter) Write(b []byte) (int, error) {
	n, err := image.WriteAtCached(w.f, b, w.off)
	if n > 0 && w.writeback {
		_ = unix.SyncFileRange(int(w.f.Fd()), w.off, int64(n), unix.SYNC_FILE_RANGE_WRITE)
	}
	w.off += int64(n)
	return n, err
}

// extent is a range of a shared memory object that may hold data.
type extent struct{ start, end int64 }

// fileExtents lists the ranges of f's first size bytes that hold data,
// by SEEK_DATA and SEEK_HOLE (shmem knows its holes; a file system
// without them gives the whole file). It moves f's offset.
func fileExtents(f *os.File, size int64) func(yield func(extent) bool) {
	return func(yield func(extent) bool) {
		fd := int(f.Fd())
		for off := int64(0); off < size; {
			start, err := unix.Seek(fd, off, unix.SEEK_DATA)
			if errors.Is(err, unix.ENXIO) {
				return // no data past off
			}
			if err != nil {
				yield(extent{off, size}) // no SEEK_DATA here: read it all
				return
			}
			end, err := unix.Seek(fd, start, unix.SEEK_HOLE)
			if err != nil || end > size {
				end = size
			}
			if start >= size || !yield(extent{start, end}) {
				return
			}
			off = end
		}
	}
}

// encodeShmem copies the non-zero pages of the extents of src to w, in
// order, and returns their pagemap (head not included): one entry per
// run of consecutive pages. Extents are widened to whole pages.
func encodeShmem(src io.ReaderAt, extents func(yield func(extent) bool), w io.Writer) ([]*pagemap.PagemapEntry, error) {
	var pm []*pagemap.PagemapEntry
	var next int64 = -1 // the object offset just past the last run
	var done int64      // the object offset just past what was read
	buf := make([]byte, shmemChunk)
	zero := make([]byte, x86.PageSize)
	add := func(off, n int64) {
		if off == next && len(pm) > 0 {
			e := pm[len(pm)-1]
			pages := e.GetNrPages() + uint64(n)
			e.NrPages, e.CompatNrPages = proto.Uint64(pages), proto.Uint32(uint32(pages))
		} else {
			pm = append(pm, &pagemap.PagemapEntry{
				Vaddr: proto.Uint64(uint64(off)), NrPages: proto.Uint64(uint64(n)),
				CompatNrPages: proto.Uint32(uint32(n)), Flags: proto.Uint32(image.PEPresent),
			})
		}
		next = off + n*x86.PageSize
	}
	var err error
	extents(func(e extent) bool {
		start := e.start &^ (x86.PageSize - 1)
		end := (e.end + x86.PageSize - 1) &^ (x86.PageSize - 1)
		for off := max(start, done); off < end; {
			chunk := buf[:min(int64(len(buf)), end-off)]
			n, rerr := src.ReadAt(chunk, off)
			if rerr != nil && !errors.Is(rerr, io.EOF) {
				err = fmt.Errorf("read shared memory at %#x: %w", off, rerr)
				return false
			}
			if n == 0 {
				return true // the object ends here
			}
			// A last partial page is padded with zeros.
			got := n
			n = (n + x86.PageSize - 1) &^ (x86.PageSize - 1)
			clear(chunk[got:n])
			chunk = chunk[:n]
			// Each run of non-zero pages of the chunk is one write.
			run := -1
			flush := func(to int) bool {
				if run < 0 {
					return true
				}
				if _, werr := w.Write(chunk[run:to]); werr != nil {
					err = fmt.Errorf("write shared memory pages: %w", werr)
					return false
				}
				add(off+int64(run), int64(to-run)/x86.PageSize)
				run = -1
				return true
			}
			for p := 0; p < n; p += x86.PageSize {
				if bytes.Equal(chunk[p:p+x86.PageSize], zero) {
					if !flush(p) {
						return false
					}
				} else if run < 0 {
					run = p
				}
			}
			if !flush(n) {
				return false
			}
			off += int64(n)
			done = off
		}
		return true
	})
	return pm, err
}

// writeShmem writes shared memory object sh, the k-th of the dump: its
// pagemap, and first its pages unless SaveShmem wrote them.
func (d *Dump) writeShmem(sh Shmem, k int) error {
	id := shmemPagesID(len(d.Procs), k)
	if sh.Data != nil || sh.PagesID == 0 {
		pf, err := d.Dir.CreatePages(id)
		if err != nil {
			return err
		}
		whole := func(yield func(extent) bool) { yield(extent{0, int64(len(sh.Data))}) }
		pm, err := encodeShmem(bytes.NewReader(sh.Data), whole, pf)
		if cerr := pf.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("%s: %w", image.PagesName(id), cerr)
		}
		if err != nil {
			return fmt.Errorf("shared memory %d: %w", sh.Ino, err)
		}
		sh.PagesID, sh.Pagemap = id, pm
	} else if sh.PagesID != id {
		return fmt.Errorf("shared memory %d: its pages went to %s, but a dump of %d processes names it %s (ShmemPagesBase was %d)",
			sh.Ino, image.PagesName(sh.PagesID), len(d.Procs), image.PagesName(id), d.ShmemPagesBase)
	}
	ents := []proto.Message{&pagemap.PagemapHead{PagesId: proto.Uint32(sh.PagesID)}}
	for _, e := range sh.Pagemap {
		ents = append(ents, e)
	}
	return d.Dir.Write(image.ShmemPagemapName(sh.Ino), image.MagicPagemap, ents...)
}

// shmemRuns reads the pagemap of shared memory object ino and returns
// its pages id and the runs of its pages in the pages image, checked:
// each within maxShmemEnd.
func (d *Dump) shmemRuns(ino uint64) (uint32, []PageRun, error) {
	name := image.ShmemPagemapName(ino)
	id, pm, err := d.readPagemap(name)
	if err != nil {
		return 0, nil, err
	}
	var runs []PageRun
	_, err = forEachRun(pm, func(r PageRun) error {
		if r.NrPages > maxShmemEnd/x86.PageSize || r.Vaddr > maxShmemEnd || r.Vaddr%x86.PageSize != 0 ||
			r.Vaddr+r.NrPages*x86.PageSize > maxShmemEnd {
			return fmt.Errorf("%s: %w: entry %d (%#x, %d pages) out of range", name, image.ErrCorrupt, r.Index, r.Vaddr, r.NrPages)
		}
		runs = append(runs, r)
		return nil
	})
	return id, runs, err
}

// ShmemEnd is the end of the dumped content of shared memory object ino:
// the offset past its last dumped page (0 for an object of zeros).
func (d *Dump) ShmemEnd(ino uint64) (uint64, error) {
	_, runs, err := d.shmemRuns(ino)
	if err != nil {
		return 0, err
	}
	var end uint64
	for _, r := range runs {
		end = max(end, r.Vaddr+r.NrPages*x86.PageSize)
	}
	return end, nil
}

// CopyShmem reads the dumped content of shared memory object ino from its
// pages image and calls put with each piece, at most shmemChunk bytes,
// and its offset in the object; what the image leaves out is zeros. The
// pieces share one buffer: put must not keep b. A pages image shorter
// than its pagemap says is an error naming it, before put sees the
// missing bytes.
func (d *Dump) CopyShmem(ino uint64, put func(b []byte, off uint64) error) error {
	id, runs, err := d.shmemRuns(ino)
	if err != nil || len(runs) == 0 {
		return err
	}
	pf, err := d.Dir.OpenPages(id)
	if err != nil {
		return err
	}
	defer pf.Close()
	var want int64
	for _, r := range runs {
		want = max(want, r.Off+int64(r.NrPages*x86.PageSize))
	}
	if err := d.checkPagesSize(id, image.ShmemPagemapName(ino), want); err != nil {
		return err
	}
	buf := make([]byte, shmemChunk)
	for i := 0; i < len(runs); {
		// Runs next to each other, in the object and in the image, are
		// read as one.
		r := runs[i]
		n := r.NrPages * x86.PageSize
		for i++; i < len(runs) && runs[i].Vaddr == r.Vaddr+n && runs[i].Off == r.Off+int64(n); i++ {
			n += runs[i].NrPages * x86.PageSize
		}
		for done := uint64(0); done < n; {
			b := buf[:min(uint64(len(buf)), n-done)]
			if err := image.ReadFullAt(pf, b, r.Off+int64(done)); err != nil {
				return fmt.Errorf("shared memory %d (%s): %w", ino, image.ShmemPagemapName(ino), err)
			}
			if err := put(b, r.Vaddr+done); err != nil {
				return err
			}
			done += uint64(len(b))
		}
	}
	return nil
}

// ShmemContent reads the first size bytes of the dumped content of
// shared memory object ino, whole (what the image leaves out is zeros;
// bytes past size are dropped); for small objects, SysV segments of a
// CRIU dump: shared anonymous memory and memfds are copied by CopyShmem.
// size bounds what a corrupt pagemap can make it allocate.
func (d *Dump) ShmemContent(ino, size uint64) ([]byte, error) {
	data := make([]byte, size)
	err := d.CopyShmem(ino, func(b []byte, off uint64) error {
		if off < size {
			copy(data[off:], b)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return data, nil
}
