//go:build linux && amd64

package model

import (
	"encoding/binary"
	"fmt"
	"os"

	ipcmsg "github.com/checkpoint-restore/go-criu/v8/crit/images/ipc-msg"
	ipcsem "github.com/checkpoint-restore/go-criu/v8/crit/images/ipc-sem"
	ipcshm "github.com/checkpoint-restore/go-criu/v8/crit/images/ipc-shm"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/image"
)

// HostIPC is the id under which Dump.SysV holds the objects of the
// dumping ckpt's own IPC namespace that the tree uses (images
// ipcns-shm-0.img, ...): 0, the id of no namespace of the tree.
const HostIPC = 0

// SysV holds the SysV IPC objects of one IPC namespace of the tree, in
// CRIU's images: ipcns-shm-ID.img (each segment's entry, then its
// contents padded to 4 bytes), ipcns-sem-ID.img (each set's entry, then
// its values as 16-bit numbers padded to 8 bytes) and ipcns-msg-ID.img
// (each queue's entry, then each message's ipc_msg entry followed by its
// text padded to 8 bytes).
type SysV struct {
	Shm []SysVShm
	Sem []SysVSem
	Msg []SysVMsgQueue
}

// SysVShm is a shared memory segment and its contents: either in the
// dump's shared memory pages under the segment's id, as CRIU keeps them
// (InPages: ipc_shm_entry.in_pagemaps, pagemap-shmem-ID.img; CopyShmem),
// or whole in Data, written after the entry in ipcns-shm (a segment
// whose id is taken by another shared memory object of the dump, and
// older ckpt dumps).
type SysVShm struct {
	Entry   *ipcshm.IpcShmEntry
	Data    []byte
	InPages bool
	// Src, at dump, is the segment's file until its content is saved
	// (ns.Dumper.Finish, once every other shared memory object of the
	// dump is known).
	Src *os.File
}

// SysVSem is a semaphore set and the value of each semaphore.
type SysVSem struct {
	Entry  *ipcsem.IpcSemEntry
	Values []uint16
}

// SysVMsgQueue is a message queue and the messages in it, oldest first.
type SysVMsgQueue struct {
	Entry *ipcmsg.IpcMsgEntry
	Msgs  []SysVMsg
}

// SysVMsg is one queued message.
type SysVMsg struct {
	Type uint64
	Text []byte
}

func pad(b []byte, to int) []byte {
	if r := len(b) % to; r != 0 {
		b = append(b, make([]byte, to-r)...)
	}
	return b
}

func padded(n, to int) int { return (n + to - 1) / to * to }

// writeSysV writes the SysV objects of IPC namespace id.
func (d *Dump) writeSysV(id uint32, s *SysV) error {
	var msgs []proto.Message
	var data [][]byte
	for _, o := range s.Shm {
		if o.InPages {
			o.Entry.InPagemaps = proto.Bool(true)
			msgs = append(msgs, o.Entry)
			data = append(data, nil)
			continue
		}
		o.Entry.Size = proto.Uint64(uint64(len(o.Data)))
		o.Entry.InPagemaps = nil // the contents follow the entry
		msgs = append(msgs, o.Entry)
		data = append(data, pad(append([]byte(nil), o.Data...), 4))
	}
	if err := d.Dir.WriteWithData(image.IpcShmName(id), image.MagicIpcShm, msgs, data); err != nil {
		return err
	}
	msgs, data = nil, nil
	for _, o := range s.Sem {
		o.Entry.Nsems = proto.Uint32(uint32(len(o.Values)))
		b := make([]byte, 2*len(o.Values))
		for i, v := range o.Values {
			binary.LittleEndian.PutUint16(b[2*i:], v)
		}
		msgs = append(msgs, o.Entry)
		data = append(data, pad(b, 8))
	}
	if err := d.Dir.WriteWithData(image.IpcSemName(id), image.MagicIpcSem, msgs, data); err != nil {
		return err
	}
	msgs, data = nil, nil
	for _, q := range s.Msg {
		q.Entry.Qnum = proto.Uint32(uint32(len(q.Msgs)))
		msgs = append(msgs, q.Entry)
		data = append(data, nil)
		for _, m := range q.Msgs {
			msgs = append(msgs, &ipcmsg.IpcMsg{Mtype: proto.Uint64(m.Type), Msize: proto.Uint32(uint32(len(m.Text)))})
			data = append(data, pad(append([]byte(nil), m.Text...), 8))
		}
	}
	return d.Dir.WriteWithData(image.IpcMsgName(id), image.MagicIpcMsg, msgs, data)
}

