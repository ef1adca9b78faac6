//go:build linux && amd64

package model

import (
	"testing"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/eventpoll"
	"google.golang.org/protobuf/proto"
)

func TestEpollTfdHolder(t *testing.T) {
	e := &eventpoll.EventpollTfdEntry{Id: proto.Uint32(1), Tfd: proto.Uint32(40), Events: proto.Uint32(1), Data: proto.Uint64(7)}
	if h := EpollTfdHolder(e); h != 40 {
		t.Fatalf("no holder field: holder %d, want the tfd 40", h)
	}
	for _, h := range []uint32{0, 41, 40, 1 << 20} {
		SetEpollTfdHolder(e, h)
		b, err := proto.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		var back eventpoll.EventpollTfdEntry
		if err := proto.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if got := EpollTfdHolder(&back); got != h {
			t.Errorf("holder %d came back as %d", h, got)
		}
		if back.GetTfd() != 40 || back.GetData() != 7 {
			t.Errorf("holder %d: entry changed: %v", h, &back)
		}
	}
	SetEpollTfdHolder(e, 40)
	if len(e.ProtoReflect().GetUnknown()) != 0 {
		t.Errorf("holder equal to tfd still written: %x", e.ProtoReflect().GetUnknown())
	}
	// A malformed unknown field is ignored: the tfd is the holder.
	e.ProtoReflect().SetUnknown([]byte{0xff})
	if h := EpollTfdHolder(e); h != 40 {
		t.Errorf("malformed field: holder %d, want 40", h)
	}
	e.ProtoReflect().SetUnknown(nil)
	SetEpollTfdHolder(e, 5)
	SetEpollTfdHolderPid(e, 1234)
	b, err := proto.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	var back eventpoll.EventpollTfdEntry
	if err := proto.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if EpollTfdHolder(&back) != 5 || EpollTfdHolderPid(&back) != 1234 {
		t.Errorf("holder fd %d of process %d, want 5 of 1234", EpollTfdHolder(&back), EpollTfdHolderPid(&back))
	}
	SetEpollTfdHolderPid(e, 0)
	if EpollTfdHolderPid(e) != 0 || EpollTfdHolder(e) != 5 {
		t.Errorf("holder pid not removed")
	}
}
