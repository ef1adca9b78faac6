//go:build linux && amd64

package fd

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/fdinfo"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/model"
)

// A seqpacket pair of this process is collected with its records, which
// stay queued; a peer outside what was matched is refused.
func TestUnixCollect(t *testing.T) {
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	closeAfter(t, sp[0], sp[1])
	for _, m := range []string{"one", "", "three!"} {
		if _, err := unix.Write(sp[0], []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	pidfd, err := unix.PidfdOpen(os.Getpid(), 0)
	if err != nil {
		t.Skip("no pidfd:", err)
	}
	closeAfter(t, pidfd)
	collect := func(k *Kinds, fd int) (*fdinfo.FileEntry, *model.Dump, error) {
		d := &model.Dump{}
		f := ownFile(t, fd)
		kind, err := k.Classify(os.Getpid(), f, Options{})
		if err != nil {
			return nil, nil, err
		}
		e := &fdinfo.FileEntry{Id: proto.Uint32(d.NextFileID())}
		return e, d, kind.Collect(Task{Pid: os.Getpid(), Dump: d, Pidfd: pidfd}, f, 2, e)
	}
	// Only one end matched: its peer is outside.
	if _, _, err := collect(New(), sp[1]); err == nil || !strings.Contains(err.Error(), "outside the dumped tree") {
		t.Errorf("lone end: %v", err)
	}
	k := New()
	if _, err := k.Classify(os.Getpid(), ownFile(t, sp[0]), Options{}); err != nil {
		t.Fatal(err)
	}
	e, d, err := collect(k, sp[1])
	if err != nil {
		t.Fatal(err)
	}
	u := e.GetUsk()
	if e.GetType() != fdinfo.FdTypes_UNIXSK || u.GetType() != unix.SOCK_SEQPACKET || u.GetPeer() == 0 {
		t.Errorf("entry %v", e)
	}
	q := d.SkQueues[e.GetId()]
	if len(q) != 3 || string(q[0]) != "one" || len(q[1]) != 0 || string(q[2]) != "three!" {
		t.Errorf("queue %q", q)
	}
	// Still queued, and the peek offset is off again.
	b := make([]byte, 16)
	n, err := unix.Read(sp[1], b)
	if err != nil || !bytes.Equal(b[:n], []byte("one")) {
		t.Errorf("after the dump: %q, %v", b[:n], err)
	}
	if off, err := unix.GetsockoptInt(sp[1], unix.SOL_SOCKET, unix.SO_PEEK_OFF); err != nil || off != -1 {
		t.Errorf("SO_PEEK_OFF %d, %v", off, err)
	}
}

// Descriptors in flight are refused by name and not lost.
func TestUnixRightsInFlight(t *testing.T) {
	for _, typ := range []int{unix.SOCK_DGRAM, unix.SOCK_STREAM} {
		rightsInFlight(t, typ)
	}
}

func rightsInFlight(t *testing.T, typ int) {
	sp, err := unix.Socketpair(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	closeAfter(t, sp[0], sp[1])
	// Plain bytes first: the descriptor waits behind them.
	if _, err := unix.Write(sp[0], []byte("plain")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Sendmsg(sp[0], []byte("fd"), unix.UnixRights(0), nil, 0); err != nil {
		t.Fatal(err)
	}
	_, err = peekQueue(sp[1], uint8(typ), false)
	if err != errInFlight {
		t.Errorf("type %d: peek: %v", typ, err)
	}
	if n, err := unix.Read(sp[1], make([]byte, 5)); n != 5 || err != nil {
		t.Errorf("type %d: the plain bytes: %d, %v", typ, n, err)
	}
	oob := make([]byte, 64)
	_, oobn, _, _, err := unix.Recvmsg(sp[1], make([]byte, 8), oob, unix.MSG_DONTWAIT)
	if err != nil || oobn == 0 {
		t.Errorf("type %d: the descriptor is gone: %v", typ, err)
	}
	if cms, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
		for _, cm := range cms {
			if fds, err := unix.ParseUnixRights(&cm); err == nil {
				for _, f := range fds {
					unix.Close(f)
				}
			}
		}
	}
}

// A datagram socket connected outside the tree is refused, or with
// --ext-unix-sk dumped with its peer as an external entry.
func TestUnixExtDgram(t *testing.T) {
	srv, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	closeAfter(t, srv)
	name := "@ckpt-test-ext-" + strings.Repeat("x", 3) + string(rune('a'+os.Getpid()%26))
	if err := unix.Bind(srv, &unix.SockaddrUnix{Name: name}); err != nil {
		t.Fatal(err)
	}
	cli, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	closeAfter(t, cli)
	if err := unix.Connect(cli, &unix.SockaddrUnix{Name: name}); err != nil {
		t.Fatal(err)
	}
	pidfd, err := unix.PidfdOpen(os.Getpid(), 0)
	if err != nil {
		t.Skip("no pidfd:", err)
	}
	closeAfter(t, pidfd)
	for _, ext := range []bool{false, true} {
		k, d := New(), &model.Dump{}
		f := ownFile(t, cli)
		kind, err := k.Classify(os.Getpid(), f, Options{ExtUnixSk: ext})
		if err != nil {
			t.Fatal(err)
		}
		e := &fdinfo.FileEntry{Id: proto.Uint32(1)}
		err = kind.Collect(Task{Pid: os.Getpid(), Dump: d, Pidfd: pidfd, Opts: Options{ExtUnixSk: ext}}, f, 2, e)
		if !ext {
			if err == nil || !strings.Contains(err.Error(), "--ext-unix-sk") {
				t.Errorf("without --ext-unix-sk: %v", err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(d.Unlisted) != 1 || d.Unlisted[0].GetUsk().GetUflags() != uskExtern || d.Unlisted[0].GetUsk().GetIno() != e.GetUsk().GetPeer() ||
			string(d.Unlisted[0].GetUsk().GetName()) != "\x00"+name[1:] {
			t.Errorf("external peer %v", d.Unlisted)
		}
	}
}
