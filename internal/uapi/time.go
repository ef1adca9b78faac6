//go:build linux && amd64

package uapi

import (
	"encoding/binary"
	"fmt"
)

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

// Sizes of the itimer structs: struct __kernel_old_itimerval
// (include/uapi/linux/time_types.h), two struct __kernel_old_timeval of
// longs, and its ia32 form struct old_itimerval32
// (include/linux/time32.h), two struct old_timeval32 of s32.
const (
	SizeofItimerval   = 32
	SizeofItimerval32 = 16
)

// Timeval is struct __kernel_old_timeval (include/uapi/linux/time_types.h).
type Timeval struct {
	Sec  int64
	Usec int64
}

// Itimerval is the itimer value of getitimer(2) and setitimer(2): the
// interval first, then the time left.
type Itimerval struct {
	Interval Timeval
	Value    Timeval
}

// Bytes returns the struct as the kernel reads it: struct
// __kernel_old_itimerval, or with compat the ia32 struct
// old_itimerval32.
func (t Itimerval) Bytes(compat bool) []byte {
	var b []byte
	for _, v := range []int64{t.Interval.Sec, t.Interval.Usec, t.Value.Sec, t.Value.Usec} {
		if compat {
			b = binary.LittleEndian.AppendUint32(b, uint32(int32(v)))
		} else {
			b = binary.LittleEndian.AppendUint64(b, uint64(v))
		}
	}
	return b
}

// DecodeItimerval reads the struct Bytes writes.
func DecodeItimerval(b []byte, compat bool) (Itimerval, error) {
	var v [4]int64
	size := SizeofItimerval
	if compat {
		size = SizeofItimerval32
	}
	if len(b) < size {
		return Itimerval{}, fmt.Errorf("itimerval of %d bytes, want %d", len(b), size)
	}
	for i := range v {
		if compat {
			v[i] = int64(int32(binary.LittleEndian.Uint32(b[4*i:])))
		} else {
			v[i] = int64(binary.LittleEndian.Uint64(b[8*i:]))
		}
	}
	return Itimerval{Interval: Timeval{v[0], v[1]}, Value: Timeval{v[2], v[3]}}, nil
}

// DecodeItimerspec reads a struct __kernel_itimerspec.
func DecodeItimerspec(b []byte) (Itimerspec, error) {
	if len(b) < SizeofItimerspec {
		return Itimerspec{}, fmt.Errorf("itimerspec of %d bytes, want %d", len(b), SizeofItimerspec)
	}
	le := binary.LittleEndian
	return Itimerspec{
		Interval: Timespec{int64(le.Uint64(b)), int64(le.Uint64(b[8:]))},
		Value:    Timespec{int64(le.Uint64(b[16:])), int64(le.Uint64(b[24:]))},
	}, nil
}

// How a POSIX timer notifies (include/uapi/asm-generic/siginfo.h).
const (
	SIGEV_SIGNAL    = 0
	SIGEV_NONE      = 1
	SIGEV_THREAD    = 2
	SIGEV_THREAD_ID = 4
)

// SizeofSigevent is SIGEV_MAX_SIZE (include/uapi/asm-generic/siginfo.h).
const SizeofSigevent = 64

// Sigevent is struct sigevent (include/uapi/asm-generic/siginfo.h) of
// x86_64 as timer_create(2) reads it: sigev_value, sigev_signo,
// sigev_notify, then the union whose _tid is the target thread of
// SIGEV_THREAD_ID.
type Sigevent struct {
	Value  uint64
	Signo  int32
	Notify int32
	Tid    int32
}

// Bytes returns the struct as the kernel reads it.
func (s Sigevent) Bytes() []byte {
	b := make([]byte, SizeofSigevent)
	binary.LittleEndian.PutUint64(b, s.Value)
	binary.LittleEndian.PutUint32(b[8:], uint32(s.Signo))
	binary.LittleEndian.PutUint32(b[12:], uint32(s.Notify))
	binary.LittleEndian.PutUint32(b[16:], uint32(s.Tid))
	return b
}
