//go:build linux && amd64

package fd

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/fdinfo"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/tty"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/ckerr"
	"github.com/ckpt/ckpt/internal/model"
	"github.com/ckpt/ckpt/internal/procfs"
	"github.com/ckpt/ckpt/internal/uapi"
)

// ptyKind is an end of a pseudo-terminal pair whose master (/dev/ptmx)
// the dumped tree holds: the master, and the slave (/dev/pts/N) fds of
// that pair. Each end has a tty-info.img entry (type PTY, its own rdev,
// the pair's index N) with the pair's state: the slave's termios and
// window size, packet mode, lock state, the session that has the slave
// as its controlling terminal and that session's foreground process
// group; tty-data.img holds the bytes waiting for each end's reader, by
// that end's tty-info id.
//
// The restore opens a new pair (/dev/ptmx in the task that held the
// master), so the slave's number N may differ; slaves are opened as
// /dev/pts/<new N>. The session leader that had the slave as its
// controlling terminal takes it again (TIOCSCTTY), and once every
// process of the tree exists its foreground process group is set
// (TIOCSPGRP, FinishTree).
//
// A slave whose master is not in the tree is a terminal of the outside
// world: stdioKind's Collect takes it (inherited stdio with --shell-job)
// or refuses it; the restore gives it to stdioKind by its tty-info type.
type ptyKind struct {
	// masters are the indexes (N) of the pairs whose master the dumped
	// tree holds, as seen by Match.
	masters map[int]bool
	// tree are the processes of the dumped tree whose files were
	// classified (every live one).
	tree map[int]bool
	// restored maps a dumped pair's index to its new slave's path.
	restored map[uint32]string
	// cttys are, by the dumped pair's index, the session leaders that
	// took the slave as their controlling terminal at restore, with the
	// fd they hold.
	cttys map[uint32]ctty
	// masterFds are, by the dumped pair's index, the restored masters
	// (the first fd of each).
	masterFds map[uint32]ctty
	// spares are, by the dumped pair's index, masters made early, above
	// the dumped fds, for a slave that comes first in its process; the
	// master's own fd takes it.
	spares map[uint32]ctty
	// slaveFirst are, at dump, the pairs whose slave was collected before
	// their master, with the process that holds it.
	slaveFirst map[int]int
}

type ctty struct {
	r   Restorer
	num int
}

// Device numbers (include/uapi/linux/major.h): /dev/ptmx is 5:2
// (TTYAUX_MAJOR), Unix98 slaves take majors 136-143
// (UNIX98_PTY_SLAVE_MAJOR, UNIX98_PTY_MAJOR_COUNT 8), 256 minors each.
const (
	ttyauxMajor    = 5
	ptmxMinor      = 2
	ptySlaveMajor  = 136
	ptySlaveMajors = 8
)

// The tty-info ids of pty ends are CRIU's (criu/tty.c, tty_gen_id): pair
// N's slave has 2N, its master 2N+1; CRIU pairs the ends by these ids and
// refuses a larger one than 2*1088 (MAX_TTYS) with termios. An inherited
// terminal's (stdio.go) is stdioInfoBase plus its file's id, apart from
// them. Older ckpt dumps numbered pty ends from 0x40000000; ptyEnd finds
// them by index.
const stdioInfoBase = 0x40000000

func ptyMasterInfo(idx int) uint32 { return 2*uint32(idx) + 1 }
func ptySlaveInfo(idx int) uint32  { return 2 * uint32(idx) }

