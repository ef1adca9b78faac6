//go:build linux && amd64

package restore

import (
	"fmt"
	"sort"
	"unsafe"

	vma "github.com/checkpoint-restore/go-criu/v8/crit/images/vma"
	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/image"
	"github.com/ckpt/ckpt/internal/lazypages"
	"github.com/ckpt/ckpt/internal/model"
	"github.com/ckpt/ckpt/internal/uapi"
)

// Lazy restore (Options.LazyPages, CRIU's --lazy-pages). Private
// anonymous areas are mapped but not filled: each process gets a
// userfaultfd made by an injected userfaultfd() (it belongs to the mm of
// the process that makes it, and its ioctls act on that mm whoever calls
// them), which ckpt takes with pidfd_getfd, closes in the process, sets
// up (UFFDIO_API with the fork, remap, remove and unmap events, so that
// the server follows what the program does to its memory) and registers
// the areas on (UFFDIO_REGISTER, MODE_MISSING). It then hands the fd to
// the lazy-pages server (package lazypages), which serves the faults
// from the pages image and pushes the rest. This happens as soon as the
// areas are mapped, before the rest of the rebuild: the kernel's own
// writes into them (rseq's cpu_id, say) fault like the program's, and
// the restore forks children from a parent whose areas are registered
// (the server follows the fork, then the child's munmaps).
//
// What stays eager: shared memory, file mappings (private ones too), the
// vDSO, locked areas (MAP_LOCKED is filled at mmap), areas with
// MADV_DONTFORK or MADV_WIPEONFORK, and any area of a kind other than
// plain anonymous private memory (heap and stack included in the lazy
// kind), and the areas that a child keeps as fork gave them, sharing
// their pages with its parent (cow.go): the parent fills them before it
// forks, as in an eager restore, and the child fills only what differs.

// lazyFeatures are the userfaultfd features a lazy restore needs: a
// fork, mremap, madvise(MADV_DONTNEED) or munmap by the program must be
// seen by the server, or it would write stale pages (or a child would
// read zeros where its parent's image pages belong).
const lazyFeatures = uapi.UFFD_FEATURE_EVENT_FORK | uapi.UFFD_FEATURE_EVENT_REMAP |
	uapi.UFFD_FEATURE_EVENT_REMOVE | uapi.UFFD_FEATURE_EVENT_UNMAP

// dialLazy connects to the lazy-pages server when the restore is lazy;
// the returned end tells it the restore is done (ok) or drops the
// connection (a failed restore: the server goes once its tasks are gone).
func (o *Options) dialLazy() (end func(ok bool) error, err error) {
	if !o.LazyPages {
		return func(bool) error { return nil }, nil
	}
	cl, err := lazypages.Dial(o.ImagesDir)
	if err != nil {
		return nil, err
	}
	o.lazy = cl
	return func(ok bool) error {
		if ok {
			return cl.Done()
		}
		return cl.Close()
	}, nil
}

// lazyKind tells whether the dumped area v may be filled lazily.
func lazyKind(v *vma.VmaEntry) bool {
	st := v.GetStatus()
	if st&image.VMAAnonPrivate == 0 || st&^(image.VMAAreaRegular|image.VMAAreaStack|image.VMAAreaHeap|image.VMAAnonPrivate) != 0 {
		return false
	}
	if v.GetFlags()&(unix.MAP_LOCKED|unix.MAP_HUGETLB|unix.MAP_SHARED) != 0 {
		return false
	}
	return v.GetMadv()&(1<<unix.MADV_DONTFORK|1<<unix.MADV_WIPEONFORK) == 0
}

// lazyAreas are the process's areas that the server fills, sorted; nil
// when the restore is not lazy.
func (r *restorer) lazyAreas() []span {
	if r.opts.lazy == nil {
		return nil
	}
	if r.lazy == nil {
		r.lazy = []span{}
		kept := r.keptByChildren()
		for _, v := range r.im.MM.GetVmas() {
			s := span{v.GetStart(), v.GetEnd()}
			if lazyKind(v) && !overlapsAny(s, r.keep) && !kept[s] {
				r.lazy = append(r.lazy, s)
			}
		}
		sort.Slice(r.lazy, func(i, j int) bool { return r.lazy[i].start < r.lazy[j].start })
	}
	return r.lazy
}

