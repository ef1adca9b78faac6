//go:build linux && amd64

package dump

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/ckerr"
	"github.com/ckpt/ckpt/internal/inject"
	"github.com/ckpt/ckpt/internal/kinds/vma"
	"github.com/ckpt/ckpt/internal/model"
	"github.com/ckpt/ckpt/internal/procfs"
	"github.com/ckpt/ckpt/internal/ptrace"
	"github.com/ckpt/ckpt/internal/uapi"
)

// Pre-copy (CRIU's pre-dump and dump --track-mem) on a kernel without
// soft-dirty bits. Writes are tracked with userfaultfd asynchronous
// write protection (UFFD_FEATURE_WP_ASYNC, Linux 6.7): every private
// anonymous area of a task is registered for write protection, and
// PAGEMAP_SCAN with PM_SCAN_WP_MATCHING both reports the pages written
// since the last scan (PAGE_IS_WRITTEN) and protects them again, in one
// walk, while the tree is frozen. A write to a protected page costs the
// task one minor fault, resolved by the kernel (no message, no thread
// waiting on the userfaultfd).
//
// A userfaultfd belongs to the mm of the task that creates it, so the
// dump runs userfaultfd() inside the frozen task, takes the fd with
// pidfd_getfd and closes the task's copy again: the program never sees
// it. The protection lasts while a reference to the userfaultfd lives
// (its release unprotects everything): between a pre-dump and the next
// dump a holder process keeps them (holder.go).

// memTracker is the write tracking of a dump that is part of a pre-copy
// chain.
type memTracker struct {
	// parent is the images directory of the previous dump of the chain,
	// whose pages an unchanged page is left in; "" for a full dump.
	parent string
	// held are the userfaultfds the previous dump left with its holder,
	// by PID; taken ones move to procs.
	held map[int]*trackedProc
	// procs are the processes this dump tracks, by PID.
	procs map[int]*trackedProc
	// inParent counts the pages left in the parent.
	inParent uint64
}

// trackedProc is one process's userfaultfd and a pidfd that tells
// whether it is still that process.
type trackedProc struct {
	pid         int
	uffd, pidfd *os.File
}

func (p *trackedProc) close() {
	p.uffd.Close()
	p.pidfd.Close()
}

// alive says whether the process the pidfd was opened for is still there
// (a PID used again by another process fails too).
func (p *trackedProc) alive() bool {
	return unix.PidfdSendSignal(int(p.pidfd.Fd()), 0, nil, 0) == nil
}

// close drops every userfaultfd the tracker has: the kernel then
// unprotects the pages of each.
func (m *memTracker) close() {
	if m == nil {
		return
	}
	for _, p := range m.held {
		p.close()
	}
	for _, p := range m.procs {
		p.close()
	}
	m.held, m.procs = nil, nil
}

// owns says whether the dump tracks pid's writes with a userfaultfd of a
// previous dump: its areas show VmFlags "uw", which are this tracking's
// and not refused (trackWrites checks each is ours).
func (m *memTracker) owns(pid int) bool {
	if m == nil {
		return false
	}
	_, ok := m.held[pid]
	if !ok {
		_, ok = m.procs[pid]
	}
	return ok
}

// withoutTracking returns se without the "uw" flag when the dump's own
// tracking may have set it.
func (o *Options) withoutTracking(pid int, se procfs.SmapsEntry) procfs.SmapsEntry {
	if !o.track.owns(pid) || !se.HasFlag("uw") {
		return se
	}
	var fl []string
	for _, f := range se.Flags {
		if f != "uw" {
			fl = append(fl, f)
		}
	}
	se.Flags = fl
	return se
}

// procTrack is what the tracking says of one process for this dump:
// clean are the pages not written since the previous dump, which that
// dump's chain holds, sorted.
type procTrack struct {
	clean []model.PageRange
}

