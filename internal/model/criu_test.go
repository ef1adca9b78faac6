//go:build linux && amd64

package model

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	criucore "github.com/checkpoint-restore/go-criu/v8/crit/images/criu-core"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/mm"
	vmaimg "github.com/checkpoint-restore/go-criu/v8/crit/images/vma"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/image"
)

// auxvBytes lays out n (type, value) pairs and AT_NULL in words of size w.
func auxvBytes(n, w int) []byte {
	var b []byte
	put := func(v uint64) {
		if w == 4 {
			b = binary.LittleEndian.AppendUint32(b, uint32(v))
		} else {
			b = binary.LittleEndian.AppendUint64(b, v)
		}
	}
	for i := 1; i <= n; i++ {
		put(uint64(i))
		put(0xf7f00000 + uint64(i))
	}
	put(0)
	put(0)
	return b
}

func TestSavedAuxvCRIULayout(t *testing.T) {
	for _, c := range []struct {
		name       string
		pairs, w   int
		words, all int
	}{
		{"native 6.18 (over CRIU's limit)", 22, 8, CRIUAuxvWords, 46},
		{"native short", 10, 8, 22, 22},
		{"ia32", 23, 4, 24, 24},
	} {
		t.Run(c.name, func(t *testing.T) {
			raw := auxvBytes(c.pairs, c.w)
			m := &mm.MmEntry{}
			PutSavedAuxv(m, raw)
			if len(m.MmSavedAuxv) != c.words {
				t.Fatalf("mm_saved_auxv: %d words, want %d", len(m.MmSavedAuxv), c.words)
			}
			if c.w == 4 && m.MmSavedAuxv[0] != 1|(0xf7f00001<<32) {
				t.Errorf("ia32 word 0 = %#x: two 32-bit values per word as CRIU packs them", m.MmSavedAuxv[0])
			}
			// Through the wire, as CRIU and Load see it.
			b, err := proto.MarshalOptions{AllowPartial: true}.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			m2 := &mm.MmEntry{}
			if err := (proto.UnmarshalOptions{AllowPartial: true}).Unmarshal(b, m2); err != nil {
				t.Fatal(err)
			}
			got, err := SavedAuxv(m2)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, raw) {
				t.Errorf("SavedAuxv = %x, want the whole auxv %x", got, raw)
			}
			if len(got) != 8*c.all {
				t.Errorf("%d bytes, want %d", len(got), 8*c.all)
			}
			// Stored again, the rest is replaced, not appended.
			PutSavedAuxv(m2, raw[:16])
			if got, _ := SavedAuxv(m2); !bytes.Equal(got, raw[:16]) {
				t.Errorf("after a second PutSavedAuxv: %x", got)
			}
		})
	}
}

func TestSavedAuxvCorruptRest(t *testing.T) {
	m := &mm.MmEntry{}
	m.ProtoReflect().SetUnknown([]byte{0x8a, 0xb6, 0x52, 0x05, 0x01}) // field 170001, 5 bytes announced, 1 there
	if _, err := SavedAuxv(m); err == nil {
		t.Fatal("a truncated rest of the auxv must be an error")
	}
}

func TestRootIDsDifferFromTasks(t *testing.T) {
	ids := RootIDs(3, false)
	if ids.GetFilesId() <= 3 || ids.PidNsId != nil {
		t.Errorf("RootIDs(3, false) = %v: ids must not be a task's (1..3), no pid ns", ids)
	}
	if got := RootIDs(1, true).GetPidNsId(); got == OwnPidNsID || got == 0 {
		t.Errorf("pid_ns_id %d: must differ from the tree's own (%d)", got, OwnPidNsID)
	}
}

func TestDropVsyscall(t *testing.T) {
	v := func(start uint64, st uint32) *vmaimg.VmaEntry {
		return &vmaimg.VmaEntry{Start: proto.Uint64(start), End: proto.Uint64(start + 4096), Status: proto.Uint32(st)}
	}
	m := &mm.MmEntry{Vmas: []*vmaimg.VmaEntry{v(0x1000, image.VMAAreaRegular|image.VMAAnonPrivate), v(0xffffffffff600000, image.VMAAreaVsyscall)}}
	dropVsyscall(m)
	if len(m.Vmas) != 1 || m.Vmas[0].GetStart() != 0x1000 {
		t.Errorf("after dropVsyscall: %v", m.Vmas)
	}
}