// loadSysV reads the SysV objects of IPC namespace id; a dump without
// their images (an older one) has none.
func (d *Dump) loadSysV(id uint32) (*SysV, error) {
	s := &SysV{}
	if !d.exists(image.IpcShmName(id)) {
		return s, nil
	}
	shm, data, err := image.ReadWithData(d.Dir, image.IpcShmName(id), image.MagicIpcShm,
		func() *ipcshm.IpcShmEntry { return &ipcshm.IpcShmEntry{} },
		func(e *ipcshm.IpcShmEntry) int {
			if e.GetSize() > 1<<40 {
				return -1
			}
			if e.GetInPagemaps() {
				return 0
			}
			return padded(int(e.GetSize()), 4)
		})
	if err != nil {
		return nil, err
	}
	for i, e := range shm {
		if e.Desc == nil {
			return nil, fmt.Errorf("%s: entry %d: %w: no ipc_desc_entry", image.IpcShmName(id), i, image.ErrCorrupt)
		}
		if e.GetInPagemaps() {
			// CRIU keeps a segment's contents as it keeps shared
			// memory's, in pagemap-shmem-SHMID.img and a pages image,
			// under the segment's IPC id (criu/ipc_ns.c,
			// dump_ipc_shm_pages), leaving out pages never touched;
			// the restore copies them from there (CopyShmem).
			if e.GetSize() > maxShmemEnd {
				return nil, fmt.Errorf("%s: segment %d: %w: size %d", image.IpcShmName(id), e.Desc.GetId(), image.ErrCorrupt, e.GetSize())
			}
			s.Shm = append(s.Shm, SysVShm{Entry: e, InPages: true})
			continue
		}
		s.Shm = append(s.Shm, SysVShm{Entry: e, Data: data[i][:e.GetSize()]})
	}
	sem, data, err := image.ReadWithData(d.Dir, image.IpcSemName(id), image.MagicIpcSem,
		func() *ipcsem.IpcSemEntry { return &ipcsem.IpcSemEntry{} },
		func(e *ipcsem.IpcSemEntry) int {
			if e.GetNsems() > 1<<20 {
				return -1
			}
			return padded(2*int(e.GetNsems()), 8)
		})
	if err != nil {
		return nil, err
	}
	for i, e := range sem {
		if e.Desc == nil {
			return nil, fmt.Errorf("%s: entry %d: %w: no ipc_desc_entry", image.IpcSemName(id), i, image.ErrCorrupt)
		}
		o := SysVSem{Entry: e, Values: make([]uint16, e.GetNsems())}
		for j := range o.Values {
			o.Values[j] = binary.LittleEndian.Uint16(data[i][2*j:])
		}
		s.Sem = append(s.Sem, o)
	}
	// A queue's entry, then qnum messages.
	left := 0
	var cur *SysVMsgQueue
	raw, err := image.ReadFramed(d.Dir, image.IpcMsgName(id), image.MagicIpcMsg, func(i int, b []byte) (int, error) {
		if left == 0 {
			e := &ipcmsg.IpcMsgEntry{}
			if err := proto.Unmarshal(b, e); err != nil || e.Desc == nil {
				return 0, fmt.Errorf("%w: not an ipc_msg_entry (%v)", image.ErrCorrupt, err)
			}
			if e.GetQnum() > 1<<20 {
				return 0, fmt.Errorf("%w: %d messages", image.ErrCorrupt, e.GetQnum())
			}
			s.Msg = append(s.Msg, SysVMsgQueue{Entry: e})
			cur = &s.Msg[len(s.Msg)-1]
			left = int(e.GetQnum())
			return 0, nil
		}
		m := &ipcmsg.IpcMsg{}
		if err := proto.Unmarshal(b, m); err != nil {
			return 0, fmt.Errorf("%w: not an ipc_msg (%v)", image.ErrCorrupt, err)
		}
		if m.GetMsize() > maxEntry {
			return 0, fmt.Errorf("%w: a message of %d bytes", image.ErrCorrupt, m.GetMsize())
		}
		cur.Msgs = append(cur.Msgs, SysVMsg{Type: m.GetMtype(), Text: make([]byte, m.GetMsize())})
		left--
		return padded(int(m.GetMsize()), 8), nil
	})
	if err != nil {
		return nil, err
	}
	if left != 0 {
		return nil, fmt.Errorf("%s: %w: %d messages missing", image.IpcMsgName(id), image.ErrCorrupt, left)
	}
	// Copy each message's text from its data.
	k := 0
	for qi := range s.Msg {
		k++ // the queue's own entry
		for mi := range s.Msg[qi].Msgs {
			m := &s.Msg[qi].Msgs[mi]
			copy(m.Text, raw[k])
			k++
		}
	}
	return s, nil
}

// maxEntry bounds a message's size read from an image.
const maxEntry = 64 << 20
