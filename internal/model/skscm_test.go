//go:build linux && amd64

package model

import (
	"os"
	"reflect"
	"testing"

	skpacket "github.com/checkpoint-restore/go-criu/v8/crit/images/sk-packet"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/image"
)

// The files in flight of queued unix messages (sk_packet_entry's scm,
// SCM_RIGHTS) come back beside their messages; another kind of control
// data is refused at load.
func TestSkScm(t *testing.T) {
	dir := t.TempDir()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	d := testDump(t, dir, exe)
	var sk uint32
	for id := range d.SkQueues {
		sk = id
	}
	d.SkQueues[sk] = [][]byte{[]byte("a"), []byte("bc"), []byte("d")}
	d.SkScm = map[uint32][][]uint32{sk: {nil, {1, 1}, nil}}
	if err := d.Write(dir); err != nil {
		t.Fatal(err)
	}
	back, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := back.SkScm[sk], [][]uint32{nil, {1, 1}}; !reflect.DeepEqual(got, want) {
		t.Errorf("scm %v, want %v", got, want)
	}
	if q := back.SkQueues[sk]; len(q) != 3 || string(q[1]) != "bc" {
		t.Errorf("queue %q", q)
	}
	bad := &skpacket.SkPacketEntry{IdFor: proto.Uint32(sk), Length: proto.Uint32(1),
		Scm: []*skpacket.ScmEntry{{Type: proto.Uint32(2)}}} // SCM_CREDENTIALS
	if err := d.Dir.WriteWithData(image.SkQueuesName(), image.MagicSkQueues, []proto.Message{bad}, [][]byte{[]byte("x")}); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err == nil {
		t.Error("a message with SCM_CREDENTIALS control data loads")
	}
}
