//go:build linux && amd64

package fd

import (
	"testing"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/tty"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/model"
)

func TestTtyModes(t *testing.T) {
	var tio unix.Termios
	tio.Iflag = unix.ICRNL | unix.IXON | unix.IUTF8
	tio.Oflag = unix.OPOST | unix.ONLCR
	tio.Lflag = unix.ICANON | unix.ECHO | unix.ECHOE | unix.ECHOCTL | unix.ISIG | unix.IEXTEN
	tio.Cc[unix.VEOF], tio.Cc[unix.VEOL], tio.Cc[unix.VEOL2] = 4, 0, 'x'
	raw := rawTermios(tio)
	if canonical(raw) || raw.Lflag&(unix.ECHO|unix.ISIG) != 0 || raw.Iflag&unix.ICRNL != 0 || raw.Oflag&unix.OPOST != 0 || raw.Cc[unix.VMIN] != 1 {
		t.Errorf("raw: %+v", raw)
	}
	fill := fillTermios(tio)
	if !canonical(fill) || fill.Lflag&unix.ECHO == 0 || fill.Lflag&(unix.ECHOCTL|unix.ECHOE|unix.ISIG) != 0 ||
		fill.Lflag&unix.IEXTEN == 0 || fill.Iflag&(unix.ICRNL|unix.IXON) != 0 || fill.Iflag&unix.IUTF8 == 0 || fill.Oflag&unix.OPOST != 0 {
		t.Errorf("fill: %+v", fill)
	}
	// '\n' always ends a line; a disabled VEOL (0) never does; VEOL2
	// only with IEXTEN.
	if !lineEnd(tio, '\n') || lineEnd(tio, 0) || !lineEnd(tio, 'x') || lineEnd(tio, 'a') {
		t.Error("line ends")
	}
	tio.Lflag &^= unix.IEXTEN
	if lineEnd(tio, 'x') {
		t.Error("VEOL2 without IEXTEN ends a line")
	}
}

func TestPtyTyped(t *testing.T) {
	var tio unix.Termios
	tio.Lflag = unix.ICANON | unix.ECHO | unix.IEXTEN
	tio.Cc[unix.VEOF], tio.Cc[unix.VERASE], tio.Cc[unix.VLNEXT], tio.Cc[unix.VKILL] = 4, 0x7f, 0x16, 0x15
	got, err := appendTyped(nil, tio, []byte("a\x7fb\x16\x04"))
	if err != nil || string(got) != "a\x16\x7fb\x16\x16\x16\x04" {
		t.Fatalf("typed %q, %v", got, err)
	}
	// A line ended by VEOF: its bytes, the escapes' targets; no VEOF.
	typed := append(got, 4)
	if n := typedEcho(tio, typed); n != 5 {
		t.Errorf("echo of %q: %d bytes, want 5", typed, n)
	}
	tio.Lflag &^= unix.IEXTEN
	if _, err := appendTyped(nil, tio, []byte{0x7f}); err == nil {
		t.Error("an erase character queued again without IEXTEN")
	}
	tio.Lflag &^= unix.ICANON
	if n := typedEcho(tio, []byte{4, 0x16, 'x'}); n != 3 {
		t.Errorf("non-canonical echo: %d", n)
	}
}

func TestPtyNumbers(t *testing.T) {
	if ptyMasterInfo(3) == ptySlaveInfo(3) || ptySlaveInfo(3) == ptyMasterInfo(4) || ptyMasterInfo(1000) >= stdioInfoBase || ptySlaveInfo(2) != 4 || ptyMasterInfo(2) != 5 {
		t.Error("tty-info ids collide")
	}
	for _, c := range []struct {
		rdev uint64
		want int
	}{{unix.Mkdev(136, 3), 3}, {unix.Mkdev(137, 1), 257}, {unix.Mkdev(144, 0), -1}, {unix.Mkdev(5, 2), -1}, {unix.Mkdev(4, 1), -1}} {
		if got := slaveIndex(&File{Stat: unix.Stat_t{Mode: unix.S_IFCHR, Rdev: c.rdev}}); got != c.want {
			t.Errorf("slaveIndex(%d:%d) = %d, want %d", unix.Major(c.rdev), unix.Minor(c.rdev), got, c.want)
		}
	}
	if !isPtmx(&File{Stat: unix.Stat_t{Mode: unix.S_IFCHR, Rdev: unix.Mkdev(5, 2)}}) || isPtmx(&File{Stat: unix.Stat_t{Mode: unix.S_IFCHR, Rdev: unix.Mkdev(5, 0)}}) {
		t.Error("isPtmx")
	}
	if !isDevTTY(&unix.Stat_t{Mode: unix.S_IFCHR, Rdev: unix.Mkdev(5, 0)}) {
		t.Error("isDevTTY")
	}
}

