//go:build linux && amd64

package kerndat

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/internal/fault"
	"github.com/ckpt/ckpt/internal/uapi"
)

const nameMemTrack = "write tracking (userfaultfd WP_ASYNC + PAGEMAP_SCAN)"

var memTrack struct {
	once sync.Once
	err  error
}

// MemTracking says, once per run, whether this kernel can track a task's
// writes the way pre-copy dumps do (pre-dump, dump --track-mem): a
// userfaultfd with asynchronous write protection (UFFD_FEATURE_WP_ASYNC,
// Linux 6.7) and the PAGEMAP_SCAN ioctl that reads
// and resets it (Linux 6.7). Soft-dirty bits are not used: kernels built
// without CONFIG_MEM_SOFT_DIRTY (this project's) have none. The error
// says what is missing.
func MemTracking() error {
	memTrack.once.Do(func() { memTrack.err = probeMemTracking() })
	return memTrack.err
}

func probeMemTracking() error {
	fd, _, e := unix.Syscall(unix.SYS_USERFAULTFD, unix.O_CLOEXEC|unix.O_NONBLOCK|uapi.UFFD_USER_MODE_ONLY, 0, 0)
	if e != 0 {
		return fmt.Errorf("userfaultfd: %v (CONFIG_USERFAULTFD off, or not allowed here): pre-copy needs it to track writes", e)
	}
	defer unix.Close(int(fd))
	api := uapi.UffdioAPI{API: uapi.UFFD_API, Features: uapi.UFFD_FEATURE_WP_ASYNC}
	if err := uapi.Ioctl(int(fd), uapi.UFFDIO_API, unsafe.Pointer(&api)); err != nil {
		return fmt.Errorf("userfaultfd asynchronous write protection (UFFD_FEATURE_WP_ASYNC, Linux 6.7): %v: this kernel cannot track writes for pre-copy", err)
	}
	mem, err := unix.Mmap(-1, 0, os.Getpagesize(), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return fmt.Errorf("mmap: %w", err)
	}
	defer unix.Munmap(mem)
	start := uint64(uintptr(unsafe.Pointer(&mem[0])))
	reg := uapi.UffdioRegister{Range: uapi.UffdioRange{Start: start, Len: uint64(len(mem))}, Mode: uapi.UFFDIO_REGISTER_MODE_WP}
	if err := uapi.Ioctl(int(fd), uapi.UFFDIO_REGISTER, unsafe.Pointer(&reg)); err != nil {
		return fmt.Errorf("UFFDIO_REGISTER write-protect: %v: this kernel cannot track writes for pre-copy", err)
	}
	pm, err := os.Open("/proc/self/pagemap")
	if err != nil {
		return err
	}
	defer pm.Close()
	end := start + uint64(len(mem))
	// Protect, write, and find the page written.
	if fault.On(fault.NoPagemapScan) {
		return fmt.Errorf("PAGEMAP_SCAN (Linux 6.7): %v: this kernel cannot report written pages for pre-copy", unix.ENOTTY)
	}
	if _, err := uapi.PagemapScan(pm, start, end, uapi.PM_SCAN_WP_MATCHING|uapi.PM_SCAN_CHECK_WPASYNC, uapi.PAGE_IS_WRITTEN, uapi.PAGE_IS_WRITTEN); err != nil {
		if errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("PAGEMAP_SCAN (Linux 6.7): %v: this kernel cannot report written pages for pre-copy", err)
		}
		return err
	}
	mem[0] = 1
	got, err := uapi.PagemapScan(pm, start, end, 0, uapi.PAGE_IS_WRITTEN, uapi.PAGE_IS_WRITTEN)
	if err != nil {
		return err
	}
	if len(got) != 1 || got[0].Start != start {
		return fmt.Errorf("PAGEMAP_SCAN after a write to a write-protected page reports %v: write tracking does not work here", got)
	}
	return nil
}

func probeMemTrack() Result {
	if err := MemTracking(); err != nil {
		return fail(nameMemTrack, false, "%v: pre-dump and dump --track-mem are refused", err)
	}
	return ok(nameMemTrack, "pre-dump and dump --track-mem save only the pages written since the previous dump", false)
}
