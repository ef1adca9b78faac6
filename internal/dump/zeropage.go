//go:build linux && amd64

package dump

import (
	"encoding/binary"
	"os"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/internal/procfs"
	"github.com/ckpt/ckpt/internal/uapi"
)

// zeroPFNs are the page frames of the kernel's shared zero pages: a page
// of private anonymous memory that was only read maps the zero page (or a
// piece of the huge zero page under THP). Such pages hold no data of the
// task: the dump leaves them out, and the restored mapping reads zeros
// without taking memory, as the original did.
type zeroPFNs struct {
	small          uint64 // 0: unknown
	hugeLo, hugeHi uint64 // [lo, hi) of the huge zero page, 0 if none
}

var (
	zeroOnce sync.Once
	zero     zeroPFNs
	zeroSink byte // keeps the probing reads
)

// zeroPages finds the zero page frames once, by reading fresh anonymous
// memory of ckpt's own and looking at its pagemap. PFNs show only with
// CAP_SYS_ADMIN; without, nothing is taken for a zero page.
func zeroPages() zeroPFNs {
	zeroOnce.Do(func() {
		pm, err := procfs.OpenPagemap(os.Getpid())
		if err != nil {
			return
		}
		defer pm.Close()
		const huge = 2 << 20
		b, err := unix.Mmap(-1, 0, 2*huge, unix.PROT_READ, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
		if err != nil {
			return
		}
		defer unix.Munmap(b)
		base := uintptr(unsafe.Pointer(&b[0]))
		// A small page: read one byte of the first page.
		probe := func(off uintptr) uint64 {
			zeroSink += b[off]
			es, err := procfs.PagemapEntries(pm, uint64(base+off), uint64(base+off)+procfs.PageSize)
			if err != nil || !es[0].Present() {
				return 0
			}
			return es[0].PFN()
		}
		// Some kernels map no zero page (pvm_no_zero_page=1 on these
		// machines): a read then allocates a page, whose frame ckpt would
		// free right away. Only a frame /proc/kpageflags marks as a zero
		// page counts.
		kpf, err := os.Open("/proc/kpageflags")
		if err != nil {
			return
		}
		defer kpf.Close()
		isZero := func(pfn uint64) bool {
			var fb [8]byte
			if pfn == 0 {
				return false
			}
			if _, err := kpf.ReadAt(fb[:], int64(pfn*8)); err != nil {
				return false
			}
			return binary.LittleEndian.Uint64(fb[:])&(1<<uapi.KPF_ZERO_PAGE) != 0
		}
		_ = unix.Madvise(b[:procfs.PageSize], unix.MADV_NOHUGEPAGE)
		if pfn := probe(0); isZero(pfn) {
			zero.small = pfn
		}
		// The huge zero page, where THP maps it: a read of an aligned
		// 2 MiB range with MADV_HUGEPAGE.
		aligned := (base + huge - 1) &^ (huge - 1)
		off := aligned - base
		if off+huge <= uintptr(len(b)) {
			_ = unix.Madvise(b[off:off+huge], unix.MADV_HUGEPAGE)
			if first := probe(off); isZero(first) && first != zero.small && probe(off+procfs.PageSize) == first+1 {
				zero.hugeLo, zero.hugeHi = first, first+huge/procfs.PageSize
			}
		}
	})
	return zero
}

// is reports whether pfn is a zero page frame.
func (z zeroPFNs) is(pfn uint64) bool {
	return pfn != 0 && (pfn == z.small || (pfn >= z.hugeLo && pfn < z.hugeHi))
}
