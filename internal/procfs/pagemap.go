//go:build linux && amd64

package procfs

import (
	"fmt"
	"os"
)

// PageSize is the x86_64 base page size that /proc/PID/pagemap is indexed
// by.
const PageSize = 4096

// PagemapEntry is one 64-bit entry of /proc/PID/pagemap, describing one
// virtual page. The file holds one little-endian uint64 per page, the entry
// for virtual address A at file offset (A/PageSize)*8. Bit layout, from
// the comment above pagemap_read() in fs/proc/task_mmu.c and
// Documentation/admin-guide/mm/pagemap.rst:
//
//	bits 0-54  PFN if present; if swapped, bits 0-4 swap type and bits
//	           5-54 swap offset. The PFN reads as zero unless the reader
//	           has CAP_SYS_ADMIN (since Linux 4.2).
//	bit  55    PTE is soft-dirty
//	bit  56    page is exclusively mapped (since 4.2)
//	bit  57    PTE is uffd-wp write-protected (since 5.13)
//	bit  58    page is a guard region (since 6.15)
//	bits 59-60 zero
//	bit  61    page is a file page or shared anonymous (since 3.5)
//	bit  62    page is swapped
//	bit  63    page is present in RAM
type PagemapEntry uint64

// Pagemap entry bits; see PagemapEntry.
const (
	pmPFNMask   = 1<<55 - 1
	pmSoftDirty = 1 << 55
	pmExclusive = 1 << 56
	pmFile      = 1 << 61
	pmSwap      = 1 << 62
	pmPresent   = 1 << 63
)

// Present reports bit 63: the page is present in RAM.
func (e PagemapEntry) Present() bool { return e&pmPresent != 0 }

// Swapped reports bit 62: the page is in swap.
func (e PagemapEntry) Swapped() bool { return e&pmSwap != 0 }

// FileOrShared reports bit 61: the page is a file page or shared anonymous
// memory (shmem), not private anonymous memory.
func (e PagemapEntry) FileOrShared() bool { return e&pmFile != 0 }

// Exclusive reports bit 56: the page is mapped only by this process.
func (e PagemapEntry) Exclusive() bool { return e&pmExclusive != 0 }

// SoftDirty reports bit 55: the PTE was written since soft-dirty bits were
// last cleared through /proc/PID/clear_refs.
func (e PagemapEntry) SoftDirty() bool { return e&pmSoftDirty != 0 }

// PFN returns bits 0-54: the page frame number of a present page (zero
// without CAP_SYS_ADMIN), or the swap type and offset of a swapped page.
func (e PagemapEntry) PFN() uint64 { return uint64(e) & pmPFNMask }

// pagemapChunk is the number of entries read per ReadAt call: 8192 entries
// = 64 KiB of pagemap, covering 32 MiB of address space.
const pagemapChunk = 8192

// OpenPagemap opens /proc/PID/pagemap for reading, for use with
// PresentPages. The caller closes it.
func OpenPagemap(pid int) (*os.File, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/pagemap", pid))
	if err != nil {
		return nil, fmt.Errorf("open /proc/%d/pagemap: %w", pid, err)
	}
	return f, nil
}

// PresentPages returns, for the address range [start,end) of the task
// whose /proc/PID/pagemap is open as pagemap, which pages are present or
// swapped (i.e. hold data that must be saved), one bool per PageSize page.
// start and end must be page-aligned with start <= end. It reads with
// ReadAt at offset (start/PageSize)*8 in chunks of 64 KiB, so the file can
// be reused for many ranges and large ranges need no large buffer. Pages
// that were never touched, and unmapped holes inside the range, read as
// not present. Addresses at or above the task's TASK_SIZE (such as the
// [vsyscall] page) read as end-of-file in pagemap_read() and yield a
// short-read error, so skip special VMAs.
func PresentPages(pagemap *os.File, start, end uint64) ([]bool, error) {
	ents, err := PagemapEntries(pagemap, start, end)
	if err != nil {
		return nil, err
	}
	out := make([]bool, len(ents))
	for i, e := range ents {
		out[i] = e.Present() || e.Swapped()
	}
	return out, nil
}
