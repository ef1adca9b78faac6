//go:build linux && amd64

package restore

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/image"
	"github.com/ckpt/ckpt/internal/model"
)

// mapVMAs maps every dumped VMA except the vDSO ones at its address.
func (r *restorer) mapVMAs() error {
	s := span{r.scratch, r.scratch + scratchPages*x86.PageSize}
	for _, v := range r.im.MM.GetVmas() {
		st := v.GetStatus()
		if st&(image.VMAAreaVDSO|image.VMAAreaVVAR) != 0 {
			continue
		}
		start, end := v.GetStart(), v.GetEnd()
		if overlaps(span{start, end}, s) {
			return fmt.Errorf("vma %#x-%#x overlaps the scratch area", start, end)
		}
		if inSpans(span{start, end}, r.keep) {
			continue // inherited from the parent as it is (cow.go)
		}
		if st&image.VMAAreaSysVIPC != 0 {
			if err := r.attachShm(v); err != nil {
				return err
			}
			continue
		}
		flags := uint64(v.GetFlags()) | unix.MAP_FIXED
		fd := ^uint64(0)
		created := uint64(0)
		var aside span // a shared memory object made whole elsewhere
		var err error
		var path string
		if st&(image.VMAFilePrivate|image.VMAFileShared) != 0 {
			// The file's path, or an unlinked file or memfd made again.
			path, err = r.kinds.MappedPath(r.im.Tree, uint32(v.GetShmid()))
			if err != nil {
				return fmt.Errorf("vma %#x-%#x: %w", start, end, err)
			}
			p, err := r.putString(0, path)
			if err != nil {
				return err
			}
			oflags := uint64(v.GetFdflags()) | unix.O_CLOEXEC
			got, err := r.inj.Syscall(x86.SysOpenat, atFdcwd, p, oflags, 0)
			if err != nil {
				return fmt.Errorf("vma %#x-%#x: open %s: %w", start, end, path, err)
			}
			fd = got
		} else if st&image.VMAAnonShared != 0 {
			ino := v.GetShmid()
			_, ok := r.shmem[ino]
			if !ok && v.GetPgoff() != 0 && isHugetlb(v) {
				return fmt.Errorf("vma %#x-%#x: shared hugetlb memory mapped from offset %#x without its start: not supported", start, end, v.GetPgoff())
			}
			if !ok && v.GetPgoff() != 0 {
				// The object's first page is not mapped here (the task
				// unmapped it, or moved this part): make the object
				// whole at a place of its own, then map this part of it
				// as another process of the tree would.
				if aside, err = r.shmemAside(ino, v.GetPgoff()+end-start); err != nil {
					return fmt.Errorf("vma %#x-%#x: %w", start, end, err)
				}
				ok = true
			}
			if path, ok2 := r.shmem[ino]; ok && ok2 {
				// Another process of the tree has the object already.
				p, err := r.putString(0, path)
				if err != nil {
					return err
				}
				got, err := r.inj.Syscall(x86.SysOpenat, atFdcwd, p, unix.O_RDWR|unix.O_CLOEXEC, 0)
				if err != nil {
					return fmt.Errorf("vma %#x-%#x: open shared memory %s: %w", start, end, path, err)
				}
				fd = got
				flags &^= unix.MAP_ANONYMOUS
			} else {
				created = ino
			}
		} else if st&image.VMAAreaAIORing != 0 {
			// A placeholder for the dumped ring, replaced by a new
			// ring once the pages are in (hugeaio.go).
			flags = unix.MAP_PRIVATE | unix.MAP_ANONYMOUS | unix.MAP_FIXED
		} else if st&image.VMAAnonPrivate == 0 {
			return fmt.Errorf("vma %#x-%#x: status %#x is not supported", start, end, st)
		}
		if isHugetlb(v) {
			if err := checkHugetlb(v); err != nil {
				return err
			}
		}
		got, err := r.inj.Syscall(x86.SysMmap, start, end-start, mapProt(v), flags, fd, v.GetPgoff())
		if err != nil && isHugetlb(v) {
			err = hugetlbMapError(v, err)
		}
		if fd != ^uint64(0) {
			if _, cerr := r.inj.Syscall(x86.SysClose, fd); cerr != nil && err == nil {
				err = cerr
			}
		}
		if aside.end != 0 {
			if _, uerr := r.inj.Syscall(x86.SysMunmap, aside.start, aside.end-aside.start); uerr != nil && err == nil {
				err = fmt.Errorf("unmap shared memory set aside: %w", uerr)
			}
		}
		if err != nil && flags&unix.MAP_LOCKED != 0 && (errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EPERM) || errors.Is(err, unix.ENOMEM)) {
			return fmt.Errorf("mmap vma %#x-%#x %s locked (MAP_LOCKED): locking %d bytes needs CAP_IPC_LOCK or room under RLIMIT_MEMLOCK: %w", start, end, path, end-start, err)
		}
		if err != nil {
			return fmt.Errorf("mmap vma %#x-%#x %s: %w", start, end, path, err)
		}
		if got != start {
			return fmt.Errorf("vma %#x-%#x mapped at %#x", start, end, got)
		}
		if created != 0 {
			fill := func() error { return r.fillShmem(created, start, end) }
			if isHugetlb(v) {
				fill = func() error { return r.fillHugeShmem(created, v) }
			}
			if err := fill(); err != nil {
				return fmt.Errorf("vma %#x-%#x: %w", start, end, err)
			}
		} else if st&image.VMAAnonShared != 0 {
			// Others find the object here from now on (a range set
			// aside goes away).
			r.shmem[v.GetShmid()] = fmt.Sprintf("/proc/%d/map_files/%x-%x", r.pid, start, end)
		}
		for adv := 0; adv < 64; adv++ {
			if v.GetMadv()&(1<<uint(adv)) == 0 {
				continue
			}
			if _, err := r.inj.Syscall(x86.SysMadvise, start, end-start, uint64(adv)); err != nil {
				return fmt.Errorf("madvise(%#x-%#x, %d): %w", start, end, adv, err)
			}
		}
	}
	return nil
}

