//go:build linux && amd64

package restore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"

	vmaimg "github.com/checkpoint-restore/go-criu/v8/crit/images/vma"
	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/image"
	"github.com/ckpt/ckpt/internal/uapi"
)

// This file restores the two special kinds of memory of
// internal/kinds/vma: anonymous hugetlb areas (MAP_HUGETLB) and AIO
// rings (io_setup).

// checkHugetlb tells, before an area with MAP_HUGETLB in its dumped
// flags is mapped, whether this machine has its page size, naming the
// size when it does not.
func checkHugetlb(v *vmaimg.VmaEntry) error {
	if v.GetStatus()&image.VMAAreaMemfd != 0 {
		// CRIU dumps a shared MAP_HUGETLB area as a mapping of a
		// hugetlb memfd ("/anon_hugepage", memfd.img's hugetlb_flag)
		// where the kernel has them: the memfd kind makes it again with
		// its flag and contents, and it is mapped as a memfd.
		return nil
	}
	if v.GetStatus()&(image.VMAFilePrivate|image.VMAFileShared) != 0 {
		return fmt.Errorf("vma %#x-%#x maps a file of hugetlbfs: not restored by ckpt", v.GetStart(), v.GetEnd())
	}
	size := uapi.MapHugeSize(v.GetFlags())
	if size == 0 {
		return nil // the default huge page size, whichever it is
	}
	dir := fmt.Sprintf("/sys/kernel/mm/hugepages/hugepages-%dkB", size>>10)
	if _, err := os.Stat(dir); err != nil {
		return fmt.Errorf("vma %#x-%#x is hugetlb memory with %d kB pages, which this kernel does not offer (no %s): it cannot be restored here", v.GetStart(), v.GetEnd(), size>>10, dir)
	}
	return nil
}

// hugetlbMapError explains a failed mmap of hugetlb area v: most often
// the pool has too few free pages of its size.
func hugetlbMapError(v *vmaimg.VmaEntry, err error) error {
	// hugetlb_reserve_pages fails with ENOMEM when the pool cannot
	// cover the area.
	if !errors.Is(err, unix.ENOMEM) {
		return err
	}
	size := uapi.MapHugeSize(v.GetFlags())
	pool := "/proc/sys/vm/nr_hugepages"
	if size != 0 {
		pool = fmt.Sprintf("/sys/kernel/mm/hugepages/hugepages-%dkB/nr_hugepages", size>>10)
	}
	return fmt.Errorf("hugetlb memory (%d kB pages): the pool has too few free pages for %d bytes (raise %s): %w", size>>10, v.GetEnd()-v.GetStart(), pool, err)
}

// mapProt is the protection area v is mapped with until its pages are
// in: its own, but a private hugetlb area is writable meanwhile, as
// kernels from 6.0 on may refuse forced writes (/proc/PID/mem) into
// hugetlb memory that is not writable (mm/gup.c, the commit "mm/gup:
// disallow FOLL_FORCE|FOLL_WRITE on hugetlb mappings"; 6.18 allows
// them, unchecked which versions between do not); finishSpecialMemory
// protects it as dumped.
func mapProt(v *vmaimg.VmaEntry) uint64 {
	p := uint64(v.GetProt())
	if privateHugetlbRO(v) {
		p |= unix.PROT_WRITE
	}
	return p
}

func privateHugetlbRO(v *vmaimg.VmaEntry) bool {
	return isHugetlb(v) && v.GetFlags()&unix.MAP_SHARED == 0 && v.GetProt()&unix.PROT_WRITE == 0
}

// finishSpecialMemory runs once the dumped pages are in: private
// hugetlb areas get their dumped protection (mapProt), AIO rings are
// made again.
func (r *restorer) finishSpecialMemory() error {
	for _, v := range r.im.MM.GetVmas() {
		if !privateHugetlbRO(v) || inSpans(span{v.GetStart(), v.GetEnd()}, r.keep) {
			continue
		}
		if _, err := r.inj.Syscall(x86.SysMprotect, v.GetStart(), v.GetEnd()-v.GetStart(), uint64(v.GetProt())); err != nil {
			return fmt.Errorf("vma %#x-%#x (hugetlb): protect as dumped: %w", v.GetStart(), v.GetEnd(), err)
		}
	}
	return r.restoreAIORings()
}

// isHugetlb tells whether dumped area v is hugetlb memory.
func isHugetlb(v *vmaimg.VmaEntry) bool { return v.GetFlags()&unix.MAP_HUGETLB != 0 }

