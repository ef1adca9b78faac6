//go:build linux && amd64

package model

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/fdinfo"
	"github.com/checkpoint-restore/go-criu/v8/magic"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/image"
)

func testQueues() []*PosixMQ {
	return []*PosixMQ{
		{
			ID: 1, Name: "ckpt-mq", Mode: 0o640, UID: 1000, GID: 1001, MaxMsg: 8, MsgSize: 128,
			Notify: &MQNotify{Notify: 0, Signo: 10, Pid: 4242, Value: 0x1234abcd},
			Msgs:   []MQMsg{{7, []byte("high")}, {7, []byte("high-2")}, {4, []byte("")}, {0, []byte{0, 1, 2}}},
			Files:  []MQFile{{ID: 3, Flags: 0o4002}, {ID: 4, Flags: 1}},
		},
		{ID: 2, Name: "gone", Unlinked: true, OwnNS: true, Mode: 0o600, MaxMsg: 1, MsgSize: 1, Files: []MQFile{{ID: 5}}},
		{ID: 3, Name: "shared", Outside: true, Mode: 0o666, MaxMsg: 10, MsgSize: 8192, Files: []MQFile{{ID: 6, Flags: 2}}},
	}
}

// posixMQDump is a dump whose files.img has EXT entries 3..6.
func posixMQDump(t *testing.T) *Dump {
	d := &Dump{Dir: image.Dir{Path: t.TempDir()}, Files: map[uint32]*fdinfo.FileEntry{}}
	for id := uint32(3); id <= 6; id++ {
		d.Files[id] = &fdinfo.FileEntry{Id: proto.Uint32(id), Type: fdinfo.FdTypes_EXT.Enum()}
	}
	return d
}

func TestPosixMQRoundTrip(t *testing.T) {
	d := posixMQDump(t)
	d.PosixMQs = testQueues()
	if err := d.writePosixMQs(); err != nil {
		t.Fatal(err)
	}
	got := posixMQDump(t)
	got.Dir = d.Dir
	if err := got.loadPosixMQs(); err != nil {
		t.Fatal(err)
	}
	want := testQueues()
	for _, q := range want {
		for i := range q.Msgs {
			if len(q.Msgs[i].Data) == 0 {
				q.Msgs[i].Data = nil // an empty message reads back as nil
			}
		}
	}
	if !reflect.DeepEqual(got.PosixMQs, want) {
		t.Fatalf("read back\n%+v\nwant\n%+v", got.PosixMQs, want)
	}
	q, f, ok := got.PosixMQFile(4)
	if !ok || q.ID != 1 || f.Flags != 1 {
		t.Fatalf("PosixMQFile(4) = %v %v %v", q, f, ok)
	}
	if _, _, ok := got.PosixMQFile(9); ok {
		t.Fatal("PosixMQFile(9) found a queue")
	}
	// CRIU's framing: IMG_COMMON, then ckpt's magic, which is not CRIU's.
	b, err := os.ReadFile(filepath.Join(d.Dir.Path, image.PosixMQName()))
	if err != nil {
		t.Fatal(err)
	}
	m := magic.LoadMagic()
	if binary.LittleEndian.Uint32(b) != uint32(m.ByName["IMG_COMMON"]) {
		t.Fatalf("first magic %#x", binary.LittleEndian.Uint32(b))
	}
	if name, ok := m.ByValue[uint64(binary.LittleEndian.Uint32(b[4:]))]; ok {
		t.Fatalf("magic of posix-mq.img is CRIU's %s", name)
	}
}

