//go:build linux && amd64

package uapi

import (
	"encoding/binary"
	"fmt"
)

// Protocol-independent multicast requests (include/uapi/linux/in.h,
// RFC 3678), as a 64-bit process passes them: struct group_req for
// MCAST_JOIN_GROUP, struct group_filter for MCAST_MSFILTER. Both hold
// struct __kernel_sockaddr_storage (128 bytes, 8-byte aligned on x86_64,
// include/uapi/linux/socket.h), so the group starts at offset 8.
const (
	SizeofSockaddrStorage = 128
	// SizeofGroupReq is sizeof(struct group_req): gr_interface (u32),
	// padding, gr_group.
	SizeofGroupReq = 8 + SizeofSockaddrStorage
	// GroupFilterHdr is GROUP_FILTER_SIZE(0): gf_interface (u32),
	// padding, gf_group, gf_fmode (u32), gf_numsrc (u32); gf_slist
	// follows, one sockaddr_storage per source.
	GroupFilterHdr = 8 + SizeofSockaddrStorage + 4 + 4

	afInet  = 2
	afInet6 = 10
)

// GroupFilterSize is GROUP_FILTER_SIZE(n).
func GroupFilterSize(n int) int { return GroupFilterHdr + n*SizeofSockaddrStorage }

// putStorage writes an IPv4 (4 bytes) or IPv6 (16 bytes) address, port 0,
// as struct sockaddr_in or sockaddr_in6 into b (a sockaddr_storage).
func putStorage(b, addr []byte) error {
	switch len(addr) {
	case 4:
		binary.LittleEndian.PutUint16(b, afInet)
		copy(b[4:8], addr)
	case 16:
		binary.LittleEndian.PutUint16(b, afInet6)
		copy(b[8:24], addr)
	default:
		return fmt.Errorf("address of %d bytes", len(addr))
	}
	return nil
}

// storageAddr reads the address of a sockaddr_in or sockaddr_in6 in b.
func storageAddr(b []byte) ([]byte, error) {
	switch f := binary.LittleEndian.Uint16(b); f {
	case afInet:
		return append([]byte(nil), b[4:8]...), nil
	case afInet6:
		return append([]byte(nil), b[8:24]...), nil
	default:
		return nil, fmt.Errorf("address family %d", f)
	}
}

// GroupReq is struct group_req for group (4 or 16 bytes) on interface
// ifindex.
func GroupReq(ifindex uint32, group []byte) ([]byte, error) {
	b := make([]byte, SizeofGroupReq)
	binary.LittleEndian.PutUint32(b, ifindex)
	return b, putStorage(b[8:], group)
}

// GroupFilter is struct group_filter with the sources srcs.
func GroupFilter(ifindex uint32, group []byte, fmode uint32, srcs [][]byte) ([]byte, error) {
	b := make([]byte, GroupFilterSize(len(srcs)))
	binary.LittleEndian.PutUint32(b, ifindex)
	if err := putStorage(b[8:], group); err != nil {
		return nil, err
	}
	binary.LittleEndian.PutUint32(b[GroupFilterHdr-8:], fmode)
	binary.LittleEndian.PutUint32(b[GroupFilterHdr-4:], uint32(len(srcs)))
	for i, s := range srcs {
		if err := putStorage(b[GroupFilterSize(i):], s); err != nil {
			return nil, fmt.Errorf("source %d: %w", i, err)
		}
	}
	return b, nil
}

// ParseGroupFilter reads what getsockopt(MCAST_MSFILTER) left in b: the
// filter mode, the number of sources the filter has (gf_numsrc, which
// may be more than b holds) and the sources b holds.
func ParseGroupFilter(b []byte) (fmode uint32, numsrc int, srcs [][]byte, err error) {
	if len(b) < GroupFilterHdr {
		return 0, 0, nil, fmt.Errorf("group_filter of %d bytes", len(b))
	}
	fmode = binary.LittleEndian.Uint32(b[GroupFilterHdr-8:])
	numsrc = int(binary.LittleEndian.Uint32(b[GroupFilterHdr-4:]))
	for i := 0; i < numsrc && GroupFilterSize(i+1) <= len(b); i++ {
		a, err := storageAddr(b[GroupFilterSize(i):])
		if err != nil {
			return 0, 0, nil, fmt.Errorf("source %d: %w", i, err)
		}
		srcs = append(srcs, a)
	}
	return fmode, numsrc, srcs, nil
}
