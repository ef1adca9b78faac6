//go:build linux && amd64

package uapi

import "encoding/binary"

// Sizes of the time structs (include/uapi/linux/time_types.h).
const (
	SizeofTimespec   = 16
	SizeofItimerspec = 32
)

// Timespec is struct __kernel_timespec (include/uapi/linux/time_types.h),
// the struct timespec of x86_64.
type Timespec struct {
	Sec  int64
	Nsec int64
}

// Append appends the struct's SizeofTimespec bytes to b.
func (t Timespec) Append(b []byte) []byte {
	b = binary.LittleEndian.AppendUint64(b, uint64(t.Sec))
	return binary.LittleEndian.AppendUint64(b, uint64(t.Nsec))
}

// Itimerspec is struct __kernel_itimerspec
// (include/uapi/linux/time_types.h), the struct itimerspec that
// timerfd_settime(2) and timer_settime(2) take on x86_64.
type Itimerspec struct {
	Interval Timespec
	Value    Timespec
}

// Append appends the struct's SizeofItimerspec bytes to b.
func (t Itimerspec) Append(b []byte) []byte { return t.Value.Append(t.Interval.Append(b)) }

// Bytes returns the struct as the kernel reads it.
func (t Itimerspec) Bytes() []byte { return t.Append(make([]byte, 0, SizeofItimerspec)) }

// TFD_IOC_SET_TICKS is _IOW('T', 0, __u64) (include/uapi/linux/timerfd.h):
// the ioctl that sets a timerfd's expirations not yet read.
const TFD_IOC_SET_TICKS = iocWrite<<30 | 8<<16 | 'T'<<8 | 0

// iocWrite is _IOC_WRITE (include/uapi/asm-generic/ioctl.h).
const iocWrite = 1