// fillHugeShmem writes the dumped content of a shared hugetlb object
// into its mapping at start-end, a chunk at a time from the pages image.
// hugetlbfs has no write(2), so the bytes go through the mapping
// (/proc/PID/mem), made writable for the while when it is not.
func (r *restorer) fillHugeShmem(ino uint64, v *vmaimg.VmaEntry) error {
	start, end := v.GetStart(), v.GetEnd()
	dumped, err := r.im.Tree.ShmemEnd(ino)
	if err != nil {
		return err
	}
	if dumped > end-start || v.GetPgoff() != 0 {
		return fmt.Errorf("shared hugetlb object %d (%d bytes) is mapped only in part (%d bytes at offset %d): not supported", ino, dumped, end-start, v.GetPgoff())
	}
	mem, err := r.memory()
	if err != nil {
		return err
	}
	prot := uint64(v.GetProt())
	if prot&unix.PROT_WRITE == 0 {
		if _, err := r.inj.Syscall(x86.SysMprotect, start, end-start, unix.PROT_READ|unix.PROT_WRITE); err != nil {
			return fmt.Errorf("make hugetlb area writable: %w", err)
		}
	}
	err = r.im.Tree.CopyShmem(ino, func(b []byte, off uint64) error {
		if err := mem.WriteAt(b, start+off); err != nil {
			return fmt.Errorf("fill shared hugetlb memory at %#x: %w", start+off, err)
		}
		return nil
	})
	if prot&unix.PROT_WRITE == 0 {
		if _, perr := r.inj.Syscall(x86.SysMprotect, start, end-start, prot); perr != nil && err == nil {
			err = fmt.Errorf("protect hugetlb area again: %w", perr)
		}
	}
	if err != nil {
		return err
	}
	r.shmem[ino] = fmt.Sprintf("/proc/%d/map_files/%x-%x", r.pid, start, end)
	return nil
}

// aioBatch is how many requests one io_submit sends when the restore
// moves a new ring's tail: their iocbs, pointers and events fit the
// scratch data area.
const aioBatch = 32

// Offsets in the scratch data area for the aio calls.
const (
	aioCtxOff    = 0
	aioBufOff    = 8
	aioTimeOff   = 16
	aioPathOff   = 32
	aioIocbOff   = 64
	aioPtrOff    = aioIocbOff + aioBatch*uapi.IOCBSize
	aioEventsOff = aioPtrOff + aioBatch*8
)

// restoreAIORings makes every dumped AIO context again. The dumped ring
// (header and events) was filled into a private placeholder at its
// address (mapVMAs); here the task makes a new context with io_setup,
// moves the kernel's tail of the new ring to the dumped tail by
// requests that complete at once (writes to /dev/null), sets the head,
// copies the events and moves the new ring over the placeholder with
// mremap (the kernel's aio_ring_mremap then takes the dumped address as
// the context's id, which is what the task holds).
//
// An ia32 task makes its context with the ia32 io_setup (see
// restoreAIORing); the other calls are the native ones in both kinds of
// task: they take the ids and iocb pointers ckpt writes, as 64-bit
// values, and mremap goes to a fixed address.
func (r *restorer) restoreAIORings() error {
	vmas := map[uint64]*vmaimg.VmaEntry{}
	for _, v := range r.im.MM.GetVmas() {
		if v.GetStatus()&image.VMAAreaAIORing != 0 {
			vmas[v.GetStart()] = v
		}
	}
	aios := r.im.MM.GetAios()
	if len(aios) != len(vmas) {
		return fmt.Errorf("%s: %w: %d AIO rings, %d ring areas", image.MMName(r.im.Pid), image.ErrCorrupt, len(aios), len(vmas))
	}
	for _, a := range aios {
		v := vmas[a.GetId()]
		if v == nil || v.GetEnd()-v.GetStart() != uint64(a.GetRingLen()) {
			return fmt.Errorf("%s: %w: AIO ring %#x (%d bytes) has no area of its size", image.MMName(r.im.Pid), image.ErrCorrupt, a.GetId(), a.GetRingLen())
		}
		if err := r.restoreAIORing(a.GetId(), uint64(a.GetRingLen()), a.GetNrReq()); err != nil {
			return fmt.Errorf("AIO ring %#x: %w", a.GetId(), err)
		}
	}
	return nil
}

