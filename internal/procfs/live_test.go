package procfs

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// These tests read this test process's own /proc entries and check facts
// that must hold for any process.

func TestLiveMapsAndSmaps(t *testing.T) {
	pid := os.Getpid()
	vmas, err := ReadMaps(pid)
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var stack, vdso, self bool
	for i, v := range vmas {
		if v.Start >= v.End || v.Start%PageSize != 0 || v.End%PageSize != 0 {
			t.Errorf("bad VMA %+v", v)
		}
		if i > 0 && v.Start < vmas[i-1].End {
			t.Errorf("VMA %d not sorted/overlapping: %+v", i, v)
		}
		switch v.Path {
		case "[stack]":
			stack = true
		case "[vdso]":
			vdso = true
			if !v.IsSpecial() {
				t.Error("[vdso] not special")
			}
		case exe:
			self = true
		}
	}
	if !stack || !vdso || !self {
		t.Errorf("stack=%v vdso=%v executable(%s)=%v", stack, vdso, exe, self)
	}

	es, err := ReadSmaps(pid)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range es {
		if len(e.Flags) == 0 {
			t.Errorf("no VmFlags for %+v", e.VMA)
		}
		if e.Anonymous > e.Rss {
			t.Errorf("Anonymous > Rss for %+v", e.VMA)
		}
		if e.VMA.Path == "[stack]" {
			found = true
			if !e.HasFlag("gd") || !e.HasFlag("rd") || !e.HasFlag("wr") {
				t.Errorf("[stack] flags %v", e.Flags)
			}
		}
	}
	if !found {
		t.Error("no [stack] in smaps")
	}
}

func TestLiveStatusAndStat(t *testing.T) {
	pid := os.Getpid()
	st, err := ReadStatus(pid)
	if err != nil {
		t.Fatal(err)
	}
	if st.Pid != pid || st.Tgid != pid || st.PPid != os.Getppid() || st.Threads < 1 {
		t.Errorf("status %+v", st)
	}
	if st.Uid[0] != uint32(os.Getuid()) || st.Uid[1] != uint32(os.Geteuid()) ||
		st.Gid[0] != uint32(os.Getgid()) || st.Gid[1] != uint32(os.Getegid()) {
		t.Errorf("ids uid=%v gid=%v", st.Uid, st.Gid)
	}
	if len(st.NSpid) == 0 || st.NSpid[0] != pid {
		t.Errorf("NSpid %v", st.NSpid)
	}
	if !st.HasUmask || st.State == "" {
		t.Errorf("status %+v", st)
	}
	umask := unix.Umask(0)
	unix.Umask(umask)
	if st.Umask != uint32(umask) {
		t.Errorf("umask %#o, want %#o", st.Umask, umask)
	}

	ts, err := ReadTaskStatus(pid, pid)
	if err != nil {
		t.Fatal(err)
	}
	if ts.Pid != pid || ts.Tgid != pid || ts.Name != st.Name {
		t.Errorf("task status %+v", ts)
	}

	s, err := ReadStat(pid)
	if err != nil {
		t.Fatal(err)
	}
	if s.Pid != pid || s.PPid != os.Getppid() || !strings.ContainsRune("RSD", rune(s.State)) || s.NumThreads < 1 || s.Comm != st.Name {
		t.Errorf("stat %+v", s)
	}
	if s.Pgrp != unix.Getpgrp() {
		t.Errorf("pgrp %d, want %d", s.Pgrp, unix.Getpgrp())
	}
	if sid, _ := unix.Getsid(0); s.Session != sid {
		t.Errorf("session %d, want %d", s.Session, sid)
	}
	if !(s.StartCode < s.EndCode && s.ArgStart < s.ArgEnd && s.EnvStart <= s.EnvEnd && s.StartStack != 0) {
		t.Errorf("stat addresses %+v", s)
	}
	// start_stack must lie inside the [stack] VMA.
	vmas, err := ReadMaps(pid)
	if err != nil {
		t.Fatal(err)
	}
	inStack := false
	for _, v := range vmas {
		if v.Path == "[stack]" && v.Start <= s.StartStack && s.StartStack < v.End {
			inStack = true
		}
	}
	if !inStack {
		t.Errorf("start_stack %#x not in [stack]", s.StartStack)
	}
}

