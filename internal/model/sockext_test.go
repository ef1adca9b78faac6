//go:build linux && amd64

package model

import (
	"reflect"
	"testing"

	skinet "github.com/checkpoint-restore/go-criu/v8/crit/images/sk-inet"
	sknetlink "github.com/checkpoint-restore/go-criu/v8/crit/images/sk-netlink"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

func TestNetlinkType(t *testing.T) {
	e := &sknetlink.NetlinkSkEntry{Id: proto.Uint32(1)}
	if NetlinkType(e) != 3 {
		t.Errorf("no field: type %d, want SOCK_RAW", NetlinkType(e))
	}
	SetNetlinkType(e, 2)
	b, err := (proto.MarshalOptions{AllowPartial: true}).Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	var back sknetlink.NetlinkSkEntry
	if err := (proto.UnmarshalOptions{AllowPartial: true}).Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if NetlinkType(&back) != 2 || back.GetId() != 1 {
		t.Errorf("type %d after a round trip", NetlinkType(&back))
	}
	SetNetlinkType(&back, 3)
	if len(back.ProtoReflect().GetUnknown()) != 0 {
		t.Error("SOCK_RAW is written")
	}
}

func TestMcastFields(t *testing.T) {
	e := &skinet.InetSkEntry{Ino: proto.Uint32(9)}
	if gs, err := McastGroups(e); err != nil || gs != nil {
		t.Errorf("none: %v %v", gs, err)
	}
	if _, ok, err := GetMcastOpts(e); ok || err != nil {
		t.Errorf("no options: %v %v", ok, err)
	}
	gs := []McastGroup{
		{Level: 0, Ifindex: 1, Group: []byte{239, 7, 7, 1}},
		{Level: 0, Ifindex: 1, Group: []byte{239, 7, 7, 2}, Fmode: 1, Sources: [][]byte{{127, 0, 0, 1}}},
		{Level: 41, Ifindex: 2, Group: []byte{0xff, 0x15, 14: 7, 15: 1}, Sources: [][]byte{{0x20, 1, 15: 5}}},
	}
	o := McastOpts{V4: true, TTL: 9, All: 1, IfAddr: [4]byte{127, 0, 0, 1}, IfIndex: 3, V6: true, Hops: 6, Loop6: 1, IfIndex6: 1}
	SetMcastGroups(e, gs[:1])
	SetMcastGroups(e, gs) // replaces
	SetMcastOpts(e, McastOpts{})
	SetMcastOpts(e, o)
	b, err := (proto.MarshalOptions{AllowPartial: true}).Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	var back skinet.InetSkEntry
	if err := (proto.UnmarshalOptions{AllowPartial: true}).Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	got, err := McastGroups(&back)
	if err != nil || !reflect.DeepEqual(got, gs) {
		t.Errorf("groups %+v %v, want %+v", got, err, gs)
	}
	go2, ok, err := GetMcastOpts(&back)
	if err != nil || !ok || go2 != o {
		t.Errorf("options %+v %v %v, want %+v", go2, ok, err, o)
	}
	// Corrupt: errors, not panics.
	for name, raw := range map[string][]byte{
		"level":      protowire.AppendBytes(protowire.AppendTag(nil, mcastGroupField, protowire.BytesType), McastGroup{Level: 5, Group: []byte{1, 2, 3, 4}}.marshal()),
		"group len":  protowire.AppendBytes(protowire.AppendTag(nil, mcastGroupField, protowire.BytesType), McastGroup{Group: []byte{1, 2, 3}}.marshal()),
		"source len": protowire.AppendBytes(protowire.AppendTag(nil, mcastGroupField, protowire.BytesType), McastGroup{Group: []byte{1, 2, 3, 4}, Sources: [][]byte{{1}}}.marshal()),
		"fmode":      protowire.AppendBytes(protowire.AppendTag(nil, mcastGroupField, protowire.BytesType), McastGroup{Group: []byte{1, 2, 3, 4}, Fmode: 7}.marshal()),
		"truncated":  protowire.AppendTag(nil, mcastGroupField, protowire.BytesType),
		"inner":      protowire.AppendBytes(protowire.AppendTag(nil, mcastGroupField, protowire.BytesType), []byte{0x08}),
	} {
		e := &skinet.InetSkEntry{}
		e.ProtoReflect().SetUnknown(raw)
		if _, err := McastGroups(e); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	bad := &skinet.InetSkEntry{}
	bad.ProtoReflect().SetUnknown(protowire.AppendBytes(protowire.AppendTag(nil, mcastOptsField, protowire.BytesType),
		protowire.AppendBytes(protowire.AppendTag(nil, 4, protowire.BytesType), []byte{1, 2})))
	if _, _, err := GetMcastOpts(bad); err == nil {
		t.Error("IP_MULTICAST_IF of 2 bytes: no error")
	}
}