// c_cc is packed as CRIU packs it: the characters' bytes four to a
// 32-bit word, little-endian, in 19 words; termiosOf reads that and the
// one-character-a-word form of older ckpt images.
func TestTermiosCCCRIU(t *testing.T) {
	var tio unix.Termios
	tio.Lflag = unix.ICANON
	for i := range tio.Cc {
		tio.Cc[i] = uint8(i + 1)
	}
	e := termiosEntry(&tio)
	w := e.GetCCc()
	if len(w) != 19 || w[0] != 0x04030201 || w[4] != 0x00131211 || w[5] != 0 || w[18] != 0 {
		t.Fatalf("c_cc words %#x", w)
	}
	if got := termiosOf(e); got.Cc != tio.Cc || got.Lflag != tio.Lflag {
		t.Errorf("round trip: %v, want %v", got.Cc, tio.Cc)
	}
	// A CRIU image of a terminal with Linux's default characters
	// (VINTR ^C, VQUIT ^\, VERASE DEL, VKILL ^U, VEOF ^D, VTIME 0, VMIN 1,
	// ...).
	criu := []uint32{0x157f1c03, 0x00010004, 0x001a1311, 0x16170f12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	cc := termiosOf(&tty.TermiosEntry{CCc: criu}).Cc
	if cc[unix.VINTR] != 3 || cc[unix.VERASE] != 0x7f || cc[unix.VEOF] != 4 || cc[unix.VMIN] != 1 || cc[unix.VSUSP] != 0x1a || cc[unix.VLNEXT] != 0x16 || cc[unix.VKILL] != 0x15 || cc[unix.VSTOP] != 0x13 {
		t.Errorf("CRIU's c_cc read as %v", cc)
	}
	// One character a word (older ckpt images).
	old := make([]uint32, 19)
	for i := range old {
		old[i] = uint32(tio.Cc[i])
	}
	if got := termiosOf(&tty.TermiosEntry{CCc: old}).Cc; got != tio.Cc {
		t.Errorf("one character a word read as %v", got)
	}
}

// A CRIU dump names its tty-info entries by CRIU's ids and has one only
// for an end some task holds: ptyEnd finds each end by index and device,
// ptyInfo falls back to the other end.
func TestPtyEndCRIUIds(t *testing.T) {
	info := func(idx uint32, rdev uint64, locked bool, sid uint32) *tty.TtyInfoEntry {
		return &tty.TtyInfoEntry{Type: tty.TtyType_PTY.Enum(), Rdev: proto.Uint32(uint32(rdev)), Locked: proto.Bool(locked),
			Sid: proto.Uint32(sid), Pty: &tty.TtyPtyEntry{Index: proto.Uint32(idx)}}
	}
	ptmx := unix.Mkdev(ttyauxMajor, ptmxMinor)
	d := &model.Dump{TtyInfos: map[uint32]*tty.TtyInfoEntry{
		1: info(0, ptmx, false, 0),
		4: info(0, unix.Mkdev(ptySlaveMajor, 0), false, 77),
		5: info(3, ptmx, true, 0),
	}}
	if id, ti := ptyEnd(d, 0, false); id != 4 || ti.GetSid() != 77 {
		t.Errorf("slave of pair 0: id %d", id)
	}
	if id, _ := ptyEnd(d, 0, true); id != 1 {
		t.Errorf("master of pair 0: id %d", id)
	}
	if id, ti := ptyEnd(d, 3, false); id != 0 || ti != nil {
		t.Errorf("pair 3 has no slave entry, got id %d", id)
	}
	if ti := ptyInfo(d, 3, false); !ti.GetLocked() {
		t.Errorf("pair 3: the master's entry (locked) not found: %v", ti)
	}
	// ckpt's own ids come first.
	d.TtyInfos[ptySlaveInfo(0)] = info(0, unix.Mkdev(ptySlaveMajor, 0), false, 88)
	if id, ti := ptyEnd(d, 0, false); id != ptySlaveInfo(0) || ti.GetSid() != 88 {
		t.Errorf("ckpt's id of pair 0's slave: got %#x", id)
	}
}