// ptyEnd is the tty-info id and entry of one end of pair idx in d:
// ckpt's own ids (ptyMasterInfo, ptySlaveInfo), or in a CRIU dump, whose
// ids are CRIU's file ids, the entry of that pty index and end. CRIU
// writes an entry only for an end some task holds open; 0 and nil when
// there is none (0 is a valid id: pair 0's slave).
func ptyEnd(d *model.Dump, idx uint32, master bool) (uint32, *tty.TtyInfoEntry) {
	want := ptySlaveInfo(int(idx))
	if master {
		want = ptyMasterInfo(int(idx))
	}
	isEnd := func(ti *tty.TtyInfoEntry) bool {
		return ti.GetType() == tty.TtyType_PTY && ti.GetPty().GetIndex() == idx &&
			(unix.Major(uint64(ti.GetRdev())) == ttyauxMajor) == master
	}
	if ti := d.TtyInfos[want]; ti != nil && isEnd(ti) {
		return want, ti
	}
	ids := make([]uint32, 0, len(d.TtyInfos))
	for id := range d.TtyInfos {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		if isEnd(d.TtyInfos[id]) {
			return id, d.TtyInfos[id]
		}
	}
	return 0, nil
}

// ptyInfo is the tty-info entry of pair idx that tells its session,
// foreground group and lock: the given end's, else the other's (the
// ioctls that read them act on the slave from either end).
func ptyInfo(d *model.Dump, idx uint32, master bool) *tty.TtyInfoEntry {
	if _, ti := ptyEnd(d, idx, master); ti != nil {
		return ti
	}
	_, ti := ptyEnd(d, idx, !master)
	return ti
}

func isPtmx(f *File) bool {
	return f.Stat.Mode&unix.S_IFMT == unix.S_IFCHR && unix.Major(f.Stat.Rdev) == ttyauxMajor && unix.Minor(f.Stat.Rdev) == ptmxMinor
}

// slaveIndex is N of a /dev/pts/N slave, -1 for another file.
func slaveIndex(f *File) int {
	if f.Stat.Mode&unix.S_IFMT != unix.S_IFCHR {
		return -1
	}
	ma, mi := unix.Major(f.Stat.Rdev), unix.Minor(f.Stat.Rdev)
	if ma < ptySlaveMajor || ma >= ptySlaveMajor+ptySlaveMajors {
		return -1
	}
	return int(ma-ptySlaveMajor)*256 + int(mi)
}

func (*ptyKind) Name() string { return "pty" }

// seen notes a process of the dumped tree.
func (k *ptyKind) seen(pid int) {
	if k.tree == nil {
		k.tree = map[int]bool{}
	}
	k.tree[pid] = true
}

func (k *ptyKind) Match(f *File, o Options) (bool, error) {
	if isPtmx(f) {
		// fdinfo's tty-index (drivers/tty/pty.c, pty_show_fdinfo).
		n, err := strconv.Atoi(strings.TrimSpace(f.Info.Extra["tty-index"]))
		if err != nil {
			return false, fmt.Errorf("fd %d (%s): fdinfo has no tty-index: %v", f.Fd, f.Path, err)
		}
		if k.masters == nil {
			k.masters = map[int]bool{}
		}
		k.masters[n] = true
		return true, nil
	}
	// Every slave, and /dev/tty (which may be one): whether its master
	// is in the tree is known only once every fd of the tree has been
	// seen, in Collect.
	return slaveIndex(f) >= 0 || isDevTTY(&f.Stat), nil
}

