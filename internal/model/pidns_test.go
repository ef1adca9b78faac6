//go:build linux && amd64

package model

import (
	"fmt"
	"testing"

	criucore "github.com/checkpoint-restore/go-criu/v8/crit/images/criu-core"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/pstree"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

func TestNsPidsRoundTrip(t *testing.T) {
	e := &pstree.PstreeEntry{Pid: proto.Uint32(1270), Ppid: proto.Uint32(1268), Pgid: proto.Uint32(1), Sid: proto.Uint32(1), Threads: []uint32{1270}}
	SetNsPids(e, []int{7, 1})
	SetNsPids(e, []int{5, 1}) // replaces, does not append
	b, err := proto.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	got := &pstree.PstreeEntry{}
	if err := proto.Unmarshal(b, got); err != nil {
		t.Fatal(err)
	}
	if got.GetPid() != 1270 || len(got.GetThreads()) != 1 {
		t.Fatalf("known fields lost: %v", got)
	}
	pids, err := NsPids(got)
	if err != nil || fmt.Sprint(pids) != "[5 1]" {
		t.Fatalf("NsPids = %v, %v; want [5 1]", pids, err)
	}
	SetNsPids(got, nil)
	if pids, err := NsPids(got); err != nil || len(pids) != 0 {
		t.Fatalf("after clearing: %v, %v", pids, err)
	}
}

func TestNsPidsPackedAndCorrupt(t *testing.T) {
	var packed []byte
	packed = protowire.AppendVarint(packed, 3)
	packed = protowire.AppendVarint(packed, 1)
	raw := protowire.AppendTag(nil, pstreeNsPidField, protowire.BytesType)
	raw = protowire.AppendBytes(raw, packed)
	e := &pstree.PstreeEntry{Pid: proto.Uint32(9)}
	e.ProtoReflect().SetUnknown(raw)
	if pids, err := NsPids(e); err != nil || fmt.Sprint(pids) != "[3 1]" {
		t.Fatalf("packed NsPids = %v, %v", pids, err)
	}
	for name, raw := range map[string][]byte{
		"zero pid":   protowire.AppendVarint(protowire.AppendTag(nil, pstreeNsPidField, protowire.VarintType), 0),
		"truncated":  protowire.AppendTag(nil, pstreeNsPidField, protowire.VarintType),
		"fixed32":    protowire.AppendFixed32(protowire.AppendTag(nil, pstreeNsPidField, protowire.Fixed32Type), 1),
		"bad packed": protowire.AppendBytes(protowire.AppendTag(nil, pstreeNsPidField, protowire.BytesType), []byte{0x80}),
	} {
		e := &pstree.PstreeEntry{Pid: proto.Uint32(9)}
		e.ProtoReflect().SetUnknown(raw)
		if pids, err := NsPids(e); err == nil {
			t.Errorf("%s: NsPids = %v, want an error", name, pids)
		}
	}
}

func TestPidForChildrenNsID(t *testing.T) {
	ids := &criucore.TaskKobjIdsEntry{VmId: proto.Uint32(1), FilesId: proto.Uint32(1), FsId: proto.Uint32(1), SighandId: proto.Uint32(1)}
	if PidForChildrenNsID(ids) != 0 || PidForChildrenNsID(nil) != 0 {
		t.Fatal("absent field is not 0")
	}
	SetPidForChildrenNsID(ids, 4)
	pidNs := ids.GetPidNsId()
	b, err := proto.Marshal(ids)
	if err != nil {
		t.Fatal(err)
	}
	got := &criucore.TaskKobjIdsEntry{}
	if err := proto.Unmarshal(b, got); err != nil {
		t.Fatal(err)
	}
	if id := PidForChildrenNsID(got); id != 4 || got.GetPidNsId() != pidNs {
		t.Fatalf("PidForChildrenNsID = %d, want 4", id)
	}
	SetPidForChildrenNsID(got, 0)
	if PidForChildrenNsID(got) != 0 || len(got.ProtoReflect().GetUnknown()) != 0 {
		t.Fatal("clearing left the field")
	}
}

func TestNsTids(t *testing.T) {
	e := &pstree.PstreeEntry{Pid: proto.Uint32(10), Ppid: proto.Uint32(9), Pgid: proto.Uint32(9), Sid: proto.Uint32(9), Threads: []uint32{10, 11, 12}}
	SetNsPids(e, []int{4, 1})
	SetNsTids(e, [][]int{{5, 2}, {6, 3}})
	b, err := proto.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	got := &pstree.PstreeEntry{}
	if err := proto.Unmarshal(b, got); err != nil {
		t.Fatal(err)
	}
	tids, err := NsTids(got, 2)
	if err != nil || fmt.Sprint(tids) != "[[5 2] [6 3]]" {
		t.Fatalf("NsTids = %v, %v", tids, err)
	}
	if pids, _ := NsPids(got); fmt.Sprint(pids) != "[4 1]" {
		t.Fatalf("NsPids = %v", pids)
	}
	p := &Process{Tids: []int{11, 12}, NsTids: tids}
	if p.VTid(0) != 2 || p.VTid(1) != 3 {
		t.Errorf("VTid = %d, %d", p.VTid(0), p.VTid(1))
	}
	if _, err := NsTids(got, 3); err == nil {
		t.Error("ns_tid of the wrong length accepted")
	}
	if tids, err := NsTids(&pstree.PstreeEntry{Threads: []uint32{1, 2}}, 1); err != nil || tids != nil {
		t.Errorf("absent ns_tid: %v, %v", tids, err)
	}
}
