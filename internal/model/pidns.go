//go:build linux && amd64

package model

import (
	"fmt"

	criucore "github.com/checkpoint-restore/go-criu/v8/crit/images/criu-core"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/mnt"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/pstree"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Nested PID namespaces. The pstree names every task by its PID in the
// tree's top PID namespace (ckpt's, or the root's own when the root is
// its init): those are unique in the tree, and crit and the other images
// (core-PID.img, ...) use them. A task in a PID namespace below the top
// one (made by a task of the tree: `unshare --pid --fork`, clone with
// CLONE_NEWPID) also has a PID in each namespace below it; CRIU's format
// has no field for them (its pstree_entry stops at threads), so ckpt
// keeps them in fields of its own, which protobuf readers that do not
// know them (crit, go-criu) skip:
//
//   - pstree_entry field 16, ns_pid (repeated uint32): the task's PIDs in
//     each PID namespace below the top one, outermost first; the last is
//     getpid() in the task. Empty for a task of the top namespace.
//   - pstree_entry field 17, ns_tid (repeated uint32): the same for each
//     thread but the leader, in the order of threads: len(ns_pid) ids
//     per thread.
//   - task_kobj_ids_entry field 32, pid_for_children_ns_id (uint32): the
//     PID namespace the task's next children go into, when it is not the
//     task's own (after unshare(CLONE_NEWPID)): the pid_ns_id of the
//     namespace of a task of the tree, or a namespace without tasks.
//   - mnt_entry field 32, pid_ns_id (uint32): for a proc mount, the PID
//     namespace it shows: the pid_ns_id of a namespace of the tree, 0
//     for ckpt's.
const (
	pstreeNsPidField           = 16
	pstreeNsTidField           = 17
	idsPidForChildrenNsIDField = 32
	mntPidNsIDField            = 32
)

// ProcPidNsID returns mnt_entry.pid_ns_id (see above).
func ProcPidNsID(e *mnt.MntEntry) uint32 {
	return extUint32(e.ProtoReflect().GetUnknown(), mntPidNsIDField)
}

// SetProcPidNsID sets mnt_entry.pid_ns_id.
func SetProcPidNsID(e *mnt.MntEntry, id uint32) {
	setExtUint32(e.ProtoReflect(), mntPidNsIDField, id)
}

// unknownWithout returns raw unknown fields without those numbered num.
func unknownWithout(raw []byte, num protowire.Number) []byte {
	var out []byte
	for len(raw) > 0 {
		n, typ, l := protowire.ConsumeTag(raw)
		if l < 0 {
			return out
		}
		m := protowire.ConsumeFieldValue(n, typ, raw[l:])
		if m < 0 {
			return out
		}
		if n != num {
			out = append(out, raw[:l+m]...)
		}
		raw = raw[l+m:]
	}
	return out
}

// NsPids returns pstree_entry.ns_pid (see above).
func NsPids(e *pstree.PstreeEntry) ([]int, error) {
	return pstreeInts(e, pstreeNsPidField, "ns_pid")
}

// NsTids returns pstree_entry.ns_tid (see above): for each thread but the
// leader, its ids in the PID namespaces below the tree's top one.
func NsTids(e *pstree.PstreeEntry, levels int) ([][]int, error) {
	flat, err := pstreeInts(e, pstreeNsTidField, "ns_tid")
	if err != nil {
		return nil, err
	}
	if len(flat) == 0 {
		return nil, nil
	}
	threads := len(e.GetThreads()) - 1
	if levels == 0 || len(flat) != threads*levels {
		return nil, fmt.Errorf("pstree entry of %d: %d ns_tid for %d threads at %d levels", e.GetPid(), len(flat), threads, levels)
	}
	out := make([][]int, threads)
	for i := range out {
		out[i] = flat[i*levels : (i+1)*levels]
	}
	return out, nil
}

// SetNsTids sets pstree_entry.ns_tid (see above).
func SetNsTids(e *pstree.PstreeEntry, tids [][]int) {
	var flat []int
	for _, t := range tids {
		flat = append(flat, t...)
	}
	setPstreeInts(e, pstreeNsTidField, flat)
}

// pstreeInts reads a repeated uint32 field of ckpt's among e's unknown
// fields, packed or not; name is for errors.
func pstreeInts(e *pstree.PstreeEntry, field protowire.Number, name string) ([]int, error) {
	var out []int
	raw := e.ProtoReflect().GetUnknown()
	for len(raw) > 0 {
		n, typ, l := protowire.ConsumeTag(raw)
		if l < 0 {
			return nil, fmt.Errorf("pstree entry of %d: bad field tag", e.GetPid())
		}
		raw = raw[l:]
		if n != field {
			m := protowire.ConsumeFieldValue(n, typ, raw)
			if m < 0 {
				return nil, fmt.Errorf("pstree entry of %d: bad field %d", e.GetPid(), n)
			}
			raw = raw[m:]
			continue
		}
		switch typ {
		case protowire.VarintType:
			v, m := protowire.ConsumeVarint(raw)
			if m < 0 {
				return nil, fmt.Errorf("pstree entry of %d: bad %s", e.GetPid(), name)
			}
			out = append(out, int(uint32(v)))
			raw = raw[m:]
		case protowire.BytesType: // packed
			b, m := protowire.ConsumeBytes(raw)
			if m < 0 {
				return nil, fmt.Errorf("pstree entry of %d: bad %s", e.GetPid(), name)
			}
			for len(b) > 0 {
				v, k := protowire.ConsumeVarint(b)
				if k < 0 {
					return nil, fmt.Errorf("pstree entry of %d: bad %s", e.GetPid(), name)
				}
				out = append(out, int(uint32(v)))
				b = b[k:]
			}
			raw = raw[m:]
		default:
			return nil, fmt.Errorf("pstree entry of %d: %s of wire type %d", e.GetPid(), name, typ)
		}
	}
	for _, p := range out {
		if p <= 0 {
			return nil, fmt.Errorf("pstree entry of %d: %s %v", e.GetPid(), name, out)
		}
	}
	return out, nil
}

// SetNsPids sets pstree_entry.ns_pid (see above).
func SetNsPids(e *pstree.PstreeEntry, pids []int) {
	setPstreeInts(e, pstreeNsPidField, pids)
}

// setPstreeInts sets a repeated uint32 field of ckpt's among e's unknown
// fields.
func setPstreeInts(e *pstree.PstreeEntry, field protowire.Number, v []int) {
	m := e.ProtoReflect()
	raw := unknownWithout(m.GetUnknown(), field)
	for _, p := range v {
		raw = protowire.AppendTag(raw, field, protowire.VarintType)
		raw = protowire.AppendVarint(raw, uint64(uint32(p)))
	}
	m.SetUnknown(raw)
}

// PidForChildrenNsID returns task_kobj_ids_entry.pid_for_children_ns_id
// (see above), 0 if absent.
func PidForChildrenNsID(ids *criucore.TaskKobjIdsEntry) uint32 {
	if ids == nil {
		return 0
	}
	return extUint32(ids.ProtoReflect().GetUnknown(), idsPidForChildrenNsIDField)
}

// SetPidForChildrenNsID sets task_kobj_ids_entry.pid_for_children_ns_id.
func SetPidForChildrenNsID(ids *criucore.TaskKobjIdsEntry, id uint32) {
	setExtUint32(ids.ProtoReflect(), idsPidForChildrenNsIDField, id)
}

// extUint32 is the last varint field num among unknown fields raw, 0 if
// there is none (or raw is malformed: these fields are hints that a
// reader without them does without too).
func extUint32(raw []byte, num protowire.Number) uint32 {
	var v uint32
	for len(raw) > 0 {
		n, typ, l := protowire.ConsumeTag(raw)
		if l < 0 {
			return 0
		}
		raw = raw[l:]
		m := protowire.ConsumeFieldValue(n, typ, raw)
		if m < 0 {
			return 0
		}
		if n == num && typ == protowire.VarintType {
			x, _ := protowire.ConsumeVarint(raw)
			v = uint32(x)
		}
		raw = raw[m:]
	}
	return v
}

// setExtUint32 sets (0: removes) varint field num among m's unknown fields.
func setExtUint32(m protoreflect.Message, num protowire.Number, v uint32) {
	raw := unknownWithout(m.GetUnknown(), num)
	if v != 0 {
		raw = protowire.AppendTag(raw, num, protowire.VarintType)
		raw = protowire.AppendVarint(raw, uint64(v))
	}
	m.SetUnknown(raw)
}
