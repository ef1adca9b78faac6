//go:build linux && amd64

package model

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/fdinfo"
	ipcdesc "github.com/checkpoint-restore/go-criu/v8/crit/images/ipc-desc"
	ipcmsg "github.com/checkpoint-restore/go-criu/v8/crit/images/ipc-msg"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/image"
)

// POSIX message queues (mq_open). CRIU does not dump them and has no
// image for them. ckpt keeps them in posix-mq.img, an image of its own
// in the format of CRIU's SysV message-queue image (IPCNS_MSG, as
// ipcns-msg-ID.img; images/ipc-msg.proto, ipc-desc.proto), which crit
// decodes by its magic: per queue an ipc_msg_entry, then for each of
// its qnum messages an ipc_msg behind its 32-bit size and the message's
// bytes padded to 8, as CRIU writes a SysV queue (criu/ipc_ns.c). A
// queue maps onto it so:
//
//	ipc_msg_entry.desc  key 0, uid, gid, cuid = uid, cgid = gid,
//	                    mode (permission bits), id = ckpt's id of the
//	                    queue (1..n)
//	ipc_msg_entry.qbytes  mq_maxmsg * mq_msgsize, at most 2^32-1 (the
//	                    bytes the queue can hold, as msg_qbytes is for
//	                    a SysV queue)
//	ipc_msg_entry.qnum  the number of messages saved
//	ipc_msg.mtype       a message's priority
//	ipc_msg.msize       its length
//
// in the order mq_receive gives them (highest priority first). The rest
// is in fields of ckpt's own in ipc_msg_entry, numbered far above any
// CRIU uses (CRIU and crit skip them), written and read with protowire:
//
//	string name     = 170200; // without the leading '/'
//	bool   unlinked = 170201; // mq_unlink'ed while open
//	uint64 maxmsg   = 170202; // mq_attr.mq_maxmsg
//	uint64 msgsize  = 170203; // mq_attr.mq_msgsize
//	bool   outside  = 170204; // held by a process outside the tree too:
//	                          // its messages are not saved, the
//	                          // restore opens it by name as it is
//	bool   own_ns   = 170205; // in an IPC namespace of the tree
//	posix_mq_notify notify      = 170206;
//	repeated posix_mq_file files = 170207;
//
//	message posix_mq_notify { int32 notify = 1; uint32 signo = 2; uint32 pid = 3; uint64 value = 4; }
//	message posix_mq_file   { uint32 id = 1; uint32 flags = 2; }
//
// CRIU reads SysV queues from ipcns-msg-ID.img only, never from
// posix-mq.img (a name it does not know), so the image cannot be taken
// for a SysV queue. In files.img each open file of a queue is an EXT
// entry (CRIU's type for files a plugin restores) whose id is a
// posix_mq_file's: CRIU refuses it for want of a plugin rather than
// taking it for something else, and crit shows it as an external file.

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