func (k *ptyKind) Collect(t Task, f *File, flags uint32, e *fdinfo.FileEntry) error {
	var info uint32
	if isPtmx(f) {
		idx, err := k.collectPair(t, f)
		if err != nil {
			return err
		}
		info = ptyMasterInfo(idx)
	} else {
		idx := slaveIndex(f)
		if isDevTTY(&f.Stat) {
			// /dev/tty is the task's controlling terminal: when that is
			// a slave of the tree's, the restore opens that slave (by
			// its name, as the restored task may not have its
			// controlling terminal yet).
			st, err := procfs.ReadStat(t.Pid)
			if err != nil {
				return fmt.Errorf("fd %d (%s): %w", f.Fd, f.Path, err)
			}
			idx = slaveIndex(&File{Stat: unix.Stat_t{Mode: unix.S_IFCHR, Rdev: uint64(st.TtyNr)}})
		}
		if idx < 0 || !k.masters[idx] {
			// A terminal of the outside world.
			var sk stdioKind
			if _, err := sk.Match(f, t.Opts); err != nil {
				var ue *ckerr.UnsupportedError
				if errors.As(err, &ue) {
					ue.Task = t.Pid
				}
				return err
			}
			return sk.Collect(t, f, flags, e)
		}
		if _, ok := t.Dump.TtyInfos[ptyMasterInfo(idx)]; !ok {
			// The restore meets this slave before its master.
			if k.slaveFirst == nil {
				k.slaveFirst = map[int]int{}
			}
			if _, seen := k.slaveFirst[idx]; !seen {
				k.slaveFirst[idx] = t.Pid
			}
		}
		info = ptySlaveInfo(idx)
	}
	// The path and flags go into a regular-file entry of their own too,
	// which CRIU opens (tty_file_entry's regf_id; CRIU refuses a pty end
	// without one as deprecated); e takes the id after it (see
	// model.AddFile).
	regID := t.Dump.AddFile(RegEntry(t.Dump.NextFileID(), f.Path, flags, 0, &f.Stat))
	id := proto.Uint32(t.Dump.NextFileID())
	e.Id = id
	e.Type = fdinfo.FdTypes_TTY.Enum()
	e.Tty = &tty.TtyFileEntry{Id: id, TtyInfoId: proto.Uint32(info), Flags: proto.Uint32(flags), Fown: noOwner(), RegfId: proto.Uint32(regID)}
	return nil
}