func TestLiveLimits(t *testing.T) {
	l, err := ReadLimits(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range limitRows {
		var want unix.Rlimit
		if err := unix.Getrlimit(r.res, &want); err != nil {
			t.Fatal(err)
		}
		if got := l[r.res]; got.Cur != want.Cur || got.Max != want.Max {
			t.Errorf("%s: got %+v, want %+v", r.name, got, want)
		}
	}
}

// Auxiliary vector types from include/uapi/linux/auxvec.h.
const (
	atPagesz      = 6
	atUID         = 11
	atSysinfoEhdr = 33
)

func TestLiveAuxvPersonality(t *testing.T) {
	pid := os.Getpid()
	raw, err := ReadAuxvRaw(pid)
	if err != nil {
		t.Fatal(err)
	}
	es, err := ParseAuxv(raw, 8)
	if err != nil {
		t.Fatal(err)
	}
	vals := map[uint64]uint64{}
	for _, e := range es {
		vals[e.Type] = e.Value
	}
	if vals[atPagesz] != PageSize {
		t.Errorf("AT_PAGESZ %d", vals[atPagesz])
	}
	if vals[atUID] != uint64(os.Getuid()) {
		t.Errorf("AT_UID %d", vals[atUID])
	}
	vmas, err := ReadMaps(pid)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vmas {
		if v.Path == "[vdso]" && v.Start != vals[atSysinfoEhdr] {
			t.Errorf("AT_SYSINFO_EHDR %#x, [vdso] at %#x", vals[atSysinfoEhdr], v.Start)
		}
	}

	p, err := ReadPersonality(pid)
	if err != nil {
		t.Fatal(err)
	}
	cur, _, errno := unix.Syscall(unix.SYS_PERSONALITY, 0xffffffff, 0, 0)
	if errno != 0 {
		t.Fatal(errno)
	}
	if p != uint32(cur) {
		t.Errorf("personality %#x, want %#x", p, cur)
	}
}

func TestLiveFds(t *testing.T) {
	pid := os.Getpid()
	path := filepath.Join(t.TempDir(), "file with space")
	if err := os.WriteFile(path, []byte("0123456789"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Seek(7, 0); err != nil {
		t.Fatal(err)
	}
	fd := int(f.Fd())

	fds, err := ListFds(pid)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.IsSortedFunc(fds, func(a, b Fd) int { return a.Num - b.Num }) {
		t.Errorf("not sorted: %v", fds)
	}
	var got *Fd
	for i := range fds {
		if fds[i].Num == fd {
			got = &fds[i]
		}
	}
	if got == nil || got.Target != path {
		t.Fatalf("fd %d not listed with target %q: %v", fd, path, fds)
	}

	fi, err := ReadFdInfo(pid, fd)
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		t.Fatal(err)
	}
	if fi.Pos != 7 || fi.Ino != st.Ino || fi.Flags&unix.O_ACCMODE != unix.O_RDONLY || fi.Flags&unix.O_CLOEXEC == 0 {
		t.Errorf("fdinfo %+v (ino want %d)", fi, st.Ino)
	}

	if _, err := ReadFdInfo(pid, 1<<20); err == nil {
		t.Error("fdinfo of a closed fd succeeded")
	}
}

func TestLiveThreads(t *testing.T) {
	pid := os.Getpid()
	tids, err := Threads(pid)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.IsSorted(tids) || !slices.Contains(tids, pid) {
		t.Errorf("threads %v", tids)
	}
	if _, err := Threads(-1); err == nil {
		t.Error("Threads(-1) succeeded")
	}
}

func TestLiveReadErrors(t *testing.T) {
	// PID 0 never has a /proc entry.
	if _, err := ReadMaps(0); err == nil || !strings.Contains(err.Error(), "read /proc/0/maps: ") {
		t.Errorf("ReadMaps(0): %v", err)
	}
	if _, err := ReadStatus(0); err == nil {
		t.Error("ReadStatus(0) succeeded")
	}
	if _, err := ReadStat(0); err == nil {
		t.Error("ReadStat(0) succeeded")
	}
	if _, err := ReadLimits(0); err == nil {
		t.Error("ReadLimits(0) succeeded")
	}
	if _, err := ListFds(0); err == nil {
		t.Error("ListFds(0) succeeded")
	}
}