// Field numbers of ckpt's own fields in ipc_msg_entry (see above).
const (
	mqName     protowire.Number = 170200
	mqUnlinked protowire.Number = 170201
	mqMaxmsg   protowire.Number = 170202
	mqMsgsize  protowire.Number = 170203
	mqOutside  protowire.Number = 170204
	mqOwnNS    protowire.Number = 170205
	mqNotify   protowire.Number = 170206
	mqFiles    protowire.Number = 170207
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

// mqQbytes is ipc_msg_entry.qbytes of q: the bytes it can hold, capped
// to the field's 32 bits.
func mqQbytes(q *PosixMQ) uint32 {
	if q.MsgSize != 0 && q.MaxMsg > math.MaxUint32/q.MsgSize {
		return math.MaxUint32
	}
	return uint32(q.MaxMsg * q.MsgSize)
}

// EncodePosixMQ returns the entries of q in posix-mq.img: its
// ipc_msg_entry, then an ipc_msg per message, each with the raw bytes
// that follow it (none after the ipc_msg_entry; a message's bytes
// padded to 8 after its ipc_msg).
func EncodePosixMQ(q *PosixMQ) ([]proto.Message, [][]byte) {
	e := &ipcmsg.IpcMsgEntry{
		Desc: &ipcdesc.IpcDescEntry{
			Key: proto.Uint32(0), Uid: proto.Uint32(q.UID), Gid: proto.Uint32(q.GID),
			Cuid: proto.Uint32(q.UID), Cgid: proto.Uint32(q.GID),
			Mode: proto.Uint32(q.Mode), Id: proto.Uint32(q.ID),
		},
		Qbytes: proto.Uint32(mqQbytes(q)),
		Qnum:   proto.Uint32(uint32(len(q.Msgs))),
	}
	var b []byte
	b = appendBytes(b, mqName, []byte(q.Name))
	b = appendBool(b, mqUnlinked, q.Unlinked)
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
	for _, f := range q.Files {
		var m []byte
		m = appendUint(m, 1, uint64(f.ID))
		m = appendUint(m, 2, uint64(f.Flags))
		b = appendBytes(b, mqFiles, m)
	}
	e.ProtoReflect().SetUnknown(b)
	msgs := []proto.Message{e}
	data := [][]byte{nil}
	for _, m := range q.Msgs {
		msgs = append(msgs, &ipcmsg.IpcMsg{Mtype: proto.Uint64(uint64(m.Prio)), Msize: proto.Uint32(uint32(len(m.Data)))})
		data = append(data, pad(append([]byte(nil), m.Data...), 8))
	}
	return msgs, data
}

var errMQ = errors.New("posix-mq.img")

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

// decodeMQEntry decodes a queue's ipc_msg_entry of posix-mq.img: the
// queue without its messages, and how many follow. A malformed entry is
// an error wrapping image.ErrCorrupt; the queue is checked once its
// messages are read.
func decodeMQEntry(raw []byte) (*PosixMQ, int, error) {
	e := &ipcmsg.IpcMsgEntry{}
	if err := proto.Unmarshal(raw, e); err != nil {
		return nil, 0, fmt.Errorf("%w: %w: not an ipc_msg_entry: %v", image.ErrCorrupt, errMQ, err)
	}
	d := e.GetDesc()
	q := &PosixMQ{ID: d.GetId(), Mode: d.GetMode(), UID: d.GetUid(), GID: d.GetGid()}
	err := walkFields(e.ProtoReflect().GetUnknown(), func(n protowire.Number, v uint64, b []byte, isBytes bool) error {
		var err error
		switch n {
		case mqName:
			if err = wireType(n, isBytes, true); err == nil {
				q.Name = string(b)
			}
		case mqNotify, mqFiles:
			if err = wireType(n, isBytes, true); err != nil {
				return err
			}
			var vals [4]uint64
			err = walkFields(b, func(k protowire.Number, v uint64, b []byte, isBytes bool) error {
				if k >= 1 && k <= 4 {
					vals[k-1] = v
					return wireType(k, isBytes, false)
				}
				return nil
			})
			if err != nil {
				return err
			}
			if n == mqNotify {
				q.Notify = &MQNotify{Notify: int32(uint32(vals[0])), Value: vals[3]}
				if q.Notify.Signo, err = u32(2, vals[1]); err == nil {
					q.Notify.Pid, err = u32(3, vals[2])
				}
				return err
			}
			var f MQFile
			if f.ID, err = u32(1, vals[0]); err == nil {
				f.Flags, err = u32(2, vals[1])
			}
			q.Files = append(q.Files, f)
		case mqUnlinked, mqMaxmsg, mqMsgsize, mqOutside, mqOwnNS:
			if err = wireType(n, isBytes, false); err != nil {
				return err
			}
			switch n {
			case mqUnlinked:
				q.Unlinked = v != 0
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
		// Other fields (of a later version) are skipped.
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	if e.GetQbytes() != mqQbytes(q) {
		return nil, 0, fmt.Errorf("%w: %w: queue %d (/%s): qbytes %d, not mq_maxmsg %d * mq_msgsize %d", image.ErrCorrupt, errMQ, q.ID, q.Name, e.GetQbytes(), q.MaxMsg, q.MsgSize)
	}
	if e.GetQnum() > 65536 || uint64(e.GetQnum()) > q.MaxMsg {
		return nil, 0, fmt.Errorf("%w: %w: queue %d (/%s): %d messages, mq_maxmsg %d", image.ErrCorrupt, errMQ, q.ID, q.Name, e.GetQnum(), q.MaxMsg)
	}
	return q, int(e.GetQnum()), nil
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
	var msgs []proto.Message
	var data [][]byte
	for _, q := range d.PosixMQs {
		m, b := EncodePosixMQ(q)
		msgs, data = append(msgs, m...), append(data, b...)
	}
	return d.Dir.WriteWithData(image.PosixMQName(), image.MagicIpcMsg, msgs, data)
}

// loadPosixMQs reads posix-mq.img, if the dump has one, and checks that
// ids are unique and every file of a queue is an EXT entry of files.img.
func (d *Dump) loadPosixMQs() error {
	if !d.exists(image.PosixMQName()) {
		return nil
	}
	qs, err := readPosixMQs(d.Dir)
	if err != nil {
		return err
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

// readPosixMQs reads the queues of posix-mq.img and checks each, and
// that queue ids and file ids are unique.
func readPosixMQs(dir image.Dir) ([]*PosixMQ, error) {
	var qs []*PosixMQ
	left := 0 // messages of the last queue still to come
	// sizes[i] is the length of message entry i of the image, or -1
	// for a queue's entry; the messages' bytes are copied once all is
	// read.
	var sizes []int
	data, err := image.ReadFramed(dir, image.PosixMQName(), image.MagicIpcMsg, func(i int, raw []byte) (int, error) {
		if left == 0 {
			q, n, err := decodeMQEntry(raw)
			if err != nil {
				return 0, err
			}
			qs = append(qs, q)
			left = n
			sizes = append(sizes, -1)
			return 0, nil
		}
		q := qs[len(qs)-1]
		m := &ipcmsg.IpcMsg{}
		if err := proto.Unmarshal(raw, m); err != nil {
			return 0, fmt.Errorf("%w: %w: queue %d (/%s): not an ipc_msg: %v", image.ErrCorrupt, errMQ, q.ID, q.Name, err)
		}
		if m.GetMtype() >= MQPrioMax || uint64(m.GetMsize()) > q.MsgSize {
			return 0, fmt.Errorf("%w: %w: queue %d (/%s): a message of priority %d and %d bytes (mq_msgsize %d)", image.ErrCorrupt, errMQ, q.ID, q.Name, m.GetMtype(), m.GetMsize(), q.MsgSize)
		}
		q.Msgs = append(q.Msgs, MQMsg{Prio: uint32(m.GetMtype())})
		sizes = append(sizes, int(m.GetMsize()))
		left--
		return padded(int(m.GetMsize()), 8), nil
	})
	if err != nil {
		return nil, err
	}
	if left != 0 {
		return nil, fmt.Errorf("image %s: %w: %w: %d messages of the last queue missing", image.PosixMQName(), image.ErrCorrupt, errMQ, left)
	}
	k := 0
	ids, files := map[uint32]bool{}, map[uint32]bool{}
	for _, q := range qs {
		k++ // the queue's own entry
		for i := range q.Msgs {
			if n := sizes[k]; n > 0 {
				q.Msgs[i].Data = append([]byte(nil), data[k][:n]...)
			}
			k++
		}
		if err := q.check(); err != nil {
			return nil, fmt.Errorf("image %s: %w: queue %d (/%s): %w", image.PosixMQName(), image.ErrCorrupt, q.ID, q.Name, err)
		}
		if ids[q.ID] {
			return nil, fmt.Errorf("image %s: %w: queue id %d twice", image.PosixMQName(), image.ErrCorrupt, q.ID)
		}
		ids[q.ID] = true
		for _, f := range q.Files {
			if files[f.ID] {
				return nil, fmt.Errorf("image %s: %w: file %d on two queues", image.PosixMQName(), image.ErrCorrupt, f.ID)
			}
			files[f.ID] = true
		}
	}
	return qs, nil
}
