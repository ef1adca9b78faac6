//go:build linux && amd64

package dump

import (
	"fmt"
	"os"

	vmaimg "github.com/checkpoint-restore/go-criu/v8/crit/images/vma"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/image"
	"github.com/ckpt/ckpt/internal/kinds/ns"
	"github.com/ckpt/ckpt/internal/kinds/vma"
	"github.com/ckpt/ckpt/internal/model"
	"github.com/ckpt/ckpt/internal/procfs"
	"github.com/ckpt/ckpt/internal/ptrace"
)

// saveShmem copies, once per object, the content of the shmem object
// behind a MAP_SHARED|MAP_ANONYMOUS mapping (pages other processes
// touched included), read through /proc/PID/map_files, to its pages
// image: now, while the tree is frozen (snapshot.go), in chunks
// (model.SaveShmem), never held whole.
func (ft *fileTable) saveShmem(pid int, v procfs.VMA) error {
	if ft.shmemSeen[v.Inode] {
		return nil
	}
	ft.shmemSeen[v.Inode] = true
	f, err := os.Open(fmt.Sprintf("/proc/%d/map_files/%x-%x", pid, v.Start, v.End))
	if err != nil {
		return fmt.Errorf("open shared memory: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	return ft.d.SaveShmem(v.Inode, f, fi.Size())
}

// fileOpenFlags are the open flags a restore maps a file area's file
// with: O_RDWR for a shared area that is writable or may be made so
// ("mw", VM_MAYWRITE: the file was opened for writing, and the task may
// mprotect it writable later), else O_RDONLY.
func fileOpenFlags(se procfs.SmapsEntry) uint32 {
	if se.VMA.Shared && (se.VMA.Write || se.HasFlag("mw")) {
		return unix.O_RDWR
	}
	return unix.O_RDONLY
}

// vmaProt converts maps permissions to PROT_* bits.
func vmaProt(v procfs.VMA) uint32 {
	var p uint32
	if v.Read {
		p |= unix.PROT_READ
	}
	if v.Write {
		p |= unix.PROT_WRITE
	}
	if v.Exec {
		p |= unix.PROT_EXEC
	}
	return p
}

// dumpMemory classifies every VMA, writes the pages that hold data to the
// process's pages image, sets its pagemap and returns the vma entries for
// its mm image.
func (t *task) dumpMemory(p *model.Process, vmas []procfs.SmapsEntry, ft *fileTable, stats *Stats) ([]*vmaimg.VmaEntry, error) {
	defer since(&stats.MemDump)()
	pid := t.pid
	// Pre-copy: what was written since the previous dump (track.go).
	trk, err := t.trackWrites(vmas)
	if err != nil {
		return nil, err
	}
	pmf, err := procfs.OpenPagemap(pid)
	if err != nil {
		return nil, err
	}
	defer pmf.Close()
	mem, err := ptrace.OpenMem(pid)
	if err != nil {
		return nil, fmt.Errorf("open memory: %w", err)
	}
	defer mem.Close()
	pages, err := model.CreatePages(ft.d.Dir, uint32(t.index))
	if err != nil {
		return nil, err
	}
	handedOver := false // to a snapshot copy, which closes it
	defer func() {
		if !handedOver {
			pages.Close()
		}
	}()
	// Injected calls (the fast page copy, pagecopy.go) run from code
	// written over the first bytes of this page; its run is read first,
	// while it still holds the task's own bytes.
	code, err := scratchCodeAddr(vmas)
	if err != nil {
		code = 0
	}
	codePage := code &^ (x86.PageSize - 1)

	var out []*vmaimg.VmaEntry
	var areas []*scanArea
	rings := map[procfs.VMA]uint32{} // AIO rings and their tails
	for _, se := range vmas {
		v := se.VMA
		kind, err := vma.Classify(pid, t.opts.withoutTracking(pid, se))
		if err != nil {
			return nil, err
		}
		if kind.Class == vma.Skip {
			continue
		}
		e := &vmaimg.VmaEntry{
			Start: proto.Uint64(v.Start), End: proto.Uint64(v.End),
			Pgoff: proto.Uint64(v.Offset), Shmid: proto.Uint64(0),
			Prot: proto.Uint32(vmaProt(v)), Fd: proto.Int64(-1),
		}
		var flags, status uint32
		status = image.VMAAreaRegular
		switch {
		case v.Shared:
			flags = unix.MAP_SHARED
		case se.HasFlag("dp"):
			// MAP_DROPPABLE is a mapping type of its own (Linux 6.11).
			flags = unix.MAP_DROPPABLE
		default:
			flags = unix.MAP_PRIVATE
		}
		if se.HasFlag("gd") {
			flags |= unix.MAP_GROWSDOWN
		}
		if se.HasFlag("nr") {
			flags |= unix.MAP_NORESERVE
		}
		// Locked by mlock, mlockall(MCL_CURRENT) or MAP_LOCKED: VM_LOCKED,
		// restored as MAP_LOCKED (as CRIU keeps it).
		if se.HasFlag("lo") {
			flags |= unix.MAP_LOCKED
		}
		dumpPages, anonOnly, wholeVMA := false, false, false
		// Areas a fork does not copy into its child as they are
		// (MADV_DONTFORK: left out; MADV_WIPEONFORK, MAP_DROPPABLE
		// too: empty there) are read while the tree is frozen, never
		// from a snapshot (snapshot.go).
		// So are hugetlb areas: a private one's pages may be taken
		// from a child when the parent copies on write and the pool
		// is empty (unmap_ref_private, mm/hugetlb.c). (AIO rings are
		// saved whole, as the vDSO, and read while frozen too.)
		frozenOnly := se.HasFlag("dc") || se.HasFlag("wf") || kind.Class == vma.Hugetlb
		switch kind.Class {
		case vma.VDSO:
			// VMA_ANON_PRIVATE too, as CRIU writes it (CRIU restores
			// pages only into private VMAs).
			status |= image.VMAAreaVDSO | image.VMAAnonPrivate
			flags |= unix.MAP_ANONYMOUS
			// Saved whole: a restore on another kernel reads the dumped
			// vDSO's symbols from it to build trampolines.
			dumpPages, wholeVMA = true, true
		case vma.VVAR:
			status |= image.VMAAreaVVAR | image.VMAAnonPrivate
			flags |= unix.MAP_ANONYMOUS
		case vma.AnonShared:
			// A shmem object, maybe shared with other processes of the
			// tree; its content is saved once.
			flags |= unix.MAP_ANONYMOUS
			status |= image.VMAAnonShared
			e.Shmid = proto.Uint64(v.Inode)
			if err := ft.saveShmem(pid, v); err != nil {
				return nil, fmt.Errorf("vma %#x-%#x: %w", v.Start, v.End, err)
			}
		case vma.Hugetlb:
			// Anonymous hugetlb memory, as CRIU writes it: an anonymous
			// area whose flags carry MAP_HUGETLB and the page size.
			hf, err := vma.HugetlbFlags(pid, se)
			if err != nil {
				return nil, err
			}
			flags |= unix.MAP_ANONYMOUS | hf
			if v.Shared {
				status |= image.VMAAnonShared
				e.Shmid = proto.Uint64(v.Inode)
				if err := ft.saveShmem(pid, v); err != nil {
					return nil, fmt.Errorf("vma %#x-%#x: %w", v.Start, v.End, err)
				}
			} else {
				status |= image.VMAAnonPrivate
				dumpPages = true
			}
		case vma.AIORing:
			// CRIU's record: the area marked as a ring alone, its pages
			// (header and events) saved whole, and an aio_ring_entry.
			hdr, err := vma.ReadAIORing(pid, v)
			if err != nil {
				return nil, err
			}
			if err := t.aioRingOwned(v, code); err != nil {
				return nil, err
			}
			rings[v] = hdr.Tail
			status = image.VMAAreaAIORing
			p.MM.Aios = append(p.MM.Aios, vma.AIORingEntry(v))
			dumpPages, wholeVMA = true, true
		case vma.AnonPrivate:
			flags |= unix.MAP_ANONYMOUS
			status |= image.VMAAnonPrivate
			if v.Path == "[heap]" {
				status |= image.VMAAreaHeap
			}
			if v.Path == "[stack]" {
				status |= image.VMAAreaStack
			}
			dumpPages = true
		case vma.File, vma.Memfd:
			var id uint32
			if kind.Class == vma.File {
				st, err := mappedFileStat(pid, v, t.opts.GhostLimit, t.opts.LinkRemap)
				if err != nil {
					return nil, err
				}
				if id, err = ft.mapped(pid, v, fileOpenFlags(se), st, t.opts.LinkRemap); err != nil {
					return nil, err
				}
			} else {
				status |= image.VMAAreaMemfd
				if id, err = ft.mappedMemfd(pid, v, fileOpenFlags(se)); err != nil {
					return nil, err
				}
			}
			if v.Shared {
				status |= image.VMAFileShared
			} else {
				status |= image.VMAFilePrivate
				dumpPages, anonOnly = true, true
			}
			e.Shmid = proto.Uint64(uint64(id))
			e.Fdflags = proto.Uint32(fileOpenFlags(se))
		case vma.SysVShm:
			// Saved with its IPC namespace (package ns); attached again
			// at restore.
			if err := ns.CheckShmAttach(pid, v); err != nil {
				return nil, err
			}
			// As CRIU marks it (criu/proc_parse.c): shared anonymous
			// memory too, which CRIU needs to attach it again.
			status |= image.VMAAreaSysVIPC | image.VMAAnonShared
			flags |= unix.MAP_ANONYMOUS
			e.Shmid = proto.Uint64(v.Inode)
		default:
			return nil, fmt.Errorf("vma %#x-%#x: kind %s has no dump", v.Start, v.End, kind.Name)
		}
		e.Flags = proto.Uint32(flags)
		e.Status = proto.Uint32(status)
		if madv := madvBits(se); madv != 0 {
			e.Madv = proto.Uint64(madv)
		}
		out = append(out, e)
		if !dumpPages {
			continue
		}
		// The vDSO is read while frozen too: the injected code is
		// written over its first bytes, in a snapshot as well.
		a := &scanArea{v: v, anonOnly: anonOnly, wholeVMA: wholeVMA,
			frozen: frozenOnly || wholeVMA, anon: se.Anonymous}
		if trk != nil && kind.Class == vma.AnonPrivate {
			a.clean = trk.clean
		}
		areas = append(areas, a)
	}
	l := &laterPages{p: p, pages: pages, areas: areas, code: code, codePage: codePage}
	if code != 0 {
		// Read now: later injections write over it, in the task and
		// in a snapshot.
		l.codeData = make([]byte, x86.PageSize)
		if err := mem.ReadAt(l.codeData, codePage); err != nil {
			return nil, fmt.Errorf("dump memory: page %#x: %w", codePage, err)
		}
	}
	if t.opts.snapshotWanted(areas) {
		// The pages are read from a snapshot once the tree is
		// released; what a snapshot does not hold is read now.
		for _, a := range areas {
			if a.frozen {
				if err := l.scan(a, pmf, stats); err != nil {
					return nil, err
				}
				if err := readFrozen(a.runs, mem); err != nil {
					return nil, fmt.Errorf("dump memory: %w", err)
				}
			}
		}
		if err := aioRingsSettled(pid, mem, rings); err != nil {
			return nil, err
		}
		t.later = l
		handedOver = true
		return out, nil
	}
	runs, err := l.assemble(pmf, stats)
	if err != nil {
		return nil, err
	}
	f, err := t.pagesSink(pages, runs)
	if err != nil {
		return nil, err
	}
	defer t.startCopy(f, runs, stats)()
	copyRuns := func() error { return t.copyRuns(runs, code, mem, f, stats) }
	if trk != nil && sparseRuns(runs) {
		// The pages written since the previous dump (track.go).
		copyRuns = func() error { return t.copySparse(runs, mem, f) }
	}
	if err := copyRuns(); err != nil {
		return nil, fmt.Errorf("dump memory: %w", err)
	}
	if err := aioRingsSettled(pid, mem, rings); err != nil {
		return nil, err
	}
	if p.PagesID, p.Pagemap, err = pages.Finish(); err != nil {
		return nil, err
	}

	return out, nil
}

// vmFlagAdvice maps VmFlags tokens of smaps (fs/proc/task_mmu.c) to the
// madvise(2) advice that sets them; vma_entry.madv is a bitmap of
// 1<<advice.
var vmFlagAdvice = map[string]int{
	"sr": unix.MADV_SEQUENTIAL,
	"rr": unix.MADV_RANDOM,
	"dc": unix.MADV_DONTFORK,
	"mg": unix.MADV_MERGEABLE,
	"hg": unix.MADV_HUGEPAGE,
	"nh": unix.MADV_NOHUGEPAGE,
	"dd": unix.MADV_DONTDUMP,
	"wf": unix.MADV_WIPEONFORK,
}

func madvBits(se procfs.SmapsEntry) uint64 {
	var m uint64
	for tok, adv := range vmFlagAdvice {
		if se.HasFlag(tok) {
			m |= 1 << uint(adv)
		}
	}
	return m
}

// appendRun appends r unless it is empty.
func appendRun(runs []pageRun, r pageRun) []pageRun {
	if r.size == 0 {
		return runs
	}
	return append(runs, r)
}

// scanArea is a mapping whose pages the dump saves: which of them is
// found in the pagemap of the task, or of its snapshot (snapshot.go),
// which has the same pages but for the areas marked frozen.
type scanArea struct {
	v procfs.VMA
	// anonOnly: a private file mapping, whose pages copied on write
	// only are saved; wholeVMA: every page (the vDSO); frozen: read
	// while the tree is frozen, never from a snapshot.
	anonOnly, wholeVMA, frozen bool
	anon                       uint64 // smaps' Anonymous: an estimate of what is saved
	scanned                    bool
	runs                       []pageRun
	entries                    [][3]uint64 // pagemap entries: first page, number of pages, 1 if in the parent
	// clean are pages a pre-copy dump leaves in the parent dump
	// (track.go), sorted; nil for none.
	clean []model.PageRange
}

// scan finds the pages of a to save in the pagemap pmf: present (or
// swapped) and not the zero page, for a private file mapping only those
// copied on write.
func (l *laterPages) scan(a *scanArea, pmf *os.File, stats *Stats) error {
	v := a.v
	pm, err := procfs.PagemapEntries(pmf, v.Start, v.End)
	if err != nil {
		return fmt.Errorf("vma %#x-%#x: %w", v.Start, v.End, err)
	}
	stats.PagesScanned += uint64(len(pm))
	zp := zeroPages()
	keep := func(p procfs.PagemapEntry) bool {
		if a.wholeVMA || p.Swapped() && !pteMarker(p) {
			return true
		}
		if !p.Present() {
			return false
		}
		if zp.is(p.PFN()) {
			return false
		}
		// In a private file mapping only pages copied on write hold
		// data of the task's own; the rest comes from the file.
		return !a.anonOnly || !p.FileOrShared()
	}
	for _, p := range pm {
		if !a.wholeVMA && p.Present() && zp.is(p.PFN()) {
			stats.ZeroPages++
		}
	}
	// The vDSO is a special mapping; what the task cannot read it
	// cannot vmsplice: both are read through /proc/PID/mem.
	viaMem := a.wholeVMA || !v.Read
	for i := 0; i < len(pm); {
		if !keep(pm[i]) {
			i++
			continue
		}
		j := i
		for j < len(pm) && keep(pm[j]) {
			j++
		}
		first := v.Start + uint64(i)*x86.PageSize
		splitClean(a.clean, first, uint64(j-i), l.codePage, func(start, n uint64, inParent bool) {
			if inParent {
				a.entries = append(a.entries, [3]uint64{start, n, 1})
				stats.PagesInParent += n
				return
			}
			l.keepRun(a, start, n, viaMem, stats)
		})
		i = j
	}
	a.scanned = true
	return nil
}

// keepRun records that the n pages from start of a go into the pages
// image, and the runs they are copied in.
func (l *laterPages) keepRun(a *scanArea, start, n uint64, viaMem bool, stats *Stats) {
	a.entries = append(a.entries, [3]uint64{start, n, 0})
	stats.PagesWritten += n
	end := start + n*x86.PageSize
	if cp := l.codePage; l.code != 0 && start <= cp && cp < end {
		a.runs = appendRun(a.runs, pageRun{addr: start, size: cp - start, viaMem: viaMem, frozen: a.frozen})
		a.runs = append(a.runs, pageRun{addr: cp, size: x86.PageSize, data: l.codeData})
		a.runs = appendRun(a.runs, pageRun{addr: cp + x86.PageSize, size: end - cp - x86.PageSize, viaMem: viaMem, frozen: a.frozen})
	} else {
		a.runs = append(a.runs, pageRun{addr: start, size: end - start, viaMem: viaMem, frozen: a.frozen})
	}
}

// assemble scans, in pmf, the areas not scanned yet, records the pagemap
// of all of them in order in the pages image's writer and returns their
// runs, in the same order.
func (l *laterPages) assemble(pmf *os.File, stats *Stats) ([]pageRun, error) {
	var runs []pageRun
	for _, a := range l.areas {
		if !a.scanned {
			if err := l.scan(a, pmf, stats); err != nil {
				return nil, err
			}
		}
		for _, e := range a.entries {
			if e[2] == 1 {
				l.pages.AddParent(e[0], e[1])
				continue
			}
			l.pages.Add(e[0], e[1])
		}
		runs = append(runs, a.runs...)
	}
	return runs, nil
}
