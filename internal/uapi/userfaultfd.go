//go:build linux && amd64

package uapi

import (
	"encoding/binary"
	"unsafe"
)

// userfaultfd(2) and its ioctls (include/uapi/linux/userfaultfd.h,
// Documentation/admin-guide/mm/userfaultfd.rst).

// UFFD_API is the API version UFFDIO_API asks for.
const UFFD_API = 0xAA

// UFFD_USER_MODE_ONLY is the flag of userfaultfd(2) that limits it to
// faults from user space (not used by a lazy restore: the kernel's own
// writes into a restored task's memory, rseq's cpu_id say, must be
// served too; used by write tracking, whose asynchronous protection the
// kernel resolves before that check).
const UFFD_USER_MODE_ONLY = 1

// Features asked for in uffdio_api.features.
const (
	UFFD_FEATURE_PAGEFAULT_FLAG_WP = 1 << 0
	UFFD_FEATURE_EVENT_FORK        = 1 << 1
	UFFD_FEATURE_EVENT_REMAP       = 1 << 2
	UFFD_FEATURE_EVENT_REMOVE      = 1 << 3
	UFFD_FEATURE_MISSING_HUGETLBFS = 1 << 4
	UFFD_FEATURE_MISSING_SHMEM     = 1 << 5
	UFFD_FEATURE_EVENT_UNMAP       = 1 << 6
	UFFD_FEATURE_SIGBUS            = 1 << 7
	UFFD_FEATURE_THREAD_ID         = 1 << 8
)

// uffd_msg.event values.
const (
	UFFD_EVENT_PAGEFAULT = 0x12
	UFFD_EVENT_FORK      = 0x13
	UFFD_EVENT_REMAP     = 0x14
	UFFD_EVENT_REMOVE    = 0x15
	UFFD_EVENT_UNMAP     = 0x16
)

// UFFD_PAGEFAULT_FLAG_WRITE is set in uffd_msg.arg.pagefault.flags for a
// write fault.
const UFFD_PAGEFAULT_FLAG_WRITE = 1 << 0

// UFFDIO_REGISTER_MODE_MISSING registers a range for faults on pages
// that are not there.
const UFFDIO_REGISTER_MODE_MISSING = 1 << 0

// The ioctls: _IOWR/_IOR(UFFDIO = 0xAA, nr, struct), computed from the
// struct sizes below (asm-generic/ioctl.h: dir<<30 | size<<16 | type<<8 | nr).
const (
	UFFDIO_API        = 3<<30 | SizeofUffdioAPI<<16 | 0xAA<<8 | 0x3F
	UFFDIO_REGISTER   = 3<<30 | SizeofUffdioRegister<<16 | 0xAA<<8 | 0x00
	UFFDIO_UNREGISTER = 2<<30 | SizeofUffdioRange<<16 | 0xAA<<8 | 0x01
	UFFDIO_WAKE       = 2<<30 | SizeofUffdioRange<<16 | 0xAA<<8 | 0x02
	UFFDIO_COPY       = 3<<30 | SizeofUffdioCopy<<16 | 0xAA<<8 | 0x03
	UFFDIO_ZEROPAGE   = 3<<30 | SizeofUffdioZeropage<<16 | 0xAA<<8 | 0x04
)

// UffdioAPI is struct uffdio_api.
type UffdioAPI struct {
	API      uint64
	Features uint64
	Ioctls   uint64
}

// UffdioRange is struct uffdio_range.
type UffdioRange struct {
	Start uint64
	Len   uint64
}

// UffdioRegister is struct uffdio_register.
type UffdioRegister struct {
	Range  UffdioRange
	Mode   uint64
	Ioctls uint64
}

// UffdioCopy is struct uffdio_copy: Copy is what the kernel copied, or
// a negative errno.
type UffdioCopy struct {
	Dst  uint64
	Src  uint64
	Len  uint64
	Mode uint64
	Copy int64
}

// UffdioZeropage is struct uffdio_zeropage.
type UffdioZeropage struct {
	Range    UffdioRange
	Mode     uint64
	Zeropage int64
}

// Struct sizes (the same for every ABI: only __u64 fields).
const (
	SizeofUffdioAPI      = 24
	SizeofUffdioRange    = 16
	SizeofUffdioRegister = 32
	SizeofUffdioCopy     = 40
	SizeofUffdioZeropage = 32
	// SizeofUffdMsg is struct uffd_msg (__packed): event (u8), three
	// reserved fields, then a 24-byte union.
	SizeofUffdMsg = 32
)

var (
	_ [SizeofUffdioAPI]byte      = [unsafe.Sizeof(UffdioAPI{})]byte{}
	_ [SizeofUffdioRegister]byte = [unsafe.Sizeof(UffdioRegister{})]byte{}
	_ [SizeofUffdioCopy]byte     = [unsafe.Sizeof(UffdioCopy{})]byte{}
	_ [SizeofUffdioZeropage]byte = [unsafe.Sizeof(UffdioZeropage{})]byte{}
)

// UffdMsg is a decoded struct uffd_msg. Which of the fields mean
// something depends on Event:
//   - PAGEFAULT: Flags, Address (and Ptid with UFFD_FEATURE_THREAD_ID);
//   - FORK: Ufd, the new userfaultfd, installed in the reader's fd table;
//   - REMAP: From, To, Len;
//   - REMOVE and UNMAP: Start, End.
type UffdMsg struct {
	Event          uint8
	Flags, Address uint64
	Ptid           uint32
	Ufd            uint32
	From, To, Len  uint64
	Start, End     uint64
}

// ParseUffdMsg decodes one struct uffd_msg of b (SizeofUffdMsg bytes).
func ParseUffdMsg(b []byte) UffdMsg {
	le := binary.LittleEndian
	a := b[8:32]
	m := UffdMsg{Event: b[0]}
	switch m.Event {
	case UFFD_EVENT_PAGEFAULT:
		m.Flags, m.Address, m.Ptid = le.Uint64(a), le.Uint64(a[8:]), le.Uint32(a[16:])
	case UFFD_EVENT_FORK:
		m.Ufd = le.Uint32(a)
	case UFFD_EVENT_REMAP:
		m.From, m.To, m.Len = le.Uint64(a), le.Uint64(a[8:]), le.Uint64(a[16:])
	case UFFD_EVENT_REMOVE, UFFD_EVENT_UNMAP:
		m.Start, m.End = le.Uint64(a), le.Uint64(a[8:])
	}
	return m
}
