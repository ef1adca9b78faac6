//go:build linux && amd64

package uapi

import (
	"fmt"
	"os"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Asynchronous write protection of userfaultfd (include/uapi/linux/
// userfaultfd.h, Documentation/admin-guide/mm/userfaultfd.rst), which
// pre-copy dumps track writes with; the rest of the userfaultfd ABI is in
// userfaultfd.go.
const (
	// UFFD_FEATURE_WP_UNPOPULATED (Linux 6.4): write-protecting a range
	// marks its unpopulated entries too (pte markers), so a first write to
	// them counts. The kernel turns it on with WP_ASYNC.
	UFFD_FEATURE_WP_UNPOPULATED = 1 << 13
	// UFFD_FEATURE_WP_ASYNC (Linux 6.7): a write to a write-protected page
	// is resolved by the kernel at once (no message, no waiting thread);
	// the page just stops being write-protected, which PAGEMAP_SCAN
	// reports as PAGE_IS_WRITTEN.
	UFFD_FEATURE_WP_ASYNC = 1 << 15

	// UFFDIO_REGISTER_MODE_WP asks for write-protect tracking of a range.
	UFFDIO_REGISTER_MODE_WP = 1 << 1
	// UFFDIO_WRITEPROTECT_MODE_WP sets write protection (clear: remove).
	UFFDIO_WRITEPROTECT_MODE_WP = 1 << 0

	// UFFDIO_WRITEPROTECT is _IOWR(UFFDIO=0xAA, 0x06, struct
	// uffdio_writeprotect) (24 bytes).
	UFFDIO_WRITEPROTECT = 3<<30 | SizeofUffdioWriteprotect<<16 | 0xAA<<8 | 0x06
	// SizeofUffdioWriteprotect is struct uffdio_writeprotect.
	SizeofUffdioWriteprotect = 24
)

// UffdioWriteprotect is struct uffdio_writeprotect.
type UffdioWriteprotect struct {
	Range UffdioRange
	Mode  uint64
}

var _ [SizeofUffdioWriteprotect]byte = [unsafe.Sizeof(UffdioWriteprotect{})]byte{}

// PAGEMAP_SCAN (Linux 6.7), an ioctl on /proc/PID/pagemap, from
// include/uapi/linux/fs.h and Documentation/admin-guide/mm/pagemap.rst.
const (
	// PAGEMAP_SCAN is _IOWR('f', 16, struct pm_scan_arg) (96 bytes).
	PAGEMAP_SCAN = 0xC0606610

	// Page categories (pm_scan_arg masks, page_region.categories).
	PAGE_IS_WPALLOWED = 1 << 0
	PAGE_IS_WRITTEN   = 1 << 1
	PAGE_IS_FILE      = 1 << 2
	PAGE_IS_PRESENT   = 1 << 3
	PAGE_IS_SWAPPED   = 1 << 4
	PAGE_IS_PFNZERO   = 1 << 5
	PAGE_IS_HUGE      = 1 << 6

	// PM_SCAN_WP_MATCHING write-protects the pages that match, in the
	// same walk that reports them (get and clear in one step).
	PM_SCAN_WP_MATCHING = 1 << 0
	// PM_SCAN_CHECK_WPASYNC fails the scan (EPERM) where a page of the
	// range is not registered for asynchronous write protection.
	PM_SCAN_CHECK_WPASYNC = 1 << 1
)

// PmScanArg is struct pm_scan_arg.
type PmScanArg struct {
	Size, Flags, Start, End, WalkEnd, Vec, VecLen, MaxPages uint64
	CategoryInverted, CategoryMask, CategoryAnyofMask       uint64
	ReturnMask                                              uint64
}

// PageRegion is struct page_region: [Start, End) with its categories.
type PageRegion struct {
	Start, End, Categories uint64
}

// Ioctl runs ioctl(fd, req, arg) with arg a pointer to a struct above.
func Ioctl(fd int, req uintptr, arg unsafe.Pointer) error {
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

// PagemapScan runs PAGEMAP_SCAN on the open /proc/PID/pagemap pm over
// [start, end) with the given flags and masks, and returns the regions
// found (adjacent pages of the same categories merged by the kernel).
// It calls again from where the kernel stopped when vec fills up.
func PagemapScan(pm *os.File, start, end, flags, categoryMask, returnMask uint64) ([]PageRegion, error) {
	var out []PageRegion
	vec := make([]PageRegion, 512)
	for start < end {
		a := PmScanArg{
			Size: uint64(unsafe.Sizeof(PmScanArg{})), Flags: flags, Start: start, End: end,
			Vec: uint64(uintptr(unsafe.Pointer(&vec[0]))), VecLen: uint64(len(vec)),
			CategoryMask: categoryMask, ReturnMask: returnMask,
		}
		// The ioctl returns the number of regions filled.
		n, _, e := unix.Syscall(unix.SYS_IOCTL, pm.Fd(), PAGEMAP_SCAN, uintptr(unsafe.Pointer(&a)))
		runtime.KeepAlive(vec)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return nil, fmt.Errorf("PAGEMAP_SCAN %#x-%#x: %w", start, end, e)
		}
		out = append(out, vec[:n]...)
		if a.WalkEnd <= start {
			return nil, fmt.Errorf("PAGEMAP_SCAN %#x-%#x: no progress (walk_end %#x)", start, end, a.WalkEnd)
		}
		start = a.WalkEnd
	}
	return out, nil
}