// trackWrites, for a frozen process, makes sure its private anonymous
// areas are tracked by a userfaultfd of its mm, reads and resets what
// was written since the previous dump, and returns the pages that this
// dump may leave in the parent. It runs before the pages are scanned.
func (t *task) trackWrites(vmas []procfs.SmapsEntry) (*procTrack, error) {
	m := t.opts.track
	if m == nil {
		return nil, nil
	}
	pid := t.pid
	tp := m.held[pid]
	delete(m.held, pid)
	if tp != nil && (!tp.alive() || !anyTracked(vmas)) {
		// Gone, or no area is tracked any more: the task exec'd (its
		// new mm is not the userfaultfd's) or unmapped them all.
		tp.close()
		tp = nil
	}
	fresh := tp == nil
	if fresh {
		var err error
		if tp, err = t.newUffd(vmas); err != nil {
			return nil, fmt.Errorf("track writes: %w", err)
		}
	}
	m.procs[pid] = tp
	defer func(start time.Time) {
		t.opts.logf("process %d: writes since the previous dump read and protected again in %v", pid, time.Since(start))
	}(time.Now())
	var parentPages []model.PageRange
	if m.parent != "" && !fresh {
		var err error
		if parentPages, err = model.ChainPages(m.parent, t.vpid()); err != nil {
			return nil, fmt.Errorf("track writes: the previous dump: %w", err)
		}
	}
	pmf, err := procfs.OpenPagemap(pid)
	if err != nil {
		return nil, err
	}
	defer pmf.Close()
	uffd := int(tp.uffd.Fd())
	pt := &procTrack{}
	for _, se := range vmas {
		v := se.VMA
		object := fmt.Sprintf("vma %#x-%#x %s", v.Start, v.End, v.Path)
		kind, err := vma.Classify(pid, t.opts.withoutTracking(pid, se))
		if err != nil {
			return nil, err // dumpMemory says the same
		}
		if kind.Class != vma.AnonPrivate {
			if se.HasFlag("uw") {
				return nil, ckerr.Unsupported(pid, object, "memory registered with a userfaultfd of the task's own cannot be dumped yet")
			}
			continue
		}
		ours := !fresh && se.HasFlag("uw")
		reg := uapi.UffdioRegister{Range: uapi.UffdioRange{Start: v.Start, Len: v.End - v.Start}, Mode: uapi.UFFDIO_REGISTER_MODE_WP}
		if err := uapi.Ioctl(uffd, uapi.UFFDIO_REGISTER, unsafe.Pointer(&reg)); err != nil {
			if errors.Is(err, unix.EBUSY) {
				return nil, ckerr.Unsupported(pid, object, "memory registered with another userfaultfd (the task's own, or the tracking of a pre-dump this dump does not continue: give its directory as --prev-images-dir, or stop its holder) cannot be dumped yet")
			}
			// An area the kernel does not track (MAP_DROPPABLE, ...):
			// saved whole every time.
			t.opts.logf("process %d: %s: writes not tracked (UFFDIO_REGISTER: %v): saved whole", pid, object, err)
			continue
		}
		written, err := uapi.PagemapScan(pmf, v.Start, v.End, uapi.PM_SCAN_WP_MATCHING|uapi.PM_SCAN_CHECK_WPASYNC, uapi.PAGE_IS_WRITTEN, uapi.PAGE_IS_WRITTEN)
		if err != nil {
			return nil, fmt.Errorf("process %d: %s: track writes: %w", pid, object, err)
		}
		if !ours || parentPages == nil {
			continue // new since the previous dump, or no previous dump: all of it is saved
		}
		pt.clean = append(pt.clean, cleanPages(v.Start, v.End, written, parentPages)...)
	}
	return pt, nil
}

// anyTracked says whether an area of vmas is write-protect tracked.
func anyTracked(vmas []procfs.SmapsEntry) bool {
	for _, se := range vmas {
		if se.HasFlag("uw") {
			return true
		}
	}
	return false
}