// collectPair fills the pair's tty-info entry and its queued bytes from
// the master at fd f of the task, through a copy of it (pidfd_getfd):
// opening /dev/ptmx again would make a new pair.
func (k *ptyKind) collectPair(t Task, f *File) (int, error) {
	fail := func(err error) (int, error) { return 0, fmt.Errorf("fd %d (pty master): %w", f.Fd, err) }
	m, err := unix.PidfdGetfd(t.Pidfd, f.Fd, 0)
	if err != nil {
		return fail(fmt.Errorf("pidfd_getfd: %w", err))
	}
	defer unix.Close(m)
	idx, err := unix.IoctlGetInt(m, unix.TIOCGPTN)
	if err != nil {
		return fail(fmt.Errorf("TIOCGPTN: %w", err))
	}
	if _, done := t.Dump.TtyInfos[ptyMasterInfo(idx)]; done {
		return idx, nil // another fd of this master, dumped already
	}
	if p, ok := k.slaveFirst[idx]; ok && p != t.Pid {
		return 0, ckerr.Unsupported(t.Pid, fmt.Sprintf("fd %d, the master of /dev/pts/%d", f.Fd, idx),
			fmt.Sprintf("process %d, which the restore makes first, holds the slave: ckpt restores a pair whose slave comes first only within the process that holds the master", p))
	}
	locked, err := unix.IoctlGetInt(m, unix.TIOCGPTLCK)
	if err != nil {
		return fail(fmt.Errorf("TIOCGPTLCK: %w", err))
	}
	pkt, err := unix.IoctlGetInt(m, unix.TIOCGPKT)
	if err != nil {
		return fail(fmt.Errorf("TIOCGPKT: %w", err))
	}
	// On a master, the termios and window size ioctls act on the slave
	// (drivers/tty/tty_io.c, tty_pair_get_tty), as do TIOCGSID and
	// TIOCGPGRP, which a process outside the session may ask there.
	tio, err := unix.IoctlGetTermios(m, unix.TCGETS)
	if err != nil {
		return fail(fmt.Errorf("TCGETS: %w", err))
	}
	ws, err := unix.IoctlGetWinsize(m, unix.TIOCGWINSZ)
	if err != nil {
		return fail(fmt.Errorf("TIOCGWINSZ: %w", err))
	}
	// The locked termios (TIOCSLCKTRMIOS, root only): CRIU takes a master
	// without it for a corrupt image (criu/tty.c, verify_info).
	ltio, err := unix.IoctlGetTermios(m, unix.TIOCGLCKTRMIOS)
	if err != nil {
		return fail(fmt.Errorf("TIOCGLCKTRMIOS: %w", err))
	}
	sid, err := unix.IoctlGetInt(m, unix.TIOCGSID)
	if errors.Is(err, unix.ENOTTY) {
		sid, err = 0, nil // no session has it as its terminal
	}
	if err != nil {
		return fail(fmt.Errorf("TIOCGSID: %w", err))
	}
	pgrp := 0
	if sid != 0 && !k.tree[sid] {
		return 0, ckerr.Unsupported(t.Pid, fmt.Sprintf("fd %d, the master of /dev/pts/%d, the controlling terminal of session %d", f.Fd, idx, sid),
			"the session's leader is not in the dumped tree, and only it can make the restored terminal its controlling terminal again; dump the tree from the session leader")
	}
	if sid != 0 {
		// The restore compares the session with the restored processes'
		// PIDs as ckpt sees them, which a PID namespace of the tree's
		// own changes.
		if st, err := procfs.ReadStatus(sid); err == nil && len(st.NSpid) > 1 {
			return 0, ckerr.Unsupported(t.Pid, fmt.Sprintf("fd %d, the master of /dev/pts/%d, the controlling terminal of session %d", f.Fd, idx, sid),
				"the session is in a PID namespace of its own, where ckpt does not restore a controlling terminal yet")
		}
	}
	if sid != 0 && !leaderHolds(sid, idx) {
		return 0, ckerr.Unsupported(t.Pid, fmt.Sprintf("fd %d, the master of /dev/pts/%d, the controlling terminal of session %d", f.Fd, idx, sid),
			"the session leader holds no fd of the terminal, through which the restore would make it its controlling terminal again; keep one open in the leader")
	}
	if sid != 0 {
		if pgrp, err = unix.IoctlGetInt(m, unix.TIOCGPGRP); err != nil {
			return fail(fmt.Errorf("TIOCGPGRP: %w", err))
		}
	}
	// The slave's owner: grantpt(3) or the program may have changed it.
	var sst unix.Stat_t
	if err := unix.Stat(fmt.Sprintf("/dev/pts/%d", idx), &sst); err != nil {
		return fail(fmt.Errorf("stat the slave: %w", err))
	}
	in, out, err := ptyQueues(m, idx, *tio, locked != 0)
	if err != nil {
		return 0, ckerr.Unsupported(t.Pid, fmt.Sprintf("fd %d, the master of /dev/pts/%d", f.Fd, idx), err.Error())
	}
	if t.Dump.TtyInfos == nil {
		t.Dump.TtyInfos = map[uint32]*tty.TtyInfoEntry{}
	}
	if t.Dump.TtyData == nil {
		t.Dump.TtyData = map[uint32][]byte{}
	}
	for _, end := range []struct {
		id   uint32
		rdev uint64
		data []byte
	}{
		{ptyMasterInfo(idx), unix.Mkdev(ttyauxMajor, ptmxMinor), out},
		{ptySlaveInfo(idx), unix.Mkdev(ptySlaveMajor+uint32(idx/256), uint32(idx%256)), in},
	} {
		t.Dump.TtyInfos[end.id] = &tty.TtyInfoEntry{
			Id: proto.Uint32(end.id), Type: tty.TtyType_PTY.Enum(), Locked: proto.Bool(locked != 0), Exclusive: proto.Bool(false),
			PacketMode: proto.Bool(pkt != 0), Sid: proto.Uint32(uint32(sid)), Pgrp: proto.Uint32(uint32(pgrp)),
			Rdev: proto.Uint32(uint32(end.rdev)), Termios: termiosEntry(tio), TermiosLocked: termiosEntry(ltio), Winsize: winsizeEntry(ws), Pty: &tty.TtyPtyEntry{Index: proto.Uint32(uint32(idx))},
			Uid: proto.Uint32(sst.Uid), Gid: proto.Uint32(sst.Gid),
		}
		if len(end.data) > 0 {
			t.Dump.TtyData[end.id] = end.data
		}
	}
	return idx, nil
}

