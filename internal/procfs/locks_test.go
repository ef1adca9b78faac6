package procfs

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

// A /proc/locks of Linux 6.18 (file_locks_cr, with a blocked flock
// request of another process and a lease added).
const procLocks = `1: FLOCK  ADVISORY  WRITE 2553 fe:00:9986513 0 EOF
1: -> FLOCK  ADVISORY  WRITE 2600 fe:00:9986513 0 EOF
2: FLOCK  ADVISORY  READ 2553 fe:00:9986511 0 EOF
3: OFDLCK ADVISORY  READ -1 fe:00:9986510 10 19
4: POSIX  ADVISORY  WRITE 2553 fe:00:9986509 100 EOF
5: POSIX  ADVISORY  READ 2553 103:1f:12 0 9
6: LEASE  ACTIVE    READ 2553 fe:00:9986514 0 EOF
7: POSIX  *NOINODE* WRITE 0 <none>:0 0 EOF
`

func TestParseLocks(t *testing.T) {
	ls, err := ParseLocks([]byte(procLocks))
	if err != nil {
		t.Fatal(err)
	}
	want := []Lock{
		{ID: 1, Class: "FLOCK", Mode: "ADVISORY", Type: "WRITE", Pid: 2553, Major: 0xfe, Ino: 9986513, End: LockEOF},
		{ID: 1, Blocked: true, Class: "FLOCK", Mode: "ADVISORY", Type: "WRITE", Pid: 2600, Major: 0xfe, Ino: 9986513, End: LockEOF},
		{ID: 2, Class: "FLOCK", Mode: "ADVISORY", Type: "READ", Pid: 2553, Major: 0xfe, Ino: 9986511, End: LockEOF},
		{ID: 3, Class: "OFDLCK", Mode: "ADVISORY", Type: "READ", Pid: -1, Major: 0xfe, Ino: 9986510, Start: 10, End: 19},
		{ID: 4, Class: "POSIX", Mode: "ADVISORY", Type: "WRITE", Pid: 2553, Major: 0xfe, Ino: 9986509, Start: 100, End: LockEOF},
		{ID: 5, Class: "POSIX", Mode: "ADVISORY", Type: "READ", Pid: 2553, Major: 0x103, Minor: 0x1f, Ino: 12, End: 9},
		{ID: 6, Class: "LEASE", Mode: "ACTIVE", Type: "READ", Pid: 2553, Major: 0xfe, Ino: 9986514, End: LockEOF},
		{ID: 7, Class: "POSIX", Mode: "*NOINODE*", Type: "WRITE", End: LockEOF},
	}
	if !reflect.DeepEqual(ls, want) {
		t.Errorf("got\n%+v\nwant\n%+v", ls, want)
	}
	if s := ls[3].String(); s != "OFDLCK READ lock on bytes 10-19 of inode fe:00:9986510, pid -1" {
		t.Errorf("String: %q", s)
	}
}

func TestParseFdinfoLockLines(t *testing.T) {
	// fdinfo's lines, as ParseFdInfo joins them into Extra["lock"].
	fi, err := ParseFdInfo([]byte("pos:\t0\nflags:\t02\nmnt_id:\t30\nino:\t9986509\n" +
		"lock:\t1: POSIX  ADVISORY  READ 2553 fe:00:9986509 0 9\nlock:\t2: POSIX  ADVISORY  WRITE 2553 fe:00:9986509 20 29\n"))
	if err != nil {
		t.Fatal(err)
	}
	ls, err := ParseLocks([]byte(fi.Extra["lock"]))
	if err != nil || len(ls) != 2 || ls[1].Start != 20 || ls[1].End != 29 || ls[1].Type != "WRITE" {
		t.Fatalf("%+v, %v", ls, err)
	}
	if l, err := ParseLockLine("lock:\t3: FLOCK  ADVISORY  WRITE 1 08:01:5 0 EOF"); err != nil || l.ID != 3 || l.Class != "FLOCK" {
		t.Errorf("with its key: %+v, %v", l, err)
	}
}

func TestParseLockLineErrors(t *testing.T) {
	for _, s := range []string{
		"",
		"1:",
		"x: POSIX ADVISORY WRITE 1 08:01:5 0 EOF",
		"1: POSIX ADVISORY WRITE 1 08:01:5 0",
		"1: POSIX ADVISORY WRITE pid 08:01:5 0 EOF",
		"1: POSIX ADVISORY WRITE 1 08:01 0 EOF",
		"1: POSIX ADVISORY WRITE 1 zz:01:5 0 EOF",
		"1: POSIX ADVISORY WRITE 1 08:01:5 -3 EOF",
		"1: POSIX ADVISORY WRITE 1 08:01:5 10 9",
		"1: POSIX ADVISORY WRITE 1 08:01:5 0 EOF extra",
	} {
		if l, err := ParseLockLine(s); err == nil {
			t.Errorf("%q: no error, %+v", s, l)
		}
	}
	if _, err := ParseLocks([]byte("1: FLOCK ADVISORY WRITE 1 08:01:5 0 EOF\nbad\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("error %v does not name line 2", err)
	}
}

func TestReadLocksLive(t *testing.T) {
	if _, err := ReadLocks(); err != nil {
		t.Fatal(err)
	}
}

func FuzzParseLocks(f *testing.F) {
	f.Add([]byte(procLocks))
	f.Fuzz(func(t *testing.T, b []byte) {
		ls, err := ParseLocks(b)
		if err != nil {
			return
		}
		for _, l := range ls {
			if l.Start < 0 || (l.End != LockEOF && l.End < l.Start) {
				t.Fatalf("bad range %+v", l)
			}
		}
	})
}

func TestParseTaskSyscall(t *testing.T) {
	s, err := ParseTaskSyscall([]byte("72 0x4 0x26 0x7ffd1000 0x0 0x0 0x0 0x7ffd0ff8 0x7f1234\n"))
	if err != nil || s.Running || s.Nr != 72 || s.Args[0] != 4 || s.Args[1] != 0x26 || s.Args[2] != 0x7ffd1000 {
		t.Errorf("in fcntl: %+v, %v", s, err)
	}
	if s, err := ParseTaskSyscall([]byte("running\n")); err != nil || !s.Running {
		t.Errorf("running: %+v, %v", s, err)
	}
	if s, err := ParseTaskSyscall([]byte("-1 0x7ffd0ff8 0x7f1234\n")); err != nil || s.Nr != -1 {
		t.Errorf("outside a call: %+v, %v", s, err)
	}
	for _, bad := range []string{"", "x 0x1", "72 0x1", "72 0x1 0x2 0x3 0x4 0x5 zz 0x7 0x8", "-1 0x1"} {
		if s, err := ParseTaskSyscall([]byte(bad)); err == nil {
			t.Errorf("%q: no error, %+v", bad, s)
		}
	}
}

func TestReadTaskSyscallLive(t *testing.T) {
	pid := os.Getpid()
	if _, err := ReadTaskSyscall(pid, pid); err != nil {
		t.Fatal(err)
	}
}