// TestPosixMQCorrupt: every truncation and every flipped byte of the
// image is either read or an error wrapping image.ErrCorrupt, never a
// panic; a few inconsistent entries are refused.
func TestPosixMQCorrupt(t *testing.T) {
	d := posixMQDump(t)
	d.PosixMQs = testQueues()
	if err := d.writePosixMQs(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(d.Dir.Path, image.PosixMQName())
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	load := func(b []byte) error {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		l := posixMQDump(t)
		l.Dir = d.Dir
		return l.loadPosixMQs()
	}
	for n := 0; n < len(good); n++ {
		if err := load(good[:n]); n > 8 && err == nil {
			// A cut between entries is a shorter but sound image.
			continue
		} else if err != nil && !errors.Is(err, image.ErrCorrupt) {
			t.Fatalf("truncated to %d bytes: %v, not ErrCorrupt", n, err)
		}
	}
	for i := 8; i < len(good); i++ {
		for _, x := range []byte{0x01, 0x80, 0xff} {
			b := append([]byte(nil), good...)
			b[i] ^= x
			if err := load(b); err != nil && !errors.Is(err, image.ErrCorrupt) {
				t.Fatalf("byte %d ^ %#x: %v, not ErrCorrupt", i, x, err)
			}
		}
	}
	bad := map[string]*PosixMQ{
		"no id":             {Name: "q", MaxMsg: 1, MsgSize: 1, Files: []MQFile{{ID: 3}}},
		"slash in name":     {ID: 1, Name: "a/b", MaxMsg: 1, MsgSize: 1, Files: []MQFile{{ID: 3}}},
		"too many messages": {ID: 1, Name: "q", MaxMsg: 1, MsgSize: 4, Msgs: []MQMsg{{1, nil}, {0, nil}}, Files: []MQFile{{ID: 3}}},
		"message too long":  {ID: 1, Name: "q", MaxMsg: 1, MsgSize: 2, Msgs: []MQMsg{{1, []byte("abc")}}, Files: []MQFile{{ID: 3}}},
		"priority too high": {ID: 1, Name: "q", MaxMsg: 1, MsgSize: 2, Msgs: []MQMsg{{MQPrioMax, nil}}, Files: []MQFile{{ID: 3}}},
		"not receive order": {ID: 1, Name: "q", MaxMsg: 2, MsgSize: 2, Msgs: []MQMsg{{1, nil}, {2, nil}}, Files: []MQFile{{ID: 3}}},
		"no file":           {ID: 1, Name: "q", MaxMsg: 1, MsgSize: 1},
		"file not EXT":      {ID: 1, Name: "q", MaxMsg: 1, MsgSize: 1, Files: []MQFile{{ID: 7}}},
		"outside, unlinked": {ID: 1, Name: "q", Outside: true, Unlinked: true, MaxMsg: 1, MsgSize: 1, Files: []MQFile{{ID: 3}}},
		"zero msgsize":      {ID: 1, Name: "q", MaxMsg: 1, Files: []MQFile{{ID: 3}}},
		"bad notify":        {ID: 1, Name: "q", MaxMsg: 1, MsgSize: 1, Notify: &MQNotify{Notify: 2, Pid: 1}, Files: []MQFile{{ID: 3}}},
	}
	for what, q := range bad {
		l := posixMQDump(t)
		l.PosixMQs = []*PosixMQ{q}
		if err := l.writePosixMQs(); err != nil {
			t.Fatal(err)
		}
		if err := l.loadPosixMQs(); !errors.Is(err, image.ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", what, err)
		}
	}
	// Two queues with one id, one file on two queues.
	l := posixMQDump(t)
	l.PosixMQs = []*PosixMQ{testQueues()[1], testQueues()[1]}
	if err := l.writePosixMQs(); err != nil {
		t.Fatal(err)
	}
	if err := l.loadPosixMQs(); !errors.Is(err, image.ErrCorrupt) {
		t.Errorf("queue id twice: %v, want ErrCorrupt", err)
	}
	// Wrong wire types.
	for _, raw := range [][]byte{
		{0x0a, 0x01, 0x00},       // id as bytes
		{0x10, 0x01},             // name as a varint
		{0x62, 0x02, 0x0a, 0x00}, // a message's prio as bytes
		{0x62, 0x05, 0x12, 0x09}, // a message's data overruns
		{0x08},                   // truncated varint
	} {
		if _, err := DecodePosixMQ(raw); !errors.Is(err, image.ErrCorrupt) {
			t.Errorf("DecodePosixMQ(% x): %v, want ErrCorrupt", raw, err)
		}
	}
}

func FuzzDecodePosixMQ(f *testing.F) {
	for _, q := range testQueues() {
		f.Add(EncodePosixMQ(q))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := DecodePosixMQ(b)
		if err != nil {
			if !errors.Is(err, image.ErrCorrupt) {
				t.Fatalf("%v, not ErrCorrupt", err)
			}
			return
		}
		if q2, err := DecodePosixMQ(EncodePosixMQ(q)); err != nil || !reflect.DeepEqual(q, q2) {
			t.Fatalf("round trip of %+v: %+v, %v", q, q2, err)
		}
	})
}
