//go:build linux && amd64

package model

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/pagemap"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/image"
)

// shmemRun is a pagemap entry as the tests want it: offset, pages.
type shmemRun struct{ off, pages uint64 }

func runsOf(pm []*pagemap.PagemapEntry) []shmemRun {
	var out []shmemRun
	for _, e := range pm {
		if e.GetNrPages() != uint64(e.GetCompatNrPages()) || e.GetFlags() != image.PEPresent {
			return append(out, shmemRun{^uint64(0), 0}) // never wanted
		}
		out = append(out, shmemRun{e.GetVaddr(), e.GetNrPages()})
	}
	return out
}

func equalRuns(a, b []shmemRun) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// shmemObject makes a memfd (a shmem file, as shared anonymous memory
// is) of 3 chunks and 100 bytes, with holes, pages written with zeros,
// runs across a chunk boundary and a partial last page; it returns it and
// its content, padded to whole pages.
func shmemObject(t *testing.T) (*os.File, []byte, []shmemRun) {
	t.Helper()
	fd, err := unix.MemfdCreate("shmem-test", unix.MFD_CLOEXEC)
	if err != nil {
		t.Skipf("memfd_create: %v", err)
	}
	f := os.NewFile(uintptr(fd), "memfd:shmem-test")
	t.Cleanup(func() { f.Close() })
	size := int64(3*shmemChunk + 100)
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	content := make([]byte, (size+page-1)&^(page-1))
	put := func(pg int64, n int64, b byte) {
		for i := pg; i < pg+n; i++ {
			p := bytes.Repeat([]byte{b}, page)
			p[i%page] = byte(i) // pages differ
			if b == 0 {
				p = make([]byte, page) // written, but zeros
			}
			copy(content[i*page:], p)
			if _, err := f.WriteAt(p, i*page); err != nil {
				t.Fatal(err)
			}
		}
	}
	cp := int64(shmemChunk / page) // pages in a chunk
	put(0, 4, 1)                   // 0-3
	put(4, 2, 0)                   // 4-5 allocated zeros: left out
	put(6, 1, 2)                   // 6
	put(cp-3, 7, 3)                // across the first chunk boundary
	put(2*cp+10, 1, 4)             // alone after a long hole
	last := size / page            // the partial last page
	tail := []byte("the last partial page")
	copy(content[last*page:], tail)
	if _, err := f.WriteAt(tail, last*page); err != nil {
		t.Fatal(err)
	}
	want := []shmemRun{{0, 4}, {6 * page, 1}, {uint64(cp-3) * page, 7}, {uint64(2*cp+10) * page, 1}, {uint64(last) * page, 1}}
	return f, content, want
}

// SaveShmem copies an object by runs of pages, leaving out holes and zero
// pages; CopyShmem and ShmemContent give its content back.
func TestSaveShmemRuns(t *testing.T) {
	dir := t.TempDir()
	f, content, want := shmemObject(t)
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	// The holes are not read: SEEK_DATA and SEEK_HOLE find them.
	var read int64
	fileExtents(f, fi.Size())(func(e extent) bool { read += e.end - e.start; return true })
	if read == 0 || read > 2*shmemChunk {
		t.Errorf("extents hold %d of %d bytes: the holes are read", read, fi.Size())
	}
	d := &Dump{Dir: image.Dir{Path: dir}, ShmemPagesBase: 2, ShmemWriteback: true}
	if err := d.SaveShmem(42, f, fi.Size()); err != nil {
		t.Fatal(err)
	}
	if len(d.Shmem) != 1 || d.Shmem[0].PagesID != 3 || d.Shmem[0].Data != nil {
		t.Fatalf("Shmem %+v", d.Shmem)
	}
	if got := runsOf(d.Shmem[0].Pagemap); !equalRuns(got, want) {
		t.Errorf("pagemap %v, want %v", got, want)
	}
	var pages uint64
	for _, r := range want {
		pages += r.pages
	}
	pi, err := os.Stat(filepath.Join(dir, image.PagesName(3)))
	if err != nil || pi.Size() != int64(pages*page) {
		t.Fatalf("pages image: %v, %v; want %d pages", pi, err, pages)
	}
	// Write with the two processes the dump was made for.
	d.Procs = make([]*Process, 2)
	if err := d.writeShmem(d.Shmem[0], 0); err != nil {
		t.Fatal(err)
	}
	// A dump of another number of processes would name another image.
	d.Procs = d.Procs[:1]
	if err := d.writeShmem(d.Shmem[0], 0); err == nil {
		t.Error("writeShmem with the wrong pages id: no error")
	}
	r := &Dump{Dir: image.Dir{Path: dir}}
	end, err := r.ShmemEnd(42)
	if err != nil || end != uint64(len(content)) {
		t.Errorf("ShmemEnd %d, %v; want %d", end, err, len(content))
	}
	got := make([]byte, len(content))
	calls := 0
	err = r.CopyShmem(42, func(b []byte, off uint64) error {
		if len(b) > shmemChunk || len(b)%page != 0 {
			t.Errorf("piece of %d bytes", len(b))
		}
		calls++
		copy(got[off:], b)
		return nil
	})
	if err != nil || !bytes.Equal(got, content) {
		t.Errorf("CopyShmem: %v, content equal %v", err, bytes.Equal(got, content))
	}
	// The image holds the pages of the runs back to back: the first
	// three runs are apart in the object, so at least one piece each.
	if calls < len(want) {
		t.Errorf("CopyShmem: %d pieces", calls)
	}
	whole, err := r.ShmemContent(42, uint64(len(content)))
	if err != nil || !bytes.Equal(whole, content) {
		t.Errorf("ShmemContent: %d bytes, %v", len(whole), err)
	}
}