func TestCRIURefusal(t *testing.T) {
	u32 := proto.Uint32
	root := &criucore.TaskKobjIdsEntry{NetNsId: u32(7), UtsNsId: u32(8), PidNsId: u32(9), MntNsId: u32(10)}
	d := &Dump{}
	proc := func(ids *criucore.TaskKobjIdsEntry) *Process {
		shareDumpersNamespaces(ids, root)
		return &Process{Pid: 42, IDs: ids, MM: &mm.MmEntry{}, Core: &criucore.CoreEntry{}}
	}
	p := proc(&criucore.TaskKobjIdsEntry{NetNsId: u32(7), UtsNsId: u32(8), PidNsId: u32(9), MntNsId: u32(10), FilesId: u32(1)})
	if err := d.criuRefusal(p); err != nil {
		t.Errorf("a task in the dumping tool's namespaces: %v", err)
	}
	if p.IDs.NetNsId != nil || p.IDs.PidNsId != nil || p.IDs.MntNsId != nil || p.IDs.GetFilesId() != 1 {
		t.Errorf("the dumping tool's namespaces are not cleared: %v", p.IDs)
	}
	// A UTS namespace of its own: restored from its utsns image.
	p = proc(&criucore.TaskKobjIdsEntry{NetNsId: u32(7), UtsNsId: u32(11)})
	if err := d.criuRefusal(p); err != nil || p.IDs.GetUtsNsId() != 11 {
		t.Errorf("a task in a UTS namespace of its own: %v, uts id %d", err, p.IDs.GetUtsNsId())
	}
	err := d.criuRefusal(proc(&criucore.TaskKobjIdsEntry{NetNsId: u32(12)}))
	if err == nil || !strings.Contains(err.Error(), "network namespace") {
		t.Errorf("a task in a network namespace of its own: %v", err)
	}
	// ckpt's own dumps: root_ids name no namespace but the PID one of a
	// tree that has its own.
	own := &criucore.TaskKobjIdsEntry{PidNsId: u32(OwnPidNsID), UtsNsId: u32(3)}
	shareDumpersNamespaces(own, RootIDs(1, true))
	if own.GetPidNsId() != OwnPidNsID || own.GetUtsNsId() != 3 {
		t.Errorf("a ckpt dump's own namespaces were cleared: %v", own)
	}
	// AIO rings are restored (package restore), not refused.
	p = proc(&criucore.TaskKobjIdsEntry{})
	p.MM.Aios = []*mm.AioRingEntry{{}}
	if err := d.criuRefusal(p); err != nil {
		t.Errorf("AIO rings: %v", err)
	}
}

// A CRIU dump of a tree whose root is a PID namespace's init names that
// namespace by CRIU's own id: the loader gives it ckpt's, OwnPidNsID, and
// leaves a task in the dumper's namespace (id cleared) alone.
func TestCRIUPidNS(t *testing.T) {
	d := &Dump{}
	root := &Process{IDs: &criucore.TaskKobjIdsEntry{PidNsId: proto.Uint32(9)}}
	child := &Process{IDs: &criucore.TaskKobjIdsEntry{PidNsId: proto.Uint32(9)}}
	d.criuPidNS(root)
	d.criuPidNS(child)
	if root.IDs.GetPidNsId() != OwnPidNsID || child.IDs.GetPidNsId() != OwnPidNsID {
		t.Errorf("pid_ns_id %d, %d; want %d", root.IDs.GetPidNsId(), child.IDs.GetPidNsId(), OwnPidNsID)
	}
	host := &Process{IDs: &criucore.TaskKobjIdsEntry{}}
	(&Dump{}).criuPidNS(host)
	if host.IDs.PidNsId != nil {
		t.Errorf("a task in the dumper's PID namespace got pid_ns_id %d", host.IDs.GetPidNsId())
	}
}