// newUffd creates a userfaultfd in the frozen process's mm with
// asynchronous write protection, takes it into ckpt, and closes the
// process's copy.
func (t *task) newUffd(vmas []procfs.SmapsEntry) (tp *trackedProc, err error) {
	code, err := scratchCodeAddr(vmas)
	if err != nil {
		return nil, err
	}
	inj, err := inject.BeginUndo(t.s.Undo, t.threads[0], code)
	if err != nil {
		return nil, fmt.Errorf("prepare injection: %w", err)
	}
	defer inj.End()
	call := inj.Syscall
	if t.abi == x86.ABI32 {
		call = inj.Syscall32
	}
	// User-mode faults only: all that an unprivileged task may ask for
	// (vm.unprivileged_userfaultfd=0), and all that asynchronous write
	// protection needs (the kernel resolves it before that check).
	tfd, err := call(x86.SysUserfaultfd, unix.O_CLOEXEC|unix.O_NONBLOCK|uapi.UFFD_USER_MODE_ONLY)
	if err != nil {
		return nil, fmt.Errorf("userfaultfd in process %d: %w", t.pid, err)
	}
	defer func() {
		if _, cerr := call(x86.SysClose, tfd); cerr != nil && err == nil {
			err = fmt.Errorf("close the userfaultfd in process %d: %w", t.pid, cerr)
			tp.close()
			tp = nil
		}
	}()
	pidfd, err := unix.PidfdOpen(t.pid, 0)
	if err != nil {
		return nil, fmt.Errorf("pidfd_open %d: %w", t.pid, err)
	}
	fd, err := unix.PidfdGetfd(pidfd, int(tfd), 0)
	if err != nil {
		unix.Close(pidfd)
		return nil, fmt.Errorf("pidfd_getfd %d of process %d: %w", tfd, t.pid, err)
	}
	tp = &trackedProc{pid: t.pid, uffd: os.NewFile(uintptr(fd), "userfaultfd"), pidfd: os.NewFile(uintptr(pidfd), "pidfd")}
	// The kernel turns UFFD_FEATURE_WP_UNPOPULATED on with WP_ASYNC
	// (userfaultfd_api): holes of a protected area get markers, which
	// the page scan leaves out (pteMarker).
	api := uapi.UffdioAPI{API: uapi.UFFD_API, Features: uapi.UFFD_FEATURE_WP_ASYNC}
	if err := uapi.Ioctl(fd, uapi.UFFDIO_API, unsafe.Pointer(&api)); err != nil {
		tp.close()
		return nil, fmt.Errorf("UFFDIO_API with asynchronous write protection: %w", err)
	}
	return tp, nil
}

// cleanPages returns the pages of [start, end) that no region of written
// (sorted, as PAGEMAP_SCAN returns them) covers and that parent (sorted)
// holds.
func cleanPages(start, end uint64, written []uapi.PageRegion, parent []model.PageRange) []model.PageRange {
	var unwritten [][2]uint64
	at := start
	for _, w := range written {
		if w.Start > at {
			unwritten = append(unwritten, [2]uint64{at, min(w.Start, end)})
		}
		at = max(at, w.End)
	}
	if at < end {
		unwritten = append(unwritten, [2]uint64{at, end})
	}
	var out []model.PageRange
	i := sort.Search(len(parent), func(i int) bool {
		return parent[i].Vaddr+parent[i].NrPages*x86.PageSize > start
	})
	for _, u := range unwritten {
		// Both are sorted: the parent's runs that end before u are
		// done with.
		for i < len(parent) && parent[i].Vaddr+parent[i].NrPages*x86.PageSize <= u[0] {
			i++
		}
		for j := i; j < len(parent) && parent[j].Vaddr < u[1]; j++ {
			ps, pe := parent[j].Vaddr, parent[j].Vaddr+parent[j].NrPages*x86.PageSize
			lo, hi := max(ps, u[0]), min(pe, u[1])
			if lo < hi {
				out = append(out, model.PageRange{Vaddr: lo, NrPages: (hi - lo) / x86.PageSize})
			}
		}
	}
	return out
}

// splitClean splits the run of n pages from start into pieces, each
// either clean (left in the parent) or not, in order; the page at skip
// (the injection's code page, saved as read before any injection) is
// never clean.
func splitClean(clean []model.PageRange, start, n, skip uint64, f func(start, n uint64, inParent bool)) {
	end := start + n*x86.PageSize
	at := start
	i := sort.Search(len(clean), func(i int) bool {
		return clean[i].Vaddr+clean[i].NrPages*x86.PageSize > start
	})
	for ; i < len(clean) && clean[i].Vaddr < end; i++ {
		cs, ce := max(clean[i].Vaddr, at), min(clean[i].Vaddr+clean[i].NrPages*x86.PageSize, end)
		if cs >= ce {
			continue
		}
		if skip >= cs && skip < ce {
			// Split the clean piece around the code page.
			if cs > at {
				f(at, (cs-at)/x86.PageSize, false)
			}
			if skip > cs {
				f(cs, (skip-cs)/x86.PageSize, true)
			}
			f(skip, 1, false)
			at = skip + x86.PageSize
			if ce > at {
				f(at, (ce-at)/x86.PageSize, true)
				at = ce
			}
			continue
		}
		if cs > at {
			f(at, (cs-at)/x86.PageSize, false)
		}
		f(cs, (ce-cs)/x86.PageSize, true)
		at = ce
	}
	if at < end {
		f(at, (end-at)/x86.PageSize, false)
	}
}

