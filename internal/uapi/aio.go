//go:build linux && amd64

package uapi

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// AIO ring facts, from fs/aio.c (struct aio_ring, AIO_RING_MAGIC) and
// include/uapi/linux/aio_abi.h (struct iocb, struct io_event). The ring
// is the same for native and ia32 tasks: its fields are fixed-width.
const (
	// AIO_RING_MAGIC is aio_ring.magic.
	AIO_RING_MAGIC = 0xa10a10a1
	// AIORingHeaderSize is sizeof(struct aio_ring) before io_events[].
	AIORingHeaderSize = 32
	// IOEventSize is sizeof(struct io_event): data, obj, res, res2.
	IOEventSize = 32
	// IOCBSize is sizeof(struct iocb).
	IOCBSize = 64
	// IOCB_CMD_PWRITE is enum iocb opcode 1.
	IOCB_CMD_PWRITE = 1
	// AIORingHeadOffset is the offset of aio_ring.head, the one field
	// user space writes (to reap events without io_getevents).
	AIORingHeadOffset = 8
)

// AIORing is the user-visible header of an AIO ring (struct aio_ring in
// fs/aio.c): the kernel maps it at the address that is the context id.
type AIORing struct {
	ID, Nr, Head, Tail, Magic     uint32
	CompatFeatures, IncompatFeats uint32
	HeaderLength                  uint32
}

// ErrAIORing is returned for a ring header that is not one.
var ErrAIORing = errors.New("not an AIO ring")

// ParseAIORing decodes the header of a ring of ringLen bytes and checks
// it: magic, header length, nr matching the ring's size (the kernel
// fills whole pages with events), head and tail inside the ring.
func ParseAIORing(b []byte, ringLen uint64) (AIORing, error) {
	if len(b) < AIORingHeaderSize {
		return AIORing{}, fmt.Errorf("%w: %d bytes of header", ErrAIORing, len(b))
	}
	u := func(i int) uint32 { return binary.LittleEndian.Uint32(b[4*i:]) }
	r := AIORing{ID: u(0), Nr: u(1), Head: u(2), Tail: u(3), Magic: u(4),
		CompatFeatures: u(5), IncompatFeats: u(6), HeaderLength: u(7)}
	switch {
	case r.Magic != AIO_RING_MAGIC:
		return r, fmt.Errorf("%w: magic %#x", ErrAIORing, r.Magic)
	case r.HeaderLength != AIORingHeaderSize:
		return r, fmt.Errorf("%w: header length %d", ErrAIORing, r.HeaderLength)
	case ringLen < AIORingHeaderSize || uint64(r.Nr) != AIORingEvents(ringLen):
		return r, fmt.Errorf("%w: %d events in %d bytes", ErrAIORing, r.Nr, ringLen)
	case r.Head >= r.Nr || r.Tail >= r.Nr:
		return r, fmt.Errorf("%w: head %d, tail %d of %d events", ErrAIORing, r.Head, r.Tail, r.Nr)
	}
	return r, nil
}

// AIORingEvents is how many events a ring of ringLen bytes holds
// (aio_setup_ring: the events fill the pages after the header).
func AIORingEvents(ringLen uint64) uint64 {
	if ringLen < AIORingHeaderSize {
		return 0
	}
	return (ringLen - AIORingHeaderSize) / IOEventSize
}

// AIONrEvents is the nr_events to pass io_setup for a ring of ringLen
// bytes again (CRIU's aio_estimate_nr_reqs, the same value it writes as
// aio_ring_entry.nr_req). ioctx_alloc takes max(nr, 4*possible CPUs),
// doubles it, adds 2 and rounds the ring up to whole pages, so half of
// (events - 2) gives back the same ring wherever 4*CPUs is not larger.
func AIONrEvents(ringLen uint64) uint32 {
	n := AIORingEvents(ringLen)
	if n < 2 {
		return 0
	}
	return uint32((n - 2) / 2)
}

// Unreaped is how many events lie between head and tail.
func (r AIORing) Unreaped() uint32 {
	if r.Nr == 0 {
		return 0
	}
	return (r.Tail + r.Nr - r.Head) % r.Nr
}

// AppendIOCB appends a struct iocb (aio_abi.h, little endian: aio_key
// before aio_rw_flags) for opcode on fd of n bytes at buf.
func AppendIOCB(b []byte, data uint64, opcode uint16, fd uint32, buf, n uint64, off int64) []byte {
	var c [IOCBSize]byte
	binary.LittleEndian.PutUint64(c[0:], data)
	binary.LittleEndian.PutUint16(c[16:], opcode)
	binary.LittleEndian.PutUint32(c[20:], fd)
	binary.LittleEndian.PutUint64(c[24:], buf)
	binary.LittleEndian.PutUint64(c[32:], n)
	binary.LittleEndian.PutUint64(c[40:], uint64(off))
	return append(b, c[:]...)
}

// Hugetlb page sizes in mmap flags (include/uapi/asm-generic/
// hugetlb_encode.h): log2 of the size at bit MAP_HUGE_SHIFT.
const (
	MAP_HUGE_SHIFT = 26
	MAP_HUGE_MASK  = 0x3f
)

// MapHugeFlag returns the MAP_HUGE_* bits for a page size (a power of
// two), or 0 for another size.
func MapHugeFlag(pageSize uint64) uint32 {
	if pageSize == 0 || pageSize&(pageSize-1) != 0 {
		return 0
	}
	shift := uint32(0)
	for pageSize > 1 {
		pageSize >>= 1
		shift++
	}
	return shift << MAP_HUGE_SHIFT
}

// MapHugeSize returns the page size the MAP_HUGE_* bits of flags name
// (0 when none: the system's default huge page size).
func MapHugeSize(flags uint32) uint64 {
	shift := (flags >> MAP_HUGE_SHIFT) & MAP_HUGE_MASK
	if shift == 0 {
		return 0
	}
	return 1 << shift
}
