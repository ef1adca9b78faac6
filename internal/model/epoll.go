//go:build linux && amd64

package model

import (
	"github.com/checkpoint-restore/go-criu/v8/crit/images/eventpoll"
	"google.golang.org/protobuf/encoding/protowire"
)

// epollHolderField is ckpt's own field of eventpoll_tfd_entry, far above
// CRIU's numbers: the fd of the task that holds the target's file when
// that is no longer fd tfd (tfd was closed, or dup2'd over, after the
// target was added). tfd stays the number the target was added with,
// which is half of the epoll's key for it (file, fd number) and what
// its fdinfo shows. Readers that do not know the field (crit) skip it.
const epollHolderField protowire.Number = 170002

// EpollTfdHolder returns the fd that holds the file of target t: the
// holder field if present, else t's tfd.
func EpollTfdHolder(t *eventpoll.EventpollTfdEntry) uint32 {
	raw := t.ProtoReflect().GetUnknown()
	v, found := t.GetTfd(), false
	for len(raw) > 0 && !found {
		n, typ, l := protowire.ConsumeTag(raw)
		if l < 0 {
			break
		}
		raw = raw[l:]
		m := protowire.ConsumeFieldValue(n, typ, raw)
		if m < 0 {
			break
		}
		if n == epollHolderField && typ == protowire.VarintType {
			x, _ := protowire.ConsumeVarint(raw)
			v, found = uint32(x), true
		}
		raw = raw[m:]
	}
	return v
}

// SetEpollTfdHolder records that fd holder holds the file of target t
// (nothing is written when that is t's tfd).
func SetEpollTfdHolder(t *eventpoll.EventpollTfdEntry, holder uint32) {
	m := t.ProtoReflect()
	raw := unknownWithout(m.GetUnknown(), epollHolderField)
	if holder != t.GetTfd() {
		raw = protowire.AppendTag(raw, epollHolderField, protowire.VarintType)
		raw = protowire.AppendVarint(raw, uint64(holder))
	}
	m.SetUnknown(raw)
}

// epollHolderPidField is ckpt's own field of eventpoll_tfd_entry: the
// process of the tree whose fd (epollHolderField) holds the target's
// file when no fd of the epoll's own process does. Absent: the epoll's
// own process.
const epollHolderPidField protowire.Number = 170003

// EpollTfdHolderPid returns the process whose fd holds the file of
// target t, 0 for the epoll's own process.
func EpollTfdHolderPid(t *eventpoll.EventpollTfdEntry) uint32 {
	return extUint32(t.ProtoReflect().GetUnknown(), epollHolderPidField)
}

// SetEpollTfdHolderPid records that process pid holds the file of target
// t (0: the epoll's own process, and nothing is written).
func SetEpollTfdHolderPid(t *eventpoll.EventpollTfdEntry, pid uint32) {
	setExtUint32(t.ProtoReflect(), epollHolderPidField, pid)
}