// termiosNCC is how many c_cc words a termios_entry has (CRIU's
// TERMIOS_NCC, criu/include/tty.h).
const termiosNCC = 19

// termiosEntry is tio as CRIU writes it (criu/tty.c, termios_copy): CRIU
// copies the bytes of libc's c_cc array into the repeated uint32 c_cc,
// four characters to a word, little-endian, in termiosNCC words; the
// kernel's 19 characters fill the first five words, the rest are zero.
func termiosEntry(tio *unix.Termios) *tty.TermiosEntry {
	cc := make([]uint32, termiosNCC)
	for i, c := range tio.Cc {
		cc[i/4] |= uint32(c) << (8 * (i % 4))
	}
	return &tty.TermiosEntry{
		CIflag: proto.Uint32(tio.Iflag), COflag: proto.Uint32(tio.Oflag), CCflag: proto.Uint32(tio.Cflag), CLflag: proto.Uint32(tio.Lflag),
		CLine: proto.Uint32(uint32(tio.Line)), CIspeed: proto.Uint32(tio.Ispeed), COspeed: proto.Uint32(tio.Ospeed), CCc: cc,
	}
}

// ccPacked tells CRIU's packing of c_cc (termiosEntry) from the one
// character a word that ckpt wrote before: a packed word may exceed 255,
// and past the fifth word packed ones are zero while a word a character
// holds VMIN, VSTART, VSTOP, ... there.
func ccPacked(w []uint32) bool {
	for _, v := range w {
		if v > 0xff {
			return true
		}
	}
	for _, v := range w[min(5, len(w)):] {
		if v != 0 {
			return false
		}
	}
	return true
}

func winsizeEntry(ws *unix.Winsize) *tty.WinsizeEntry {
	return &tty.WinsizeEntry{WsRow: proto.Uint32(uint32(ws.Row)), WsCol: proto.Uint32(uint32(ws.Col)), WsXpixel: proto.Uint32(uint32(ws.Xpixel)), WsYpixel: proto.Uint32(uint32(ws.Ypixel))}
}

func termiosOf(te *tty.TermiosEntry) unix.Termios {
	tio := unix.Termios{Iflag: te.GetCIflag(), Oflag: te.GetCOflag(), Cflag: te.GetCCflag(), Lflag: te.GetCLflag(),
		Line: uint8(te.GetCLine()), Ispeed: te.GetCIspeed(), Ospeed: te.GetCOspeed()}
	w := te.GetCCc()
	packed := ccPacked(w)
	for i := range tio.Cc {
		switch {
		case packed && i/4 < len(w):
			tio.Cc[i] = uint8(w[i/4] >> (8 * (i % 4)))
		case !packed && i < len(w):
			tio.Cc[i] = uint8(w[i])
		}
	}
	return tio
}

