//go:build linux && amd64

package uapi

import "encoding/binary"

// SizeofEpollEvent is sizeof(struct epoll_event) on x86_64, where it is
// packed (EPOLL_PACKED, include/uapi/linux/eventpoll.h); ia32 has the
// same layout.
const SizeofEpollEvent = 12

// EpollEvent is struct epoll_event (include/uapi/linux/eventpoll.h), the
// argument of epoll_ctl(2). unix.EpollEvent splits data into Fd and Pad.
type EpollEvent struct {
	Events uint32
	Data   uint64
}

// Append appends the struct's SizeofEpollEvent bytes to b.
func (e EpollEvent) Append(b []byte) []byte {
	b = binary.LittleEndian.AppendUint32(b, e.Events)
	return binary.LittleEndian.AppendUint64(b, e.Data)
}

// Bytes returns the struct as epoll_ctl reads it.
func (e EpollEvent) Bytes() []byte { return e.Append(make([]byte, 0, SizeofEpollEvent)) }