// Shmem.Data (written by Write) gives the same runs as SaveShmem.
func TestWriteShmemData(t *testing.T) {
	dir := t.TempDir()
	_, content, want := shmemObject(t)
	d := &Dump{Dir: image.Dir{Path: dir}, Shmem: []Shmem{{Ino: 7, Data: content}}}
	if err := d.writeShmem(d.Shmem[0], 0); err != nil {
		t.Fatal(err)
	}
	id, pm, err := d.readPagemap(image.ShmemPagemapName(7))
	if err != nil || id != 1 {
		t.Fatalf("pagemap: id %d, %v", id, err)
	}
	if got := runsOf(pm); !equalRuns(got, want) {
		t.Errorf("pagemap %v, want %v", got, want)
	}
	got, err := d.ShmemContent(7, uint64(len(content)))
	if err != nil || !bytes.Equal(got, content) {
		t.Errorf("ShmemContent: %d bytes, %v", len(got), err)
	}
	// An object of zeros: a pagemap with no entry, an empty content.
	if err := d.writeShmem(Shmem{Ino: 8, Data: make([]byte, 3*page)}, 1); err != nil {
		t.Fatal(err)
	}
	if end, err := d.ShmemEnd(8); err != nil || end != 0 {
		t.Errorf("zeros: ShmemEnd %d, %v", end, err)
	}
	if err := d.CopyShmem(8, func([]byte, uint64) error { t.Error("put called"); return nil }); err != nil {
		t.Error(err)
	}
}

// writePagemap writes pagemap-shmem-INO.img with the given entries, as a
// CRIU dump may have them (one page each, in any order).
func writePagemap(t *testing.T, d *Dump, ino uint64, id uint32, ents ...*pagemap.PagemapEntry) {
	t.Helper()
	msgs := []proto.Message{&pagemap.PagemapHead{PagesId: proto.Uint32(id)}}
	for _, e := range ents {
		msgs = append(msgs, e)
	}
	if err := d.Dir.Write(image.ShmemPagemapName(ino), image.MagicPagemap, msgs...); err != nil {
		t.Fatal(err)
	}
}

func pmEntry(off, n uint64) *pagemap.PagemapEntry {
	return &pagemap.PagemapEntry{Vaddr: proto.Uint64(off), CompatNrPages: proto.Uint32(uint32(n)), Flags: proto.Uint32(image.PEPresent)}
}

// A pagemap of one entry per page, out of order (CRIU writes whatever
// its page pipes hold), reads back right.
func TestCopyShmemPerPage(t *testing.T) {
	dir := t.TempDir()
	d := &Dump{Dir: image.Dir{Path: dir}}
	var pages []byte
	for _, b := range []byte{1, 2, 3} {
		pages = append(pages, bytes.Repeat([]byte{b}, page)...)
	}
	if err := os.WriteFile(filepath.Join(dir, image.PagesName(5)), pages, 0o600); err != nil {
		t.Fatal(err)
	}
	// Pages 1 and 2 of the object, then page 0 (compat_nr_pages only).
	writePagemap(t, d, 9, 5, pmEntry(page, 1), pmEntry(2*page, 1), pmEntry(0, 1))
	got, err := d.ShmemContent(9, 3*page)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3*page || got[0] != 3 || got[page] != 1 || got[2*page] != 2 {
		t.Errorf("content %d bytes: %d %d %d", len(got), got[0], got[page], got[2*page])
	}
	// Bytes past the size asked for are dropped.
	if got, err := d.ShmemContent(9, page+1); err != nil || len(got) != page+1 || got[page] != 1 {
		t.Errorf("first page and a byte: %d bytes, %v", len(got), err)
	}
}

// A pages image cut short, or a pagemap entry out of range, is an error
// naming the image, before any byte is given; never a panic.
func TestCopyShmemCorrupt(t *testing.T) {
	dir := t.TempDir()
	d := &Dump{Dir: image.Dir{Path: dir}}
	if err := os.WriteFile(filepath.Join(dir, image.PagesName(5)), make([]byte, 3*page-1), 0o600); err != nil {
		t.Fatal(err)
	}
	noPut := func([]byte, uint64) error { t.Error("put called"); return nil }
	writePagemap(t, d, 9, 5, pmEntry(0, 3))
	err := d.CopyShmem(9, noPut)
	if err == nil || !errors.Is(err, image.ErrCorrupt) || !strings.Contains(err.Error(), image.PagesName(5)) {
		t.Errorf("pages image cut short: %v", err)
	}
	for _, e := range []*pagemap.PagemapEntry{
		pmEntry(1<<40, 1),      // past the bound
		pmEntry(100, 1),        // not at a page
		pmEntry(0, 1<<32-1),    // too many pages
		pmEntry(1<<40-page, 2), // ends past the bound
	} {
		writePagemap(t, d, 10, 5, e)
		err := d.CopyShmem(10, noPut)
		if err == nil || !errors.Is(err, image.ErrCorrupt) || !strings.Contains(err.Error(), image.ShmemPagemapName(10)) {
			t.Errorf("entry %v: %v", e, err)
		}
		if _, err := d.ShmemContent(10, page); err == nil {
			t.Errorf("entry %v: ShmemContent: no error", e)
		}
	}
	// The pages image missing.
	writePagemap(t, d, 11, 6, pmEntry(0, 1))
	if err := d.CopyShmem(11, noPut); err == nil || !strings.Contains(err.Error(), image.PagesName(6)) {
		t.Errorf("pages image missing: %v", err)
	}
	// The pagemap missing.
	if err := d.CopyShmem(12, noPut); err == nil || !strings.Contains(err.Error(), image.ShmemPagemapName(12)) {
		t.Errorf("pagemap missing: %v", err)
	}
}
