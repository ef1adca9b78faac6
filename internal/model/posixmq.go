//go:build linux && amd64

package model

import (
	"errors"
	"fmt"
	"strings"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/fdinfo"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/ckpt/ckpt/internal/image"
)

// POSIX message queues (mq_open). CRIU does not dump them and has no
// image for them, so ckpt keeps them in an image of its own,
// posix-mq.img (image.MagicPosixMQ), in CRIU's framing: IMG_COMMON, the
// magic, then one entry per queue, each a protobuf message behind its
// 32-bit size. Its schema, written and read here with protowire (no
// generated code; unknown fields are skipped, for later additions):
//
//	message posix_mq_entry {
//		uint32 id       = 1;  // ckpt's id of the queue, 1..n
//		string name     = 2;  // without the leading '/'
//		bool   unlinked = 3;  // mq_unlink'ed while open
//		uint32 mode     = 4;  // permission bits
//		uint32 uid      = 5;
//		uint32 gid      = 6;
//		uint64 maxmsg   = 7;  // mq_attr.mq_maxmsg
//		uint64 msgsize  = 8;  // mq_attr.mq_msgsize
//		bool   outside  = 9;  // held by a process outside the tree too:
//		                      // its messages are not saved, the
//		                      // restore opens it by name as it is
//		bool   own_ns   = 10; // in an IPC namespace of the tree
//		posix_mq_notify notify = 11;
//		repeated posix_mq_msg  msgs  = 12; // in the order mq_receive gives them
//		repeated posix_mq_file files = 13;
//	}
//	message posix_mq_notify { int32 notify = 1; uint32 signo = 2; uint32 pid = 3; uint64 value = 4; }
//	message posix_mq_msg    { uint32 prio = 1; bytes data = 2; }
//	message posix_mq_file   { uint32 id = 1; uint32 flags = 2; }
//
// In files.img each open file of a queue is an EXT entry (CRIU's type
// for files a plugin restores) whose id is a posix_mq_file's: CRIU
// refuses it for want of a plugin rather than taking it for something
// else, and crit shows it as an external file.

// PosixMQ is one POSIX message queue and the open files of the dump on
// it.
type PosixMQ struct {
	ID uint32
	// Name is the queue's name without its leading '/'.
	Name string
	// Unlinked: the queue was mq_unlink'ed; it exists only while open.
	Unlinked bool
	Mode     uint32
	UID, GID uint32
	MaxMsg   uint64
	MsgSize  uint64
	// Outside: a process outside the tree holds the queue open too.
	// Its messages are not saved (they stay in the live queue, which
	// the dump leaves alone): the restore opens the queue by name as
	// it then is.
	Outside bool
	// OwnNS: the queue is in an IPC namespace of the tree (made anew at
	// restore), not in ckpt's.
	OwnNS bool
	// Notify is the queue's mq_notify registration, or nil.
	Notify *MQNotify
	// Msgs are the queued messages, highest priority first, in the
	// order mq_receive gives them.
	Msgs []MQMsg
	// Files are the open files of the dump on the queue.
	Files []MQFile
}

// MQNotify is an mq_notify registration: how (SIGEV_*), the signal,
// its sigev_value (SIGEV_SIGNAL), and the process it is for (its PID in
// the dumping ckpt's PID namespace).
type MQNotify struct {
	Notify int32
	Signo  uint32
	Pid    uint32
	Value  uint64
}

// MQMsg is one queued message.
type MQMsg struct {
	Prio uint32
	Data []byte
}

// MQFile is an open file on a queue: its files.img id and its file
// status flags (access mode, O_NONBLOCK).
type MQFile struct {
	ID    uint32
	Flags uint32
}

// MQPrioMax is MQ_PRIO_MAX (include/uapi/linux/mqueue.h): priorities
// are below it.
const MQPrioMax = 32768

// maxMQMsgSize is the kernel's HARD_MSGSIZEMAX, the largest
// mq_msgsize (include/linux/ipc_namespace.h); 65536 is its HARD_MSGMAX.
const maxMQMsgSize = 16 << 20