// keptByChildren are the VMAs of the process that a child of it keeps
// as fork gives them (cow.go): they are filled before the fork, so that
// the child shares their pages.
func (r *restorer) keptByChildren() map[span]bool {
	kept := map[span]bool{}
	mine := map[span]*vma.VmaEntry{}
	for _, v := range r.im.MM.GetVmas() {
		mine[span{v.GetStart(), v.GetEnd()}] = v
	}
	for _, c := range r.im.Tree.Procs {
		if c.Zombie || c == r.im || int(c.Pstree.GetPpid()) != r.im.Pid || c.Compat != r.im.Compat {
			continue
		}
		for _, v := range c.MM.GetVmas() {
			s := span{v.GetStart(), v.GetEnd()}
			if w := mine[s]; w != nil && inherits(r.im.Tree, v, w) {
				kept[s] = true
			}
		}
	}
	return kept
}

// skipLazy wraps the page-run callback of fillPages: the parts of a run
// in lazy areas are left to the server (and counted as done for the
// progress line), the others go to f.
func (r *restorer) skipLazy(f func(model.PageRun) error) func(model.PageRun) error {
	lazy := r.lazyAreas()
	if len(lazy) == 0 {
		return f
	}
	return func(run model.PageRun) error {
		addr, end, off := run.Vaddr, run.Vaddr+run.NrPages*x86.PageSize, run.Off
		if run.NrPages == 0 || run.NrPages > 1<<36 || end < addr {
			return f(run) // f says what is wrong with it
		}
		for addr < end {
			// The piece up to the next edge of a lazy area.
			next, in := end, false
			for _, l := range lazy {
				if l.start <= addr && addr < l.end {
					next, in = min(end, l.end), true
					break
				}
				if l.start > addr {
					next = min(end, l.start)
					break
				}
			}
			if in {
				r.lazyPages += (next - addr) / x86.PageSize
				r.opts.Progress.Add(next - addr)
			} else {
				piece := run
				piece.Vaddr, piece.NrPages, piece.Off = addr, (next-addr)/x86.PageSize, off
				if err := f(piece); err != nil {
					return err
				}
			}
			off += int64(next - addr)
			addr = next
		}
		return nil
	}
}

// registerLazy registers the lazy areas of the process on a userfaultfd
// of its mm and hands it to the server.
func (r *restorer) registerLazy() error {
	lazy := r.lazyAreas()
	if len(lazy) == 0 || r.lazyPages == 0 {
		return nil // no page of the images is left to the server
	}
	tfd, err := r.inj.Syscall(x86.SysUserfaultfd, unix.O_CLOEXEC|unix.O_NONBLOCK)
	if err != nil {
		return fmt.Errorf("userfaultfd in the task: %w", err)
	}
	pidfd, err := unix.PidfdOpen(r.pid, 0)
	var ufd int
	if err == nil {
		ufd, err = unix.PidfdGetfd(pidfd, int(tfd), 0)
		unix.Close(pidfd)
	}
	// The program must not see an fd it did not have.
	if _, cerr := r.inj.Syscall(x86.SysClose, tfd); cerr != nil && err == nil {
		unix.Close(ufd)
		return fmt.Errorf("close the userfaultfd in the task: %w", cerr)
	}
	if err != nil {
		return fmt.Errorf("take the task's userfaultfd (pidfd_getfd): %w", err)
	}
	defer unix.Close(ufd) // the server has its own copy
	api := uapi.UffdioAPI{API: uapi.UFFD_API, Features: lazyFeatures}
	if err := uffdIoctl(ufd, uapi.UFFDIO_API, unsafe.Pointer(&api)); err != nil {
		return fmt.Errorf("userfaultfd: UFFDIO_API with features %#x (fork, remap, remove and unmap events): %w", uint64(lazyFeatures), err)
	}
	var areas [][2]uint64
	for _, l := range lazy {
		reg := uapi.UffdioRegister{Range: uapi.UffdioRange{Start: l.start, Len: l.end - l.start}, Mode: uapi.UFFDIO_REGISTER_MODE_MISSING}
		if err := uffdIoctl(ufd, uapi.UFFDIO_REGISTER, unsafe.Pointer(&reg)); err != nil {
			return fmt.Errorf("userfaultfd: register %#x-%#x: %w", l.start, l.end, err)
		}
		areas = append(areas, [2]uint64{l.start, l.end})
	}
	if err := r.opts.lazy.Send(r.im.Pid, r.pid, areas, ufd); err != nil {
		return err
	}
	r.opts.logf("restore %d: %d pages in %d areas left to the lazy-pages server", r.pid, r.lazyPages, len(areas))
	return nil
}

func uffdIoctl(fd int, req uintptr, arg unsafe.Pointer) error {
	for {
		_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(arg))
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return e
		}
		return nil
	}
}