// swpPteMarker is the swap type of a page-table marker: the last of the
// 32 swap types (SWP_PTE_MARKER, include/linux/swap.h, with
// MAX_SWAPFILES_SHIFT 5). /proc/PID/pagemap shows a marker as a swapped
// page of that type (pte_to_pagemap_entry, fs/proc/task_mmu.c).
const swpPteMarker = 31

// pteMarker reports a pagemap entry that is a page-table marker and no
// page: the uffd-wp marker that write protection leaves in a hole of a
// tracked area (UFFD_FEATURE_WP_ASYNC turns WP_UNPOPULATED on), which
// reads as zeros and is not saved. (Without CAP_SYS_ADMIN pagemap hides
// swap types; ckpt runs as root.)
func pteMarker(e procfs.PagemapEntry) bool {
	return e.Swapped() && e.PFN()&0x1f == swpPteMarker
}

// sparseRunAvg: runs smaller than this on average (the pages written
// since the previous dump, scattered) are copied by copySparse.
const sparseRunAvg = 64 << 10

// sparseRuns says whether runs are many and small: each a vmsplice
// iovec, or a read and a write of its own, costs more than its copy.
func sparseRuns(runs []pageRun) bool {
	return len(runs) >= 256 && runsBytes(runs)/uint64(len(runs)) < sparseRunAvg
}

// copySparse writes the content of runs to the pages image f (from its
// current offset, left at the end), reading up to 1024 runs at a time
// with one process_vm_readv into a 4 MiB buffer and writing it at once.
// Runs process_vm_readv cannot read (the vDSO, memory the task cannot
// read) go through the memory file; runs with data are copied from it.
func (t *task) copySparse(runs []pageRun, mem *ptrace.Mem, f pageSink) error {
	off, err := f.offset()
	if err != nil {
		return err
	}
	buf := make([]byte, 4<<20)
	var local []unix.Iovec
	var remote []unix.RemoteIovec
	fill := 0
	flush := func() error {
		if len(remote) > 0 {
			n, err := unix.ProcessVMReadv(t.pid, local, remote, 0)
			if err != nil {
				n = 0
			}
			// What it did not read (it stops at the first iovec it
			// cannot read) goes through the memory file.
			for i, r := range remote {
				if n >= r.Len {
					n -= r.Len
					continue
				}
				b := unsafe.Slice(local[i].Base, local[i].Len)[n:]
				if err := mem.ReadAt(b, uint64(r.Base)+uint64(n)); err != nil {
					return fmt.Errorf("pages at %#x: %w", uint64(r.Base)+uint64(n), err)
				}
				n = 0
			}
		}
		if fill > 0 {
			if err := f.writeAt(buf[:fill], off); err != nil {
				return err
			}
			off += int64(fill)
		}
		local, remote, fill = local[:0], remote[:0], 0
		return nil
	}
	for _, r := range runs {
		for done := uint64(0); done < r.size; {
			if err := t.opts.interrupted(); err != nil {
				return err
			}
			if fill == len(buf) || len(remote) == spliceIovMax {
				if err := flush(); err != nil {
					return err
				}
			}
			n := min(r.size-done, uint64(len(buf)-fill))
			b := buf[fill : fill+int(n)]
			switch {
			case r.data != nil:
				copy(b, r.data[done:done+n])
			case r.viaMem:
				if err := mem.ReadAt(b, r.addr+done); err != nil {
					return fmt.Errorf("pages at %#x: %w", r.addr+done, err)
				}
			default:
				local = append(local, unix.Iovec{Base: &b[0], Len: n})
				remote = append(remote, unix.RemoteIovec{Base: uintptr(r.addr + done), Len: int(n)})
			}
			fill += int(n)
			done += n
		}
	}
	if err := flush(); err != nil {
		return err
	}
	return f.end(off)
}