// Open makes the pty end of e at fd num: a new pair for a master, the
// new pair's slave for a slave.
func (k *ptyKind) Open(r Restorer, num int, cloexec bool, e *fdinfo.FileEntry) error {
	te := e.GetTty()
	ti := r.Dump().TtyInfos[te.GetTtyInfoId()]
	if ti == nil || ti.GetType() != tty.TtyType_PTY || ti.GetTermios() == nil {
		return fmt.Errorf("fd %d: terminal %d is not a pty of the dump", num, te.GetTtyInfoId())
	}
	id := ti.GetPty().GetIndex()
	if k.restored == nil {
		k.restored = map[uint32]string{}
		k.cttys = map[uint32]ctty{}
		k.masterFds = map[uint32]ctty{}
		k.spares = map[uint32]ctty{}
	}
	flags := uint64(te.GetFlags()) &^ unix.O_CLOEXEC
	if unix.Major(uint64(ti.GetRdev())) == ttyauxMajor {
		if err := k.openMaster(r, num, cloexec, flags, id, ti); err != nil {
			return fmt.Errorf("fd %d (pty master of /dev/pts/%d): %w", num, ti.GetPty().GetIndex(), err)
		}
		return nil
	}
	path, ok := k.restored[id]
	if !ok {
		// The master comes later in this process: make the pair now,
		// its master set aside for it.
		got, err := openPtmx(r, unix.O_RDWR, int(id))
		if err != nil {
			return fmt.Errorf("fd %d: open /dev/ptmx for the slave's pair: %w", num, err)
		}
		moved, err := r.Syscall(x86.SysFcntl, got, unix.F_DUPFD, uint64(r.MaxFd()+1))
		if err != nil {
			return fmt.Errorf("fd %d: set the new master aside: %w", num, err)
		}
		if _, err := r.Syscall(x86.SysClose, got); err != nil {
			return fmt.Errorf("fd %d: close: %w", num, err)
		}
		if err := k.setupPair(r, int(moved), id, ti); err != nil {
			return fmt.Errorf("fd %d (pty slave, its master made first): %w", num, err)
		}
		k.spares[id] = ctty{r, int(moved)}
		path = k.restored[id]
	}
	got, err := openTTY(r, path, flags)
	if err != nil {
		return fmt.Errorf("fd %d: open %s (was /dev/pts/%d): %w", num, path, ti.GetPty().GetIndex(), err)
	}
	if err := r.Place(int(got), num, cloexec); err != nil {
		return fmt.Errorf("fd %d: %w", num, err)
	}
	return nil
}