// atFdcwd is AT_FDCWD as a syscall argument.
var atFdcwd = ^uint64(99) // -100

// copyBufs holds the 4 MiB buffers through which fillPages copies the
// pages the task does not read itself.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 4<<20); return &b }}

func getCopyBuf() []byte { return *copyBufs.Get().(*[]byte) }

func putCopyBuf(b []byte) {
	if b != nil {
		copyBufs.Put(&b)
	}
}

// fillPages copies the dumped pages into the task.
func (r *restorer) fillPages() error {
	pf, err := r.im.OpenPages()
	if err != nil {
		return err
	}
	defer pf.Close()
	mem, err := r.memory()
	if err != nil {
		return err
	}
	var vmas, vdsoRanges []span
	for _, v := range r.im.MM.GetVmas() {
		switch st := v.GetStatus(); {
		case st&image.VMAAreaVDSO != 0:
			vdsoRanges = append(vdsoRanges, span{v.GetStart(), v.GetEnd()})
		case st&image.VMAAreaVVAR == 0:
			vmas = append(vmas, span{v.GetStart(), v.GetEnd()})
		}
	}
	// A run of pages may span adjacent VMAs (CRIU's pagemap does):
	// every byte of it must lie in one VMA or another.
	inVMA := func(s span) bool { return spansCover(s, vmas) }
	// The copy buffers come from a pool, taken only when a run is not
	// read by the task itself: a tree of a thousand small processes
	// would otherwise allocate and clear megabytes per process.
	var buf, pbuf []byte
	defer func() { putCopyBuf(buf); putCopyBuf(pbuf) }()
	// Pages in VMAs kept from the parent are written only where they
	// differ from the parent's (cow.go).
	pix, err := r.parentPages()
	if err != nil {
		return fmt.Errorf("parent %d: %w", r.parent.pid, err)
	}
	defer pix.close()
	// The task reads what it can of the image itself (pagefill.go).
	fill := r.newPageFiller(pf)
	var own []span
	var shared, total uint64
	// One run of pages at off in the pages image pf; runs left in the
	// parent dumps of a pre-copy chain come the same way from theirs
	// (parentpages.go).
	doRun := func(run model.PageRun, pf *os.File, fill *pageFiller) error {
		addr, n, off := run.Vaddr, run.NrPages, run.Off
		size := n * x86.PageSize
		if inSpans(span{addr, addr + size}, vdsoRanges) {
			// The vDSO image was used by mapVDSO, not written here.
			r.opts.Progress.Add(size)
			return nil
		}
		if n == 0 || n > 1<<36 || addr%x86.PageSize != 0 || !inVMA(span{addr, addr + size}) {
			return fmt.Errorf("%s: entry %d (%#x, %d pages) lies outside every vma", image.PagemapName(r.im.Pid), run.Index, addr, n)
		}
		if pix == nil || !overlapsAny(span{addr, addr + size}, r.keep) {
			if ok, err := fill.take(addr, size, off); ok || err != nil {
				return err
			}
		}
		if buf == nil {
			buf = getCopyBuf()
			if pix != nil {
				pbuf = getCopyBuf()
			}
		}
		for size > 0 {
			c := min(size, uint64(len(buf)))
			if pix != nil {
				// Up to the next edge of a kept VMA: all of a chunk is
				// kept or none is.
				c = min(c, keepEdge(addr, r.keep)-addr)
			}
			if err := image.ReadFullAt(pf, buf[:c], off); err != nil {
				return err
			}
			if pix != nil && inSpans(span{addr, addr + c}, r.keep) {
				own = append(own, span{addr, addr + c})
				n, err := r.writeInherited(pix, mem, buf[:c], addr, pbuf)
				if err != nil {
					return err
				}
				shared += c - n
				total += c
			} else if err := mem.WriteAt(buf[:c], addr); err != nil {
				return err
			}
			r.filled(c)
			off += int64(c)
			addr += c
			size -= c
		}
		return nil
	}
	// The pages left in parent dumps first: one read of a parent's may
	// cover pages of this dump's own, written over them next.
	err = r.fillFromParents(doRun)
	var end int64
	if err == nil {
		end, err = r.im.PageRuns(r.skipLazy(func(run model.PageRun) error { return doRun(run, pf, fill) }))
	}
	if err == nil {
		err = fill.flush()
	}
	if cerr := fill.close(); cerr != nil && err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if fi, err := pf.Stat(); err == nil && fi.Size() != end {
		return fmt.Errorf("%s: %d bytes, pagemap accounts for %d", pf.Name(), fi.Size(), end)
	}
	if pix != nil {
		if err := r.dropParentOnly(pix, own); err != nil {
			return err
		}
		r.cow(shared, total)
		r.opts.logf("restore %d: %d of %d bytes in memory kept from the parent stay shared with it", r.pid, shared, total)
	}
	return nil
}