func (r *restorer) restoreAIORing(id, ringLen uint64, nrReq uint32) error {
	mem, err := r.memory()
	if err != nil {
		return err
	}
	dumped := make([]byte, ringLen)
	if err := mem.ReadAt(dumped, id); err != nil {
		return fmt.Errorf("read the dumped ring: %w", err)
	}
	old, err := uapi.ParseAIORing(dumped, ringLen)
	if err != nil {
		return fmt.Errorf("%w: dumped ring: %v", image.ErrCorrupt, err)
	}
	ctxp, err := r.put(aioCtxOff, make([]byte, 8))
	if err != nil {
		return err
	}
	setup := r.inj.Syscall
	if r.im.Compat {
		// A native io_setup in an ia32 task looks for room for the
		// ring above the task's 4 GiB limit and fails (ENOMEM); the
		// ia32 one (compat_sys_io_setup) writes a 32-bit id.
		setup = r.inj.Syscall32
	}
	if _, err := setup(x86.SysIoSetup, uint64(nrReq), ctxp); err != nil {
		return fmt.Errorf("io_setup(%d): %w", nrReq, err)
	}
	b := make([]byte, 8)
	if err := mem.ReadAt(b, ctxp); err != nil {
		return err
	}
	ctx := binary.LittleEndian.Uint64(b)
	moved := false
	defer func() {
		if !moved {
			// The task is killed on a failed restore; destroy the
			// context all the same so that a retry starts clean.
			r.inj.Syscall(x86.SysIoDestroy, ctx)
		}
	}()
	hdr := make([]byte, uapi.AIORingHeaderSize)
	if err := mem.ReadAt(hdr, ctx); err != nil {
		return fmt.Errorf("read the new ring: %w", err)
	}
	nw, err := uapi.ParseAIORing(hdr, ringLen)
	if err != nil || nw.Nr != old.Nr {
		return fmt.Errorf("io_setup(%d) made a ring of %d events, the dumped one has %d (this machine has more CPUs: the kernel sizes rings by them): %v", nrReq, nw.Nr, old.Nr, err)
	}
	if err := r.aioMoveTail(ctx, old); err != nil {
		return err
	}
	// Events first, then the head: the ring is the dumped one.
	if err := mem.WriteAt(dumped[uapi.AIORingHeaderSize:], ctx+uapi.AIORingHeaderSize); err != nil {
		return fmt.Errorf("write the events: %w", err)
	}
	binary.LittleEndian.PutUint32(b, old.Head)
	if err := mem.WriteAt(b[:4], ctx+uapi.AIORingHeadOffset); err != nil {
		return fmt.Errorf("write the head: %w", err)
	}
	if ctx != id {
		got, err := r.inj.Syscall(x86.SysMremap, ctx, ringLen, ringLen, unix.MREMAP_MAYMOVE|unix.MREMAP_FIXED, id)
		if err != nil {
			return fmt.Errorf("mremap the new ring %#x to %#x: %w", ctx, id, err)
		}
		if got != id {
			return fmt.Errorf("mremap the new ring %#x to %#x: moved to %#x", ctx, id, got)
		}
	}
	moved = true
	if err := mem.ReadAt(hdr, id); err != nil {
		return err
	}
	nw, err = uapi.ParseAIORing(hdr, ringLen)
	if err != nil || nw.Head != old.Head || nw.Tail != old.Tail {
		return fmt.Errorf("restored ring: head %d tail %d, dumped %d %d (%v)", nw.Head, nw.Tail, old.Head, old.Tail, err)
	}
	r.opts.logf("restore %d: AIO ring %#x: %d events, head %d, tail %d, %d not reaped", r.pid, id, old.Nr, old.Head, old.Tail, old.Unreaped())
	return nil
}

// aioMoveTail brings the kernel's tail of the new ring ctx to the dumped
// tail, with the dumped number of events not reaped: the kernel keeps
// the tail to itself (aio_complete) and counts events as taken until
// user space reaps them, so completions are made and reaped up to the
// dumped head, then made and left up to the dumped tail.
func (r *restorer) aioMoveTail(ctx uint64, old uapi.AIORing) error {
	if old.Head == 0 && old.Tail == 0 {
		return nil
	}
	p, err := r.putString(aioPathOff, "/dev/null")
	if err != nil {
		return err
	}
	fd, err := r.inj.Syscall(x86.SysOpenat, atFdcwd, p, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open /dev/null: %w", err)
	}
	err = r.aioComplete(ctx, fd, uint64(old.Head), true)
	if err == nil {
		err = r.aioComplete(ctx, fd, uint64(old.Unreaped()), false)
	}
	if _, cerr := r.inj.Syscall(x86.SysClose, fd); cerr != nil && err == nil {
		err = cerr
	}
	return err
}

// aioComplete makes n requests complete on ctx (1-byte writes to the
// /dev/null fd, which complete inside io_submit), and reaps them if
// reap is set.
func (r *restorer) aioComplete(ctx, fd, n uint64, reap bool) error {
	buf := r.data(aioBufOff)
	ts := make([]byte, 16)
	binary.LittleEndian.PutUint64(ts, 5) // seconds
	tsp, err := r.put(aioTimeOff, ts)
	if err != nil {
		return err
	}
	for n > 0 {
		c := min(n, aioBatch)
		var iocbs, ptrs []byte
		for i := uint64(0); i < c; i++ {
			iocbs = uapi.AppendIOCB(iocbs, 0, uapi.IOCB_CMD_PWRITE, uint32(fd), buf, 1, 0)
			ptrs = binary.LittleEndian.AppendUint64(ptrs, r.data(aioIocbOff+i*uapi.IOCBSize))
		}
		if _, err := r.put(aioIocbOff, iocbs); err != nil {
			return err
		}
		pp, err := r.put(aioPtrOff, ptrs)
		if err != nil {
			return err
		}
		got, err := r.inj.Syscall(x86.SysIoSubmit, ctx, c, pp)
		if err != nil {
			return fmt.Errorf("io_submit %d requests: %w", c, err)
		}
		if got != c {
			return fmt.Errorf("io_submit took %d of %d requests", got, c)
		}
		if reap {
			got, err := r.inj.Syscall(x86.SysIoGetevents, ctx, c, c, r.data(aioEventsOff), tsp)
			if err != nil {
				return fmt.Errorf("io_getevents %d: %w", c, err)
			}
			if got != c {
				return fmt.Errorf("io_getevents reaped %d of %d events", got, c)
			}
		}
		n -= c
	}
	return nil
}
