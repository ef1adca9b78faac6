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
	"google.golang.org/protobuf/encoding/protowire"
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
func posixMQDump(t *testing.T) *Dump { return posixMQDumpIn(t.TempDir()) }

// posixMQDumpIn is posixMQDump in directory dir.
func posixMQDumpIn(dir string) *Dump {
	d := &Dump{Dir: image.Dir{Path: dir}, Files: map[uint32]*fdinfo.FileEntry{}}
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
	// CRIU's SysV message-queue image: IMG_COMMON, IPCNS_MSG, then
	// entries a SysV reader takes as queues and their messages.
	b, err := os.ReadFile(filepath.Join(d.Dir.Path, image.PosixMQName()))
	if err != nil {
		t.Fatal(err)
	}
	m := magic.LoadMagic()
	if binary.LittleEndian.Uint32(b) != uint32(m.ByName["IMG_COMMON"]) || binary.LittleEndian.Uint32(b[4:]) != uint32(m.ByName["IPCNS_MSG"]) {
		t.Fatalf("magics %#x %#x", binary.LittleEndian.Uint32(b), binary.LittleEndian.Uint32(b[4:]))
	}
	s, err := d.loadSysVMsgAs(image.PosixMQName())
	if err != nil {
		t.Fatal(err)
	}
	if len(s) != 3 {
		t.Fatalf("%d SysV queues", len(s))
	}
	e := s[0].Entry
	if d := e.GetDesc(); d.GetId() != 1 || d.GetUid() != 1000 || d.GetGid() != 1001 || d.GetCuid() != 1000 || d.GetCgid() != 1001 || d.GetMode() != 0o640 || d.GetKey() != 0 ||
		e.GetQbytes() != 8*128 || e.GetQnum() != 4 {
		t.Fatalf("queue 1 as a SysV queue: %v", e)
	}
	if got := s[0].Msgs[1]; got.Type != 7 || string(got.Text) != "high-2" {
		t.Fatalf("message 2 as a SysV message: %+v", got)
	}
	if q := (&PosixMQ{MaxMsg: 65536, MsgSize: 16 << 20}); mqQbytes(q) != 1<<32-1 {
		t.Fatalf("qbytes of the largest queue: %d", mqQbytes(q))
	}
}

// loadSysVMsgAs reads image name as CRIU's SysV queues, as crit does.
func (d *Dump) loadSysVMsgAs(name string) ([]SysVMsgQueue, error) {
	if err := os.Rename(filepath.Join(d.Dir.Path, name), filepath.Join(d.Dir.Path, image.IpcMsgName(9))); err != nil {
		return nil, err
	}
	defer os.Rename(filepath.Join(d.Dir.Path, image.IpcMsgName(9)), filepath.Join(d.Dir.Path, name))
	if err := d.Dir.Write(image.IpcShmName(9), image.MagicIpcShm); err != nil {
		return nil, err
	}
	if err := d.Dir.Write(image.IpcSemName(9), image.MagicIpcSem); err != nil {
		return nil, err
	}
	s, err := d.loadSysV(9)
	if err != nil {
		return nil, err
	}
	return s.Msg, nil
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
	// Own fields with the wrong wire types, a later field skipped.
	entry := func(extra ...byte) []byte {
		msgs, _ := EncodePosixMQ(&PosixMQ{ID: 1, Name: "q", MaxMsg: 1, MsgSize: 1, Files: []MQFile{{ID: 3}}})
		b, err := proto.Marshal(msgs[0])
		if err != nil {
			t.Fatal(err)
		}
		return append(b, extra...)
	}
	tag := func(n protowire.Number, typ protowire.Type) []byte { return protowire.AppendTag(nil, n, typ) }
	for _, raw := range [][]byte{
		append(tag(mqMaxmsg, protowire.BytesType), 0x01, 0x00),      // maxmsg as bytes
		append(tag(mqName, protowire.VarintType), 0x01),             // name as a varint
		append(tag(mqFiles, protowire.BytesType), 0x02, 0x0a, 0x00), // a file's id as bytes
		append(tag(mqFiles, protowire.BytesType), 0x05, 0x08),       // a file overruns
		tag(mqMaxmsg, protowire.VarintType),                         // truncated varint
		{0x10, 0x05},                                                // ipc_msg_entry.qbytes twice, wrong
	} {
		if _, _, err := decodeMQEntry(entry(raw...)); !errors.Is(err, image.ErrCorrupt) {
			t.Errorf("decodeMQEntry(... % x): %v, want ErrCorrupt", raw, err)
		}
	}
	if _, _, err := decodeMQEntry(append(entry(), append(tag(170299, protowire.BytesType), 0x01, 0x00)...)); err != nil {
		t.Errorf("a later field: %v", err)
	}
	if _, _, err := decodeMQEntry(entry()[2:]); !errors.Is(err, image.ErrCorrupt) {
		t.Errorf("an entry without desc: %v, want ErrCorrupt", err)
	}
}

// FuzzPosixMQImage: any posix-mq.img is read or refused with
// image.ErrCorrupt, and what is read is written back the same.
func FuzzPosixMQImage(f *testing.F) {
	d := posixMQDumpIn(f.TempDir())
	d.PosixMQs = testQueues()
	if err := d.writePosixMQs(); err != nil {
		f.Fatal(err)
	}
	good, err := os.ReadFile(filepath.Join(d.Dir.Path, image.PosixMQName()))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Fuzz(func(t *testing.T, b []byte) {
		l := posixMQDump(t)
		path := filepath.Join(l.Dir.Path, image.PosixMQName())
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := l.loadPosixMQs(); err != nil {
			if !errors.Is(err, image.ErrCorrupt) {
				t.Fatalf("%v, not ErrCorrupt", err)
			}
			return
		}
		if err := l.writePosixMQs(); err != nil {
			t.Fatal(err)
		}
		l2 := posixMQDump(t)
		l2.Dir = l.Dir
		if err := l2.loadPosixMQs(); err != nil || !reflect.DeepEqual(l.PosixMQs, l2.PosixMQs) {
			t.Fatalf("round trip of %+v: %+v, %v", l.PosixMQs, l2.PosixMQs, err)
		}
	})
}