// Finish makes a restored slave the controlling terminal of the session
// leader it was that of (TIOCSCTTY on an fd of it, opened here or
// inherited from its parent); the processes of its session forked after
// it get it from it.
func (k *ptyKind) Finish(r Restorer) error {
	for id, sp := range k.spares {
		if sp.r.Pid() == r.Pid() {
			return fmt.Errorf("the master of /dev/pts/%d is not in the fd table of process %d, which holds its slave first", id, r.Pid())
		}
	}
	for id, path := range k.restored {
		ti := ptyInfo(r.Dump(), id, false)
		if sid := int(ti.GetSid()); sid == 0 || sid != r.Pid() {
			continue
		}
		if _, done := k.cttys[id]; done {
			continue
		}
		var want unix.Stat_t
		if err := unix.Stat(path, &want); err != nil {
			return fmt.Errorf("stat %s: %w", path, err)
		}
		dir := fmt.Sprintf("/proc/%d/fd", r.Pid())
		ents, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		num := -1
		for _, e := range ents {
			var st unix.Stat_t
			if unix.Stat(dir+"/"+e.Name(), &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == want.Rdev {
				num, _ = strconv.Atoi(e.Name())
				break
			}
		}
		if num < 0 {
			return fmt.Errorf("%s (was /dev/pts/%d) was the controlling terminal of session %d, whose leader holds no fd of it", path, id, r.Pid())
		}
		if _, err := r.Syscall(x86.SysIoctl, uint64(num), unix.TIOCSCTTY, 0); err != nil {
			return fmt.Errorf("fd %d: make %s the controlling terminal of session %d: %w", num, path, r.Pid(), err)
		}
		k.cttys[id] = ctty{r, num}
	}
	return nil
}

func (k *ptyKind) openMaster(r Restorer, num int, cloexec bool, flags uint64, id uint32, ti *tty.TtyInfoEntry) error {
	if sp, ok := k.spares[id]; ok && sp.r.Pid() == r.Pid() {
		delete(k.spares, id)
		if err := r.Place(sp.num, num, cloexec); err != nil {
			return err
		}
		if _, err := r.Syscall(x86.SysFcntl, uint64(num), unix.F_SETFL, flags&^unix.O_ACCMODE); err != nil {
			return fmt.Errorf("fcntl(F_SETFL): %w", err)
		}
		k.masterFds[id] = ctty{r, num}
		return nil
	}
	got, err := openPtmx(r, flags, int(id))
	if err != nil {
		return fmt.Errorf("open /dev/ptmx: %w", err)
	}
	if err := r.Place(int(got), num, cloexec); err != nil {
		return err
	}
	return k.setupPair(r, num, id, ti)
}

// setupPair gives the new pair of master fd num of the task the dumped
// pair's state: unlocked (until FinishTree locks it again), owner,
// window size, queued bytes, termios and packet mode.
func (k *ptyKind) setupPair(r Restorer, num int, id uint32, ti *tty.TtyInfoEntry) error {
	m, err := fdOf(r.Pid(), num)
	if err != nil {
		return err
	}
	defer unix.Close(m)
	if err := unix.IoctlSetPointerInt(m, unix.TIOCSPTLCK, 0); err != nil {
		return fmt.Errorf("unlock: %w", err)
	}
	idx, err := unix.IoctlGetInt(m, unix.TIOCGPTN)
	if err != nil {
		return fmt.Errorf("TIOCGPTN: %w", err)
	}
	path := fmt.Sprintf("/dev/pts/%d", idx)
	k.restored[id] = path
	k.masterFds[id] = ctty{r, num}
	if ti.Uid != nil && ti.Gid != nil {
		if err := unix.Chown(path, int(ti.GetUid()), int(ti.GetGid())); err != nil {
			return fmt.Errorf("give %s its owner %d:%d: %w", path, ti.GetUid(), ti.GetGid(), err)
		}
	}
	tio := termiosOf(ti.GetTermios())
	if tio.Line != uapi.N_TTY {
		return fmt.Errorf("line discipline %d: only N_TTY is restored", tio.Line)
	}
	if w := ti.GetWinsize(); w != nil {
		ws := unix.Winsize{Row: uint16(w.GetWsRow()), Col: uint16(w.GetWsCol()), Xpixel: uint16(w.GetWsXpixel()), Ypixel: uint16(w.GetWsYpixel())}
		if err := unix.IoctlSetWinsize(m, unix.TIOCSWINSZ, &ws); err != nil {
			return fmt.Errorf("window size: %w", err)
		}
	}
	var in, out []byte
	if sid, ti := ptyEnd(r.Dump(), id, false); ti != nil {
		in = r.Dump().TtyData[sid]
	}
	if mid, ti := ptyEnd(r.Dump(), id, true); ti != nil {
		out = r.Dump().TtyData[mid]
	}
	if len(in) > 0 || len(out) > 0 {
		s, err := unix.Open(path, unix.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open %s to refill it: %w", path, err)
		}
		defer unix.Close(s)
		if err := refillPty(m, s, tio, in, out); err != nil {
			return err
		}
	} else if err := unix.IoctlSetTermios(m, unix.TCSETS, &tio); err != nil {
		return fmt.Errorf("set the dumped termios: %w", err)
	}
	if l := ti.GetTermiosLocked(); l != nil {
		if ltio := termiosOf(l); ltio != (unix.Termios{}) {
			if err := unix.IoctlSetTermios(m, unix.TIOCSLCKTRMIOS, &ltio); err != nil {
				return fmt.Errorf("set the dumped locked termios: %w", err)
			}
		}
	}
	if ti.GetPacketMode() {
		if err := unix.IoctlSetPointerInt(m, unix.TIOCPKT, 1); err != nil {
			return fmt.Errorf("packet mode: %w", err)
		}
	}
	return nil
}

// FinishTree runs once every process of the tree exists: each restored
// controlling terminal gets its session's foreground process group
// (TIOCSPGRP works only from inside the session), and pairs dumped
// locked are locked again.
func (k *ptyKind) FinishTree() error {
	for id, c := range k.masterFds {
		ti := ptyInfo(c.r.Dump(), id, false)
		if sid := ti.GetSid(); sid != 0 {
			if _, ok := k.cttys[id]; !ok {
				return fmt.Errorf("/dev/pts/%d was the controlling terminal of session %d, whose leader opened no fd of it at restore", id, sid)
			}
		}
		// The lock is read on a master (TIOCGPTLCK): CRIU's entry of a
		// slave does not say it.
		if !ptyInfo(c.r.Dump(), id, true).GetLocked() {
			continue
		}
		if err := lockPty(c.r.Pid(), c.num); err != nil {
			return fmt.Errorf("task %d: fd %d: lock the pty again: %w", c.r.Pid(), c.num, err)
		}
	}
	for id, c := range k.cttys {
		ti := ptyInfo(c.r.Dump(), id, false)
		pgrp := ti.GetPgrp()
		if pgrp == 0 || pgrp == ti.GetSid() {
			continue // TIOCSCTTY made the leader's group the foreground
		}
		b := make([]byte, 4)
		b[0], b[1], b[2], b[3] = byte(pgrp), byte(pgrp>>8), byte(pgrp>>16), byte(pgrp>>24)
		p, err := c.r.Put(b)
		if err != nil {
			return err
		}
		if _, err := c.r.Syscall(x86.SysIoctl, uint64(c.num), unix.TIOCSPGRP, p); err != nil {
			return fmt.Errorf("task %d: make process group %d the foreground of %s: %w", c.r.Pid(), pgrp, k.restored[id], err)
		}
	}
	return nil
}

// lockPty locks the pair of master fd num of task pid (TIOCSPTLCK).
func lockPty(pid, num int) error {
	m, err := fdOf(pid, num)
	if err != nil {
		return err
	}
	defer unix.Close(m)
	return unix.IoctlSetPointerInt(m, unix.TIOCSPTLCK, 1)
}

// leaderHolds tells whether process sid holds an fd of /dev/pts/idx: a
// session leader takes its controlling terminal back at restore by
// TIOCSCTTY on such an fd.
func leaderHolds(sid, idx int) bool {
	dir := fmt.Sprintf("/proc/%d/fd", sid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range ents {
		var st unix.Stat_t
		if unix.Stat(dir+"/"+e.Name(), &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFCHR &&
			slaveIndex(&File{Stat: st}) == idx {
			return true
		}
	}
	return false
}

// openTTY opens a terminal in the task, never as its controlling
// terminal. An ia32 task's opens use the ia32 call, which does not add
// O_LARGEFILE (see openAt).
func openTTY(r Restorer, path string, flags uint64) (uint64, error) {
	p, err := r.PutString(path)
	if err != nil {
		return 0, err
	}
	if r.Compat() {
		return r.Syscall32(x86.SysOpenat, atFdcwd, p, flags|unix.O_NOCTTY, 0)
	}
	return r.Syscall(x86.SysOpenat, atFdcwd, p, flags|unix.O_NOCTTY, 0)
}

// maxPtyReach bounds the pairs ckpt holds to get a slave number back.
const maxPtyReach = 1024

// openPtmx opens /dev/ptmx in the task, trying for the dumped slave
// number want: devpts gives a new pair the lowest free number
// (drivers/tty/pty.c, devpts_new_index), so ckpt holds pairs of its own
// on the free numbers below want meanwhile. When want is taken, the task
// gets another number (a program that kept the slave's name finds
// another terminal there).
func openPtmx(r Restorer, flags uint64, want int) (uint64, error) {
	var held []int
	defer func() {
		for _, fd := range held {
			unix.Close(fd)
		}
	}()
	for len(held) < maxPtyReach && want < maxPtyReach {
		fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
		if err != nil {
			break
		}
		n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
		if err != nil || n >= want {
			unix.Close(fd) // frees want, now the lowest free number
			break
		}
		held = append(held, fd)
	}
	return openTTY(r, "/dev/ptmx", flags)
}
