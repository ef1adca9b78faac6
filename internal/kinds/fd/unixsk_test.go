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
	"github.com/ckpt/ckpt/internal/uapi"
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
	// Only one end matched: its peer is outside. (After the dump above:
	// the kernel skips, at a peek offset, an empty record peeked once.)
	if _, _, err := collect(New(), sp[1]); err == nil || !strings.Contains(err.Error(), "outside the dumped tree") {
		t.Errorf("lone end: %v", err)
	}
}

// Descriptors in flight are read with their message, stay queued, and
// are collected as files of their own: a regular file with its offset
// and flags; a pipe end is refused by name.
func TestUnixRightsInFlight(t *testing.T) {
	for _, typ := range []int{unix.SOCK_DGRAM, unix.SOCK_STREAM, unix.SOCK_SEQPACKET} {
		rightsInFlight(t, typ)
	}
}

func rightsInFlight(t *testing.T, typ int) {
	sp, err := unix.Socketpair(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	closeAfter(t, sp[0], sp[1])
	file, err := os.CreateTemp(t.TempDir(), "inflight")
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	if _, err := file.WriteString("0123456789"); err != nil {
		t.Fatal(err)
	}
	if _, err := file.Seek(4, 0); err != nil {
		t.Fatal(err)
	}
	// Plain bytes first: the descriptor waits behind them.
	if _, err := unix.Write(sp[0], []byte("plain")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Sendmsg(sp[0], []byte("fd"), unix.UnixRights(int(file.Fd())), nil, 0); err != nil {
		t.Fatal(err)
	}
	msgs, fds, err := peekQueue(sp[1], uint8(typ), false)
	if err != nil {
		t.Fatalf("type %d: peek: %v", typ, err)
	}
	// A record comes whole; a stream's files go with its last byte.
	want := []string{"plain", "fd"}
	if typ == unix.SOCK_STREAM {
		want = []string{"plainf", "d"}
	}
	if len(fds) != 2 || len(msgs) != 2 || string(msgs[0]) != want[0] || string(msgs[1]) != want[1] || len(fds[0]) != 0 || len(fds[1]) != 1 {
		t.Errorf("type %d: messages %q, files %v", typ, msgs, fds)
	}
	if len(fds) > 0 && len(fds[len(fds)-1]) == 1 {
		fe, what := inFlightFile(fds[len(fds)-1][0])
		if fe == nil || fe.GetReg().GetName() != file.Name() || fe.GetReg().GetPos() != 4 || fe.GetReg().GetFlags()&unix.O_ACCMODE != unix.O_RDWR {
			t.Errorf("type %d: in flight %v (%s)", typ, fe, what)
		}
	}
	closeInFlight(fds)
	if n, err := unix.Read(sp[1], make([]byte, 5)); n != 5 || err != nil {
		t.Errorf("type %d: the plain bytes: %d, %v", typ, n, err)
	}
	oob := make([]byte, 64)
	_, oobn, _, _, err := unix.Recvmsg(sp[1], make([]byte, 8), oob, unix.MSG_DONTWAIT)
	if err != nil || oobn == 0 {
		t.Errorf("type %d: the descriptor is gone: %v", typ, err)
	}
	got, _ := rightsOf(oob[:oobn])
	closeInFlight([][]int{got})
}

// Files in flight are collected as files of their own: a regular file;
// a pipe end whose other end the tree holds, with the pipe's bytes. A
// pipe end whose other end is outside, and a socket, are refused by name.
func TestUnixCollectInFlight(t *testing.T) {
	pidfd, err := unix.PidfdOpen(os.Getpid(), 0)
	if err != nil {
		t.Skip("no pidfd:", err)
	}
	closeAfter(t, pidfd)
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	closeAfter(t, p[0], p[1])
	if _, err := unix.Write(p[1], []byte("piped")); err != nil {
		t.Fatal(err)
	}
	var pst unix.Stat_t
	if err := unix.Fstat(p[0], &pst); err != nil {
		t.Fatal(err)
	}
	reg, err := os.Open("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	for _, c := range []struct {
		name   string
		fd     int
		inTree bool
		refuse string
	}{
		{"regular file", int(reg.Fd()), false, ""},
		{"pipe", p[1], true, ""},
		{"pipe to the outside", p[1], false, "held outside the dumped tree"},
		{"socket", pidfd, false, "message 2 of its receive queue carries a file descriptor in flight (SCM_RIGHTS): a file"},
		{"unix socket", -1, false, ""},
	} {
		sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		closeAfter(t, sp[0], sp[1])
		var z [2]int
		switch c.name {
		case "socket":
			c.fd = sp[0] // held by a task too
			c.refuse = "which fd "
		case "unix socket":
			// One end of a pair whose other end the tree holds, in
			// flight only, with a byte queued.
			if z, err = unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0); err != nil {
				t.Fatal(err)
			}
			closeAfter(t, z[0])
			if _, err := unix.Write(z[0], []byte("z")); err != nil {
				t.Fatal(err)
			}
			c.fd = z[1]
		}
		if err := unix.Sendmsg(sp[0], []byte("x"), nil, nil, 0); err != nil {
			t.Fatal(err)
		}
		if err := unix.Sendmsg(sp[0], []byte("y"), unix.UnixRights(c.fd), nil, 0); err != nil {
			t.Fatal(err)
		}
		var zst unix.Stat_t
		if c.name == "unix socket" {
			if err := unix.Fstat(z[1], &zst); err != nil {
				t.Fatal(err)
			}
			unix.Close(z[1])
		}
		k, d := New(), &model.Dump{}
		if _, err := k.Classify(os.Getpid(), ownFile(t, sp[0]), Options{}); err != nil {
			t.Fatal(err)
		}
		if c.name == "unix socket" {
			if _, err := k.Classify(os.Getpid(), ownFile(t, z[0]), Options{}); err != nil {
				t.Fatal(err)
			}
		}
		f := ownFile(t, sp[1])
		kind, err := k.Classify(os.Getpid(), f, Options{})
		if err != nil {
			t.Fatal(err)
		}
		ends := func(ino uint64) (bool, bool) { return c.inTree && ino == pst.Ino, false }
		e := &fdinfo.FileEntry{Id: proto.Uint32(d.NextFileID())}
		err = kind.Collect(Task{Pid: os.Getpid(), Dump: d, Pidfd: pidfd, PipeEnds: ends}, f, 2, e)
		if c.refuse != "" {
			if err == nil || !strings.Contains(err.Error(), c.refuse) {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		if err != nil || e.GetId() != 2 || e.GetUsk().GetId() != 2 || d.Files[1] == nil {
			t.Fatalf("%s: collect: %v, entry %d, files %v", c.name, err, e.GetId(), d.Files)
		}
		if got := d.SkScm[2]; len(got) != 2 || len(got[0]) != 0 || len(got[1]) != 1 || got[1][0] != 1 {
			t.Errorf("%s: scm %v", c.name, got)
		}
		if c.name == "unix socket" {
			u := d.Files[1].GetUsk()
			if u.GetIno() != uint32(zst.Ino) || u.GetId() != 1 || u.GetPeer() == 0 || len(d.SkQueues[1]) != 1 || string(d.SkQueues[1][0]) != "z" {
				t.Errorf("socket in flight %v, its queue %q", u, d.SkQueues[1])
			}
		} else if c.fd == p[1] {
			pe := d.Files[1].GetPipe()
			if pe.GetPipeId() != uint32(pst.Ino) || pe.GetFlags()&unix.O_ACCMODE != unix.O_WRONLY || pe.GetId() != 1 || string(d.Pipes[uint32(pst.Ino)].Data) != "piped" {
				t.Errorf("pipe in flight %v, data %v", pe, d.Pipes)
			}
		} else if d.Files[1].GetReg().GetName() != reg.Name() && !strings.HasSuffix(d.Files[1].GetReg().GetName(), ".test") {
			t.Errorf("regular file in flight %v", d.Files[1])
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

// With SO_PASSPIDFD the peek installs the sender's pidfd (SCM_PIDFD),
// which peekQueue closes: no file of ckpt's is left behind.
func TestUnixPeekPidfd(t *testing.T) {
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	closeAfter(t, sp[0], sp[1])
	if err := unix.SetsockoptInt(sp[1], unix.SOL_SOCKET, uapi.SO_PASSPIDFD, 1); err != nil {
		t.Skip("no SO_PASSPIDFD:", err)
	}
	if _, err := unix.Write(sp[0], []byte("m")); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	msgs, fds, err := peekQueue(sp[1], unix.SOCK_DGRAM, false)
	if err != nil || len(msgs) != 1 || len(fds[0]) != 0 {
		t.Fatalf("peek: %q, %v, %v", msgs, fds, err)
	}
	after, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Errorf("%d fds before the peek, %d after", len(before), len(after))
	}
	// The option itself, which the image cannot hold, is refused.
	k, d := New(), &model.Dump{}
	if _, err := k.Classify(os.Getpid(), ownFile(t, sp[0]), Options{}); err != nil {
		t.Fatal(err)
	}
	f := ownFile(t, sp[1])
	kind, err := k.Classify(os.Getpid(), f, Options{})
	if err != nil {
		t.Fatal(err)
	}
	pidfd, err := unix.PidfdOpen(os.Getpid(), 0)
	if err != nil {
		t.Skip("no pidfd:", err)
	}
	closeAfter(t, pidfd)
	err = kind.Collect(Task{Pid: os.Getpid(), Dump: d, Pidfd: pidfd}, f, 2, &fdinfo.FileEntry{Id: proto.Uint32(1)})
	if err == nil || !strings.Contains(err.Error(), "SO_PASSPIDFD") {
		t.Errorf("SO_PASSPIDFD: %v", err)
	}
}

// A socket in flight whose own queue carries it (a cycle that only the
// kernel's garbage collector would free) is refused, not followed
// forever.
func TestUnixInFlightCycle(t *testing.T) {
	pidfd, err := unix.PidfdOpen(os.Getpid(), 0)
	if err != nil {
		t.Skip("no pidfd:", err)
	}
	closeAfter(t, pidfd)
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	closeAfter(t, sp[0], sp[1])
	z, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	closeAfter(t, z[0])
	// z[1] carries itself, and sp[1] carries z[1]; only sp and z[0] are
	// held.
	if err := unix.Sendmsg(z[0], []byte("self"), unix.UnixRights(z[1]), nil, 0); err != nil {
		t.Fatal(err)
	}
	if err := unix.Sendmsg(sp[0], []byte("z"), unix.UnixRights(z[1]), nil, 0); err != nil {
		t.Fatal(err)
	}
	unix.Close(z[1])
	k, d := New(), &model.Dump{}
	for _, fd := range []int{sp[0], z[0]} {
		if _, err := k.Classify(os.Getpid(), ownFile(t, fd), Options{}); err != nil {
			t.Fatal(err)
		}
	}
	f := ownFile(t, sp[1])
	kind, err := k.Classify(os.Getpid(), f, Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = kind.Collect(Task{Pid: os.Getpid(), Dump: d, Pidfd: pidfd}, f, 2, &fdinfo.FileEntry{Id: proto.Uint32(1)})
	if err == nil || !strings.Contains(err.Error(), "cycle") {
		t.Errorf("a cycle in flight: %v", err)
	}
}