// AddPosixMQ adds q to the dump under the next queue id and returns it.
func (d *Dump) AddPosixMQ(q *PosixMQ) *PosixMQ {
	q.ID = uint32(len(d.PosixMQs) + 1)
	d.PosixMQs = append(d.PosixMQs, q)
	return q
}

// PosixMQFile finds the queue that file id of files.img is open on.
func (d *Dump) PosixMQFile(id uint32) (*PosixMQ, MQFile, bool) {
	for _, q := range d.PosixMQs {
		for _, f := range q.Files {
			if f.ID == id {
				return q, f, true
			}
		}
	}
	return nil, MQFile{}, false
}

// Field numbers of posix_mq_entry and its messages (see above).
const (
	mqID, mqName, mqUnlinked, mqMode, mqUID, mqGID, mqMaxmsg, mqMsgsize, mqOutside, mqOwnNS, mqNotify, mqMsgs, mqFiles protowire.Number = 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13
)

func appendUint(b []byte, n protowire.Number, v uint64) []byte {
	b = protowire.AppendTag(b, n, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func appendBool(b []byte, n protowire.Number, v bool) []byte {
	if !v {
		return b
	}
	return appendUint(b, n, 1)
}

func appendBytes(b []byte, n protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, n, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

// EncodePosixMQ encodes q as a posix_mq_entry.
func EncodePosixMQ(q *PosixMQ) []byte {
	var b []byte
	b = appendUint(b, mqID, uint64(q.ID))
	b = appendBytes(b, mqName, []byte(q.Name))
	b = appendBool(b, mqUnlinked, q.Unlinked)
	b = appendUint(b, mqMode, uint64(q.Mode))
	b = appendUint(b, mqUID, uint64(q.UID))
	b = appendUint(b, mqGID, uint64(q.GID))
	b = appendUint(b, mqMaxmsg, q.MaxMsg)
	b = appendUint(b, mqMsgsize, q.MsgSize)
	b = appendBool(b, mqOutside, q.Outside)
	b = appendBool(b, mqOwnNS, q.OwnNS)
	if n := q.Notify; n != nil {
		var m []byte
		m = appendUint(m, 1, uint64(uint32(n.Notify)))
		m = appendUint(m, 2, uint64(n.Signo))
		m = appendUint(m, 3, uint64(n.Pid))
		m = appendUint(m, 4, n.Value)
		b = appendBytes(b, mqNotify, m)
	}
	for _, msg := range q.Msgs {
		var m []byte
		m = appendUint(m, 1, uint64(msg.Prio))
		m = appendBytes(m, 2, msg.Data)
		b = appendBytes(b, mqMsgs, m)
	}
	for _, f := range q.Files {
		var m []byte
		m = appendUint(m, 1, uint64(f.ID))
		m = appendUint(m, 2, uint64(f.Flags))
		b = appendBytes(b, mqFiles, m)
	}
	return b
}

var errMQ = errors.New("posix_mq_entry")

// walkFields calls fn for each field of raw: its number, and its value
// (a varint, or bytes of a length-delimited field); other wire types
// are skipped.
func walkFields(raw []byte, fn func(n protowire.Number, v uint64, b []byte, bytes bool) error) error {
	for len(raw) > 0 {
		n, typ, l := protowire.ConsumeTag(raw)
		if l < 0 {
			return fmt.Errorf("%w: %w: bad tag: %v", image.ErrCorrupt, errMQ, protowire.ParseError(l))
		}
		raw = raw[l:]
		switch typ {
		case protowire.VarintType:
			v, m := protowire.ConsumeVarint(raw)
			if m < 0 {
				return fmt.Errorf("%w: %w: field %d: %v", image.ErrCorrupt, errMQ, n, protowire.ParseError(m))
			}
			raw = raw[m:]
			if err := fn(n, v, nil, false); err != nil {
				return err
			}
		case protowire.BytesType:
			v, m := protowire.ConsumeBytes(raw)
			if m < 0 {
				return fmt.Errorf("%w: %w: field %d: %v", image.ErrCorrupt, errMQ, n, protowire.ParseError(m))
			}
			raw = raw[m:]
			if err := fn(n, 0, v, true); err != nil {
				return err
			}
		default:
			m := protowire.ConsumeFieldValue(n, typ, raw)
			if m < 0 {
				return fmt.Errorf("%w: %w: field %d: %v", image.ErrCorrupt, errMQ, n, protowire.ParseError(m))
			}
			raw = raw[m:]
		}
	}
	return nil
}

// wireType checks that field n came with the wire type its schema has.
func wireType(n protowire.Number, isBytes, want bool) error {
	if isBytes != want {
		return fmt.Errorf("%w: %w: field %d has the wrong wire type", image.ErrCorrupt, errMQ, n)
	}
	return nil
}

func u32(n protowire.Number, v uint64) (uint32, error) {
	if v > 1<<32-1 {
		return 0, fmt.Errorf("%w: %w: field %d: %d is not a 32-bit value", image.ErrCorrupt, errMQ, n, v)
	}
	return uint32(v), nil
}

// DecodePosixMQ decodes and checks a posix_mq_entry: a malformed or
// inconsistent one is an error wrapping image.ErrCorrupt.
func DecodePosixMQ(raw []byte) (*PosixMQ, error) {
	q := &PosixMQ{}
	err := walkFields(raw, func(n protowire.Number, v uint64, b []byte, isBytes bool) error {
		var err error
		switch n {
		case mqName:
			if err = wireType(n, isBytes, true); err == nil {
				q.Name = string(b)
			}
		case mqNotify, mqMsgs, mqFiles:
			if err = wireType(n, isBytes, true); err != nil {
				return err
			}
			var vals [4]uint64
			var data []byte
			err = walkFields(b, func(k protowire.Number, v uint64, b []byte, isBytes bool) error {
				if k == 2 && n == mqMsgs {
					data = b
					return wireType(k, isBytes, true)
				}
				if k >= 1 && k <= 4 {
					vals[k-1] = v
					return wireType(k, isBytes, false)
				}
				return nil
			})
			if err != nil {
				return err
			}
			switch n {
			case mqNotify:
				q.Notify = &MQNotify{Notify: int32(uint32(vals[0])), Value: vals[3]}
				if q.Notify.Signo, err = u32(2, vals[1]); err == nil {
					q.Notify.Pid, err = u32(3, vals[2])
				}
			case mqMsgs:
				var p uint32
				if p, err = u32(1, vals[0]); err == nil {
					q.Msgs = append(q.Msgs, MQMsg{Prio: p, Data: append([]byte(nil), data...)})
				}
			case mqFiles:
				var f MQFile
				if f.ID, err = u32(1, vals[0]); err == nil {
					f.Flags, err = u32(2, vals[1])
				}
				q.Files = append(q.Files, f)
			}
		default:
			if err = wireType(n, isBytes, false); err != nil {
				if n > mqFiles {
					return nil // a later field of another type
				}
				return err
			}
			switch n {
			case mqID:
				q.ID, err = u32(n, v)
			case mqUnlinked:
				q.Unlinked = v != 0
			case mqMode:
				q.Mode, err = u32(n, v)
			case mqUID:
				q.UID, err = u32(n, v)
			case mqGID:
				q.GID, err = u32(n, v)
			case mqMaxmsg:
				q.MaxMsg = v
			case mqMsgsize:
				q.MsgSize = v
			case mqOutside:
				q.Outside = v != 0
			case mqOwnNS:
				q.OwnNS = v != 0
			}
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := q.check(); err != nil {
		return nil, fmt.Errorf("%w: %w: queue %d (/%s): %w", image.ErrCorrupt, errMQ, q.ID, q.Name, err)
	}
	return q, nil
}

// check tells whether q could be a queue the kernel holds.
func (q *PosixMQ) check() error {
	switch {
	case q.ID == 0:
		return errors.New("no id")
	case q.Name == "" || strings.ContainsAny(q.Name, "/\x00") || len(q.Name) > 255:
		return fmt.Errorf("bad name %q", q.Name)
	case q.MaxMsg == 0 || q.MaxMsg > 65536:
		return fmt.Errorf("mq_maxmsg %d", q.MaxMsg)
	case q.MsgSize == 0 || q.MsgSize > maxMQMsgSize:
		return fmt.Errorf("mq_msgsize %d", q.MsgSize)
	case uint64(len(q.Msgs)) > q.MaxMsg:
		return fmt.Errorf("%d messages, mq_maxmsg %d", len(q.Msgs), q.MaxMsg)
	case len(q.Files) == 0:
		return errors.New("no open file")
	case q.Mode&^0o777 != 0:
		return fmt.Errorf("mode %#o", q.Mode)
	}
	for i, m := range q.Msgs {
		if m.Prio >= MQPrioMax {
			return fmt.Errorf("message %d: priority %d", i, m.Prio)
		}
		if uint64(len(m.Data)) > q.MsgSize {
			return fmt.Errorf("message %d: %d bytes, mq_msgsize %d", i, len(m.Data), q.MsgSize)
		}
		if i > 0 && m.Prio > q.Msgs[i-1].Prio {
			return fmt.Errorf("message %d: priority %d after %d (not in receive order)", i, m.Prio, q.Msgs[i-1].Prio)
		}
	}
	for _, f := range q.Files {
		if f.ID == 0 {
			return errors.New("an open file without id")
		}
	}
	if n := q.Notify; n != nil && (n.Notify != 0 && n.Notify != 1 || n.Signo > 64 || n.Pid == 0) {
		return fmt.Errorf("notification %+v", *n)
	}
	if q.Outside && (q.Unlinked || q.OwnNS || len(q.Msgs) > 0) {
		return errors.New("held outside the tree, yet unlinked, in a namespace of the tree, or with messages saved")
	}
	return nil
}

// writePosixMQs writes posix-mq.img.
func (d *Dump) writePosixMQs() error {
	msgs := make([]proto.Message, len(d.PosixMQs))
	for i, q := range d.PosixMQs {
		// An entry is raw bytes: a message without fields of its own
		// that carries them as unknown fields, which Marshal writes
		// as they are.
		e := &emptypb.Empty{}
		e.ProtoReflect().SetUnknown(EncodePosixMQ(q))
		msgs[i] = e
	}
	return d.Dir.Write(image.PosixMQName(), image.MagicPosixMQ, msgs...)
}

// loadPosixMQs reads posix-mq.img, if the dump has one, and checks that
// ids are unique and every file of a queue is an EXT entry of files.img.
func (d *Dump) loadPosixMQs() error {
	if !d.exists(image.PosixMQName()) {
		return nil
	}
	ents, err := d.Dir.ReadRaw(image.PosixMQName(), image.MagicPosixMQ)
	if err != nil {
		return err
	}
	qs, err := decodePosixMQs(ents)
	if err != nil {
		return fmt.Errorf("image %s: %w", image.PosixMQName(), err)
	}
	for _, q := range qs {
		for _, f := range q.Files {
			if e := d.Files[f.ID]; e == nil || e.GetType() != fdinfo.FdTypes_EXT {
				return fmt.Errorf("image %s: queue %d (/%s): %w: file %d is not an EXT entry of %s", image.PosixMQName(), q.ID, q.Name, image.ErrCorrupt, f.ID, image.FilesName())
			}
		}
	}
	d.PosixMQs = qs
	return nil
}

// decodePosixMQs decodes the entries of posix-mq.img and checks that
// queue ids and file ids are unique.
func decodePosixMQs(ents [][]byte) ([]*PosixMQ, error) {
	var qs []*PosixMQ
	ids, files := map[uint32]bool{}, map[uint32]bool{}
	for i, raw := range ents {
		q, err := DecodePosixMQ(raw)
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
		if ids[q.ID] {
			return nil, fmt.Errorf("entry %d: %w: queue id %d twice", i, image.ErrCorrupt, q.ID)
		}
		ids[q.ID] = true
		for _, f := range q.Files {
			if files[f.ID] {
				return nil, fmt.Errorf("entry %d: %w: file %d on two queues", i, image.ErrCorrupt, f.ID)
			}
			files[f.ID] = true
		}
		qs = append(qs, q)
	}
	return qs, nil
}