// keepEdge returns the first start or end of a span of keep above addr
// (^0 for none).
func keepEdge(addr uint64, keep []span) uint64 {
	e := ^uint64(0)
	for _, k := range keep {
		if k.start > addr {
			e = min(e, k.start)
		}
		if k.end > addr {
			e = min(e, k.end)
		}
	}
	return e
}

// spansCover tells whether every byte of s lies in one of in, which are
// in address order and do not overlap (a task's VMAs).
func spansCover(s span, in []span) bool {
	at := s.start
	for _, v := range in {
		if v.start <= at && at < v.end {
			at = v.end
			if at >= s.end {
				return true
			}
		}
	}
	return false
}

func inSpans(s span, in []span) bool {
	for _, v := range in {
		if s.start >= v.start && s.end <= v.end {
			return true
		}
	}
	return false
}

// fillShmem writes the dumped content of shared memory object ino into the
// object just mapped at start-end, through /proc/PID/map_files (whatever
// the mapping's protection), a chunk at a time from the pages image
// (model.CopyShmem), and records where other processes find it.
func (r *restorer) fillShmem(ino uint64, start, end uint64) error {
	path := fmt.Sprintf("/proc/%d/map_files/%x-%x", r.pid, start, end)
	var f *os.File
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	err := r.im.Tree.CopyShmem(ino, func(b []byte, off uint64) error {
		if f == nil {
			var err error
			if f, err = os.OpenFile(path, os.O_RDWR, 0); err != nil {
				return fmt.Errorf("open shared memory: %w", err)
			}
		}
		if _, err := f.WriteAt(b, int64(off)); err != nil {
			return fmt.Errorf("fill shared memory at %#x: %w", off, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	r.shmem[ino] = path
	return nil
}

// shmemAside makes shared memory object ino at an address the kernel
// chooses, at least size bytes (the dumped object's size if larger),
// filled with its dumped content, and returns where; the caller unmaps it
// once the object is mapped where the task had it.
func (r *restorer) shmemAside(ino, size uint64) (span, error) {
	dumped, err := r.im.Tree.ShmemEnd(ino)
	if err != nil {
		return span{}, err
	}
	size = max(size, dumped)
	size = (size + x86.PageSize - 1) &^ (x86.PageSize - 1)
	// Where no dumped VMA of the tree lies: one mapped later with
	// MAP_FIXED would otherwise take pages of it, and unmapping it would
	// take pages of that VMA.
	addr, err := r.freeRange(size, mmapMinAddr)
	if err != nil {
		return span{}, fmt.Errorf("set shared memory %d aside: %w", ino, err)
	}
	got, err := r.inj.Syscall(x86.SysMmap, addr, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_ANONYMOUS|unix.MAP_FIXED_NOREPLACE, ^uint64(0), 0)
	if err != nil {
		return span{}, fmt.Errorf("map shared memory %d aside at %#x: %w", ino, addr, err)
	}
	if got != addr {
		return span{}, fmt.Errorf("shared memory %d set aside at %#x, wanted %#x", ino, got, addr)
	}
	if err := r.fillShmem(ino, got, got+size); err != nil {
		return span{}, err
	}
	return span{got, got + size}, nil
}
