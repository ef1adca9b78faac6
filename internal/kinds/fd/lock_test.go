package fd

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/fdinfo"
	filelock "github.com/checkpoint-restore/go-criu/v8/crit/images/file-lock"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/ckerr"
	"github.com/ckpt/ckpt/internal/model"
	"github.com/ckpt/ckpt/internal/procfs"
	"github.com/ckpt/ckpt/internal/uapi"
)

// openLocked opens a new file in dir, closed after the test.
func openLocked(t *testing.T, dir, name string, flags int) int {
	t.Helper()
	fd, err := unix.Open(filepath.Join(dir, name), flags|unix.O_CREAT|unix.O_CLOEXEC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	closeAfter(t, fd)
	return fd
}

// POSIX, OFD and flock locks of this process: classified as regular
// files with --file-locks, refused without it; collected once each, with
// CRIU's flag, type and len.
func TestClassifyCollectLocks(t *testing.T) {
	dir := t.TempDir()
	pid := os.Getpid()
	fp := openLocked(t, dir, "posix", unix.O_RDWR)
	fo := openLocked(t, dir, "ofd", unix.O_RDWR)
	ff := openLocked(t, dir, "flock", unix.O_RDWR)
	if err := unix.FcntlFlock(uintptr(fp), unix.F_SETLK, &unix.Flock_t{Type: unix.F_WRLCK, Start: 20, Len: 10}); err != nil {
		t.Fatal(err)
	}
	if err := unix.FcntlFlock(uintptr(fp), unix.F_SETLK, &unix.Flock_t{Type: unix.F_RDLCK, Start: 100}); err != nil {
		t.Fatal(err)
	}
	if err := unix.FcntlFlock(uintptr(fo), unix.F_OFD_SETLK, &unix.Flock_t{Type: unix.F_RDLCK, Start: 0, Len: 5}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(ff, unix.LOCK_SH); err != nil {
		t.Fatal(err)
	}
	dup, err := unix.Dup(ff)
	if err != nil {
		t.Fatal(err)
	}
	closeAfter(t, dup)
	k := New()
	var locks Locks
	ids := map[int]uint32{fp: 1, fo: 2, ff: 3, dup: 3} // dup shares ff's open file
	for _, fd := range []int{fp, fo, ff, dup} {
		f := ownFile(t, fd)
		_, err := k.Classify(pid, f, Options{})
		var ue *ckerr.UnsupportedError
		if !errors.As(err, &ue) || !strings.Contains(ue.Reason, "use --file-locks") || !strings.Contains(ue.Object, "lock") {
			t.Errorf("fd %d without --file-locks: %v", fd, err)
		}
		kind, err := k.Classify(pid, f, Options{FileLocks: true})
		if err != nil || kind != Kind(k.regfile) {
			t.Fatalf("fd %d with --file-locks: %v, %v", fd, kind, err)
		}
		if err := locks.Collect(77, pid, f, ids[fd]); err != nil {
			t.Fatal(err)
		}
	}
	type ent struct {
		flag, typ uint32
		fd        int32
		start     int64
		len       int64
	}
	var got []ent
	for _, e := range locks.Entries {
		if e.GetPid() != 77 {
			t.Errorf("pid %d, want the images' 77", e.GetPid())
		}
		got = append(got, ent{e.GetFlag(), e.GetType(), e.GetFd(), e.GetStart(), e.GetLen()})
	}
	want := []ent{
		{1, unix.F_WRLCK, int32(fp), 20, 10},
		{1, unix.F_RDLCK, int32(fp), 100, 0}, // to EOF
		{4, unix.F_RDLCK, int32(fo), 0, 5},
		{2, unix.F_RDLCK, int32(ff), 0, 0}, // once, for ff and its dup
	}
	if len(got) != len(want) {
		t.Fatalf("entries %+v, want %+v", got, want)
	}
	for _, w := range want {
		found := false
		for _, g := range got {
			found = found || g == w
		}
		if !found {
			t.Errorf("no entry %+v in %+v", w, got)
		}
	}
	// A POSIX lock listed in another process's fd table (CLONE_FILES).
	if _, err := k.Classify(pid+100000, ownFile(t, fp), Options{FileLocks: true}); err == nil || !strings.Contains(err.Error(), "CLONE_FILES") {
		t.Errorf("a POSIX lock of another process: %v", err)
	}
}

// Leases and locks on files that are not reopened by path are refused
// even with --file-locks.
func TestClassifyRefusesLocks(t *testing.T) {
	dir := t.TempDir()
	fl := openLocked(t, dir, "lease", unix.O_RDONLY)
	if _, err := unix.FcntlInt(uintptr(fl), unix.F_SETLEASE, unix.F_RDLCK); err != nil {
		t.Skipf("F_SETLEASE: %v", err)
	}
	_, err := New().Classify(os.Getpid(), ownFile(t, fl), Options{FileLocks: true})
	if err == nil || !strings.Contains(err.Error(), "LEASE") || !strings.Contains(err.Error(), "F_SETLEASE") {
		t.Errorf("a lease: %v", err)
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	closeAfter(t, p[0], p[1])
	if err := unix.Flock(p[0], unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	_, err = New().Classify(os.Getpid(), ownFile(t, p[0]), Options{FileLocks: true})
	if err == nil || !strings.Contains(err.Error(), "pipe") || !strings.Contains(err.Error(), "reopened by path") {
		t.Errorf("a flock'ed pipe: %v", err)
	}
}

func TestCheckLockWaits(t *testing.T) {
	if err := CheckLockWaits(os.Getpid()); err != nil {
		t.Error(err)
	}
}

// lockDump is a dump of process 10 with fds 3 and 4, and its locks.
func lockDump(locks ...*filelock.FileLockEntry) *model.Dump {
	d := &model.Dump{Files: map[uint32]*fdinfo.FileEntry{1: RegEntry(1, "/tmp/x", unix.O_RDWR, 0, &unix.Stat_t{})}}
	d.Procs = []*model.Process{
		{Tree: d, Pid: 10, Fds: []*fdinfo.FdinfoEntry{{Id: proto.Uint32(1), Fd: proto.Uint32(3)}, {Id: proto.Uint32(1), Fd: proto.Uint32(4)}}},
		{Tree: d, Pid: 11, Zombie: true},
	}
	d.FileLocks = locks
	return d
}

func lockE(flag, typ uint32, pid, fd int32, start, n int64) *filelock.FileLockEntry {
	return &filelock.FileLockEntry{Flag: proto.Uint32(flag), Type: proto.Uint32(typ), Pid: proto.Int32(pid), Fd: proto.Int32(fd), Start: proto.Int64(start), Len: proto.Int64(n)}
}

func TestCheckLocks(t *testing.T) {
	ok := lockE(1, unix.F_WRLCK, 10, 3, 20, 10)
	if err := CheckLocks(lockDump(ok, lockE(2, unix.F_RDLCK, 10, 4, 0, 0), lockE(4, unix.F_RDLCK, 10, 4, 0, 0)), Options{FileLocks: true}); err != nil {
		t.Errorf("good locks: %v", err)
	}
	if err := CheckLocks(lockDump(), Options{}); err != nil {
		t.Errorf("no locks: %v", err)
	}
	err := CheckLocks(lockDump(ok), Options{})
	if err == nil || !strings.Contains(err.Error(), "--file-locks") || !strings.Contains(err.Error(), "POSIX write lock on bytes 20-29") {
		t.Errorf("without --file-locks: %v", err)
	}
	if err := CheckLocks(lockDump(lockE(8, unix.F_RDLCK, 10, 3, 0, 0)), Options{FileLocks: true}); err == nil || !strings.Contains(err.Error(), "a lease of task 10") {
		t.Errorf("a lease (CRIU's FL_LEASE): %v", err)
	}
	for _, bad := range []*filelock.FileLockEntry{
		lockE(16, unix.F_RDLCK, 10, 3, 0, 0), // no such kind
		lockE(1, 5, 10, 3, 0, 0),             // no such type
		lockE(1, unix.F_RDLCK, 10, 3, -1, 0), // negative start
		lockE(1, unix.F_RDLCK, 10, 9, 0, 0),  // no fd 9
		lockE(1, unix.F_RDLCK, 11, 3, 0, 0),  // a zombie
		lockE(1, unix.F_RDLCK, 12, 3, 0, 0),  // no such process
	} {
		if err := CheckLocks(lockDump(ok, bad), Options{FileLocks: true}); !errors.Is(err, ckerr.ErrCorruptImage) {
			t.Errorf("%v: %v, want a corrupt image", bad, err)
		}
	}
}

// lockRestorer records the calls RestoreLocks makes.
type lockRestorer struct {
	Restorer
	compat bool
	d      *model.Dump
	put    []byte
	calls  []string
	fail   error
}

func (r *lockRestorer) Compat() bool                 { return r.compat }
func (r *lockRestorer) Dump() *model.Dump            { return r.d }
func (r *lockRestorer) Put(b []byte) (uint64, error) { r.put = b; return 0x1000, nil }
func (r *lockRestorer) Syscall(s x86.Syscall, args ...uint64) (uint64, error) {
	return r.call("64", s, args)
}
func (r *lockRestorer) Syscall32(s x86.Syscall, args ...uint64) (uint64, error) {
	return r.call("32", s, args)
}

func (r *lockRestorer) call(abi string, s x86.Syscall, args []uint64) (uint64, error) {
	c := fmt.Sprintf("%s %v %d %d", abi, s, args[0], args[1])
	if s == x86.SysFcntl {
		f := uapi.DecodeFlock(r.put)
		c += fmt.Sprintf(" %d %d %d+%d", len(r.put), f.Type, f.Start, f.Len)
	}
	r.calls = append(r.calls, c)
	return 0, r.fail
}

// RestoreLocks takes each lock of the process with the task's ABI:
// fcntl F_SETLK and struct flock (32 bytes) for x86_64, fcntl64
// F_SETLK64 (13) and the packed struct flock64 (24 bytes) for ia32,
// F_OFD_SETLK (37) for OFD locks, flock with LOCK_NB.
func TestRestoreLocks(t *testing.T) {
	d := lockDump(lockE(1, unix.F_WRLCK, 10, 3, 20, 10), lockE(4, unix.F_RDLCK, 10, 4, 5, 0), lockE(2, unix.F_WRLCK, 10, 4, 0, 0), lockE(2, unix.F_RDLCK, 99, 4, 0, 0))
	for _, c := range []struct {
		compat bool
		want   []string
	}{
		{false, []string{"64 fcntl 3 6 32 1 20+10", "64 fcntl 4 37 32 0 5+0", "64 flock 4 6"}},
		{true, []string{"32 fcntl 3 13 24 1 20+10", "32 fcntl 4 37 24 0 5+0", "32 flock 4 6"}},
	} {
		r := &lockRestorer{compat: c.compat, d: d}
		if err := RestoreLocks(r, 10, d.Procs[0].Fds); err != nil {
			t.Fatal(err)
		}
		if strings.Join(r.calls, "; ") != strings.Join(c.want, "; ") {
			t.Errorf("compat %v: calls %q, want %q", c.compat, r.calls, c.want)
		}
	}
	r := &lockRestorer{d: d, fail: unix.EAGAIN}
	err := RestoreLocks(r, 10, d.Procs[0].Fds)
	if !errors.Is(err, unix.EAGAIN) || !strings.Contains(err.Error(), "fd 3 (/tmp/x)") || !strings.Contains(err.Error(), "POSIX write lock on bytes 20-29") || !strings.Contains(err.Error(), "another process") {
		t.Errorf("a lock taken meanwhile: %v", err)
	}
}

// Lock lines of kinds a dump refuses even with --file-locks, as fdinfo
// would show them (mandatory locks on kernels before 5.15).
func TestCheckLocksRefused(t *testing.T) {
	for line, want := range map[string]string{
		"1: POSIX  MANDATORY WRITE 10 08:01:5 0 EOF": "mandatory lock",
		"1: DELEG  ACTIVE    READ 10 08:01:5 0 EOF":  "F_SETLEASE",
		"1: LEASE  BREAKING  READ 10 08:01:5 0 EOF":  "F_SETLEASE",
		"1: ACCESS ADVISORY  READ 10 08:01:5 0 EOF":  "does not know",
		"1: FLOCK  ADVISORY  MSNFS 10 08:01:5 0 EOF": "does not know",
	} {
		f := &File{Fd: 3, Path: "/x", Info: &procfs.FdInfo{Extra: map[string]string{"lock": line}}}
		ls, err := f.locks()
		if err != nil {
			t.Fatal(err)
		}
		err = checkLocks(10, f, ls, Options{FileLocks: true})
		var ue *ckerr.UnsupportedError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), want) || !strings.Contains(ue.Object, "fd 3 (/x)") {
			t.Errorf("%s: %v, want a refusal naming %q", line, err, want)
		}
	}
	bad := &File{Fd: 3, Path: "/x", Info: &procfs.FdInfo{Extra: map[string]string{"lock": "1: POSIX"}}}
	if _, err := New().Classify(10, bad, Options{FileLocks: true}); err == nil || !strings.Contains(err.Error(), "fd 3 (/x)") {
		t.Errorf("a lock line that does not parse: %v", err)
	}
}
