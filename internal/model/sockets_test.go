//go:build linux && amd64

package model

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/fdinfo"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/fown"
	skinet "github.com/checkpoint-restore/go-criu/v8/crit/images/sk-inet"
	skopts "github.com/checkpoint-restore/go-criu/v8/crit/images/sk-opts"
	tcpstream "github.com/checkpoint-restore/go-criu/v8/crit/images/tcp-stream"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/image"
)

// The senders of queued datagrams (sk_packet_entry field 3) and the
// established TCP streams come back from their images as written; a
// stream image whose unsent bytes exceed its send queue is corrupt.
func TestInetImages(t *testing.T) {
	dir := t.TempDir()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	d := testDump(t, dir, exe)
	z := proto.Uint32(0)
	isk := func(ino, proto_, state uint32) *fdinfo.FileEntry {
		return &fdinfo.FileEntry{Type: fdinfo.FdTypes_INETSK.Enum(), Isk: &skinet.InetSkEntry{
			Id: proto.Uint32(d.NextFileID()), Ino: proto.Uint32(ino), Family: proto.Uint32(2), Type: proto.Uint32(1), Proto: proto.Uint32(proto_),
			State: proto.Uint32(state), SrcPort: proto.Uint32(80), DstPort: z, Flags: z, Backlog: z, SrcAddr: []uint32{0x0100007f},
			Fown: &fown.FownEntry{Uid: z, Euid: z, Signum: z, PidType: z, Pid: z},
			Opts: &skopts.SkOptsEntry{SoSndbuf: z, SoRcvbuf: z, SoSndTmoSec: proto.Uint64(0), SoSndTmoUsec: proto.Uint64(0), SoRcvTmoSec: proto.Uint64(0), SoRcvTmoUsec: proto.Uint64(0)}}}
	}
	udp := d.AddFile(isk(700, 17, 7))
	d.AddFile(isk(701, 6, 1))
	from := []byte{2, 0, 0x1f, 0x90, 127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0}
	d.SkQueues = map[uint32][][]byte{udp: {[]byte("one"), []byte("two")}}
	d.SkAddrs = map[uint32][][]byte{udp: {from, from}}
	e := &tcpstream.TcpStreamEntry{InqLen: proto.Uint32(3), InqSeq: proto.Uint32(100), OutqLen: proto.Uint32(4), OutqSeq: proto.Uint32(200),
		OptMask: proto.Uint32(7), SndWscale: proto.Uint32(7), MssClamp: proto.Uint32(65495), UnsqLen: proto.Uint32(1),
		Nodelay: proto.Bool(true)} // where CRIU 3.17 keeps it, with no tcp_opts in the socket's entry
	d.TcpStreams = map[uint32]*TcpStream{701: {Entry: e, In: []byte("abc"), Out: []byte("wxyz")}}
	if err := d.Write(dir); err != nil {
		t.Fatal(err)
	}
	back, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if q, a := back.SkQueues[udp], back.SkAddrs[udp]; len(q) != 2 || string(q[1]) != "two" || len(a) != 2 || !bytes.Equal(a[1], from) {
		t.Errorf("queue %q, senders %v", q, a)
	}
	ts := back.TcpStreams[701]
	if ts == nil || string(ts.In) != "abc" || string(ts.Out) != "wxyz" || ts.Entry.GetOutqSeq() != 200 || ts.Entry.GetUnsqLen() != 1 {
		t.Errorf("tcp stream %+v", ts)
	}
	for _, f := range back.Files {
		if f.GetIsk().GetIno() == 701 && !f.GetIsk().GetTcpOpts().GetNodelay() {
			t.Errorf("the stream's nodelay is not the socket's: tcp_opts %v", f.GetIsk().GetTcpOpts())
		}
	}
	e.UnsqLen = proto.Uint32(9)
	if err := d.Dir.WriteWithData(image.TcpStreamName(701), image.MagicTcpStream, []proto.Message{e}, [][]byte{[]byte("abcwxyz")}); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err == nil {
		t.Error("a stream with more unsent bytes than queued loads")
	}
	if err := os.WriteFile(filepath.Join(dir, image.TcpStreamName(701)), []byte("short"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err == nil {
		t.Error("a truncated tcp-stream image loads")
	}
}

// skAddr reads field 3 among other unknown fields and refuses malformed bytes.
func TestSkAddr(t *testing.T) {
	if a := skAddr([]byte{0x08, 0x05, 0x1a, 0x02, 'h', 'i'}); string(a) != "hi" {
		t.Errorf("got %q", a)
	}
	for _, b := range [][]byte{nil, {0x1a}, {0x1a, 0x09, 'x'}, {0xff}} {
		if a := skAddr(b); a != nil {
			t.Errorf("%x: got %q", b, a)
		}
	}
}
