//go:build linux && amd64

package uapi

import "encoding/binary"

// POSIX message queues (mq_overview(7)).

// struct mq_attr (include/uapi/linux/mqueue.h): mq_flags, mq_maxmsg,
// mq_msgsize, mq_curmsgs and four reserved longs: 8 bytes each on
// x86_64, 4 in ia32's struct compat_mq_attr (ipc/mqueue.c).
const (
	SizeofMqAttr       = 8 * 8
	SizeofCompatMqAttr = 8 * 4
)

// MqAttr is struct mq_attr without its reserved words.
type MqAttr struct {
	Flags, Maxmsg, Msgsize, Curmsgs int64
}

// Bytes returns the struct as the kernel reads it, x86_64's or, with
// compat, ia32's compat_mq_attr.
func (a MqAttr) Bytes(compat bool) []byte {
	if compat {
		b := make([]byte, SizeofCompatMqAttr)
		for i, v := range []int64{a.Flags, a.Maxmsg, a.Msgsize, a.Curmsgs} {
			binary.LittleEndian.PutUint32(b[4*i:], uint32(v))
		}
		return b
	}
	b := make([]byte, SizeofMqAttr)
	for i, v := range []int64{a.Flags, a.Maxmsg, a.Msgsize, a.Curmsgs} {
		binary.LittleEndian.PutUint64(b[8*i:], uint64(v))
	}
	return b
}

// ParseMqAttr reads an x86_64 struct mq_attr.
func ParseMqAttr(b []byte) MqAttr {
	le := binary.LittleEndian
	return MqAttr{int64(le.Uint64(b)), int64(le.Uint64(b[8:])), int64(le.Uint64(b[16:])), int64(le.Uint64(b[24:]))}
}

// CompatBytes returns the sigevent as ia32's struct compat_sigevent
// (include/linux/compat.h): a 32-bit sigev_value, sigev_signo,
// sigev_notify, then the union (its _tid), 64 bytes in all.
func (s Sigevent) CompatBytes() []byte {
	b := make([]byte, SizeofSigevent)
	binary.LittleEndian.PutUint32(b, uint32(s.Value))
	binary.LittleEndian.PutUint32(b[4:], uint32(s.Signo))
	binary.LittleEndian.PutUint32(b[8:], uint32(s.Notify))
	binary.LittleEndian.PutUint32(b[12:], uint32(s.Tid))
	return b
}

// SI_MESGQ is the si_code of a message queue's notification
// (include/uapi/asm-generic/siginfo.h).
const SI_MESGQ = -3

// Offsets in siginfo_t (include/uapi/asm-generic/siginfo.h) of si_code
// and of the _rt member's si_value: after si_signo, si_errno, si_code
// and (x86_64) 4 bytes of padding, the union starts with si_pid and
// si_uid. SizeofSiginfo is SI_MAX_SIZE.
const (
	SiginfoCode        = 8
	SiginfoValue       = 24
	CompatSiginfoValue = 20
	SizeofSiginfo      = 128
)

// System calls that block on a full POSIX message queue: mq_timedsend
// on x86_64 (syscall_64.tbl) and on ia32 (syscall_32.tbl, with
// mq_timedsend_time64).
const (
	NR_mq_timedsend          = 242
	NR32_mq_timedsend        = 279
	NR32_mq_timedsend_time64 = 418
)

// System calls that wait for a message on an empty POSIX message queue:
// mq_timedreceive on x86_64 and ia32 (and mq_timedreceive_time64).
const (
	NR_mq_timedreceive          = 243
	NR32_mq_timedreceive        = 280
	NR32_mq_timedreceive_time64 = 419
)
