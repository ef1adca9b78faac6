package fd

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/fdinfo"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/ckerr"
	"github.com/ckpt/ckpt/internal/model"
	"github.com/ckpt/ckpt/internal/procfs"
)

// ownFile describes fd of this process as the dump sees an fd.
func ownFile(t *testing.T, fd int) *File {
	t.Helper()
	pid := os.Getpid()
	f := &File{Fd: fd}
	var err error
	if f.Path, err = os.Readlink(fmt.Sprintf("/proc/%d/fd/%d", pid, fd)); err != nil {
		t.Fatal(err)
	}
	if err := unix.Stat(fmt.Sprintf("/proc/%d/fd/%d", pid, fd), &f.Stat); err != nil {
		t.Fatal(err)
	}
	if f.Info, err = procfs.ReadFdInfo(pid, fd); err != nil {
		t.Fatal(err)
	}
	return f
}

func closeAfter(t *testing.T, fds ...int) {
	t.Cleanup(func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	})
}

// Every kind is found for a live fd of its kind, collects an entry of its
// type, and is the kind that restores that entry.
func TestClassifyCollect(t *testing.T) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	closeAfter(t, p[0], p[1])
	if _, err := unix.Write(p[1], []byte("queued")); err != nil {
		t.Fatal(err)
	}
	efd, err := unix.Eventfd(5, unix.EFD_CLOEXEC|unix.EFD_SEMAPHORE)
	if err != nil {
		t.Fatal(err)
	}
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	closeAfter(t, efd, epfd)
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, efd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: 42}); err != nil {
		t.Fatal(err)
	}
	tfd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	closeAfter(t, tfd)
	reg, err := os.Open("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	k := New()
	d := &model.Dump{}
	for _, c := range []struct {
		fd   int
		name string
		typ  fdinfo.FdTypes
		body func(e *fdinfo.FileEntry) bool
	}{
		{p[0], "pipe", fdinfo.FdTypes_PIPE, func(e *fdinfo.FileEntry) bool {
			return string(d.Pipes[e.GetPipe().GetPipeId()].Data) == "queued"
		}},
		{efd, "eventfd", fdinfo.FdTypes_EVENTFD, func(e *fdinfo.FileEntry) bool {
			return e.GetEfd().GetCounter() == 5 && e.GetEfd().GetFlags()&unix.EFD_SEMAPHORE != 0
		}},
		{epfd, "epoll", fdinfo.FdTypes_EVENTPOLL, func(e *fdinfo.FileEntry) bool {
			tf := e.GetEpfd().GetTfd()
			return len(tf) == 1 && tf[0].GetTfd() == uint32(efd) && tf[0].GetEvents()&unix.EPOLLIN != 0 && tf[0].GetData() == 42
		}},
		{tfd, "timerfd", fdinfo.FdTypes_TIMERFD, func(e *fdinfo.FileEntry) bool {
			return e.GetTfd().GetClockid() == unix.CLOCK_MONOTONIC
		}},
		{int(reg.Fd()), "regular file", fdinfo.FdTypes_REG, func(e *fdinfo.FileEntry) bool {
			return strings.HasPrefix(e.GetReg().GetName(), "/")
		}},
	} {
		f := ownFile(t, c.fd)
		kind, err := k.Classify(os.Getpid(), f, Options{})
		if err != nil || kind.Name() != c.name {
			t.Errorf("fd %d (%s): kind %v, %v; want %s", c.fd, f.Path, kind, err, c.name)
			continue
		}
		e := &fdinfo.FileEntry{Id: proto.Uint32(d.NextFileID())}
		both := func(uint64) (bool, bool) { return true, true }
		if err := kind.Collect(Task{Pid: os.Getpid(), Dump: d, PipeEnds: both}, f, f.Info.Flags&^unix.O_CLOEXEC, e); err != nil {
			t.Errorf("%s: collect: %v", c.name, err)
			continue
		}
		id := d.AddFile(e)
		if e.GetType() != c.typ || !c.body(e) {
			t.Errorf("%s: entry %v", c.name, e)
		}
		back, err := k.ForEntry(d, &fdinfo.FdinfoEntry{Id: proto.Uint32(id), Type: e.GetType().Enum(), Fd: proto.Uint32(uint32(c.fd)), Flags: proto.Uint32(0)})
		if err != nil || back != kind {
			t.Errorf("%s: ForEntry gives %v, %v", c.name, back, err)
		}
	}
}

// A file no kind takes is refused with a typed error that names the task,
// the fd and what it is.
func TestClassifyRefuses(t *testing.T) {
	nl, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	closeAfter(t, nl)
	if err := unix.Bind(nl, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		t.Fatal(err)
	}
	_, err = New().Classify(1234, ownFile(t, nl), Options{})
	var ue *ckerr.UnsupportedError
	if !errors.As(err, &ue) || ue.Task != 1234 || !strings.Contains(ue.Object, fmt.Sprintf("fd %d, a netlink socket (NETLINK_ROUTE, SOCK_RAW)", nl)) {
		t.Errorf("socket: %v (%+v)", err, ue)
	}
}

// A tty needs --shell-job and a place in stdio.
func TestStdio(t *testing.T) {
	k := New()
	d := &model.Dump{}
	tty := &File{Fd: 0, Path: "/dev/pts/3"}
	tty.Stat.Mode = unix.S_IFCHR
	for _, c := range []struct {
		f     *File
		shell bool
		want  string
	}{
		{tty, true, "inherited stdio"},
		{tty, false, "dump with --shell-job"},
		// Above 2, Collect checks that it is the stdio's terminal.
		{&File{Fd: 4, Path: "/dev/pts/3", Stat: tty.Stat}, true, "inherited stdio"},
		{&File{Fd: 4, Path: "/dev/pts/3", Stat: tty.Stat}, false, "dump with --shell-job"},
		// A Unix98 slave (136:3): the pty kind decides in Collect whether
		// its master is in the tree.
		{&File{Fd: 4, Path: "/dev/pts/3", Stat: unix.Stat_t{Mode: unix.S_IFCHR, Rdev: unix.Mkdev(136, 3)}}, false, "pty"},
		{&File{Fd: 5, Path: "/dev/ptmx", Stat: unix.Stat_t{Mode: unix.S_IFCHR, Rdev: unix.Mkdev(5, 2)}, Info: &procfs.FdInfo{Extra: map[string]string{"tty-index": "3"}}}, false, "pty"},
		{&File{Fd: 5, Path: "/dev/ptmx", Stat: unix.Stat_t{Mode: unix.S_IFCHR, Rdev: unix.Mkdev(5, 2)}, Info: &procfs.FdInfo{Extra: map[string]string{}}}, false, "tty-index"},
	} {
		kind, err := k.Classify(1, c.f, Options{ShellJob: c.shell})
		got := ""
		if err != nil {
			got = err.Error()
		} else {
			got = kind.Name()
		}
		if !strings.Contains(got, c.want) {
			t.Errorf("fd %d %s, shell job %v: %q, want %q", c.f.Fd, c.f.Path, c.shell, got, c.want)
		}
	}
	stdin := &fdinfo.FdinfoEntry{Id: proto.Uint32(1), Type: fdinfo.FdTypes_TTY.Enum(), Fd: proto.Uint32(0), Flags: proto.Uint32(0)}
	if err := k.Check(d, []*fdinfo.FdinfoEntry{stdin}, Options{}); err == nil || !strings.Contains(err.Error(), "--shell-job") {
		t.Errorf("tty stdin without --shell-job: %v", err)
	}
	if err := k.Check(d, []*fdinfo.FdinfoEntry{stdin}, Options{ShellJob: true}); err != nil {
		t.Errorf("tty stdin with --shell-job: %v", err)
	}
	sock := &fdinfo.FdinfoEntry{Id: proto.Uint32(2), Type: fdinfo.FdTypes_INETSK.Enum(), Fd: proto.Uint32(3), Flags: proto.Uint32(0)}
	if err := k.Check(d, []*fdinfo.FdinfoEntry{sock}, Options{}); err == nil || !strings.Contains(err.Error(), "cannot restore") {
		t.Errorf("a socket entry: %v", err)
	}
}

// A pipe whose two ends the tree holds is the tree's own wherever it is,
// stdio included (a pipeline); one with an end outside is inherited
// stdio with --shell-job, and refused anywhere else.
func TestPipeInsideOrOutside(t *testing.T) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	closeAfter(t, p[0], p[1])
	own := ownFile(t, p[1])
	for _, c := range []struct {
		name            string
		fd              int
		shell, r, w     bool
		inherited, fail bool
	}{
		{"pipeline stdout", 1, false, true, true, false, false},
		{"pipeline stdout, shell job", 1, true, true, true, false, false},
		{"stdout to the outside, shell job", 1, true, false, true, true, false},
		{"stdout to the outside", 1, false, false, true, false, true},
		{"fd 5 to the outside, shell job", 5, true, false, true, false, true},
	} {
		f := *own
		if !c.r || !c.w {
			f.Fd = c.fd // only a pipe to the outside looks at its number
		}
		d := &model.Dump{}
		k := New()
		pid := os.Getpid()
		kind, err := k.Classify(pid, &f, Options{ShellJob: c.shell})
		if err != nil || kind.Name() != "pipe" {
			t.Fatalf("%s: kind %v, %v", c.name, kind, err)
		}
		e := &fdinfo.FileEntry{Id: proto.Uint32(d.NextFileID())}
		ends := func(uint64) (bool, bool) { return c.r, c.w }
		err = kind.Collect(Task{Pid: pid, Dump: d, Opts: Options{ShellJob: c.shell}, PipeEnds: ends}, &f, unix.O_WRONLY, e)
		var ue *ckerr.UnsupportedError
		if c.fail {
			if !errors.As(err, &ue) || ue.Task != pid || !strings.Contains(ue.Reason, "outside") {
				t.Errorf("%s: %v, want a refusal naming the outside", c.name, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		id := d.AddFile(e)
		fde := &fdinfo.FdinfoEntry{Id: proto.Uint32(id), Type: fdinfo.FdTypes_PIPE.Enum(), Fd: proto.Uint32(uint32(c.fd)), Flags: proto.Uint32(0)}
		if got := Inherited(d, fde); got != c.inherited {
			t.Errorf("%s: inherited %v, want %v", c.name, got, c.inherited)
		}
	}
}

func TestNsfsName(t *testing.T) {
	for link, want := range map[string]string{"net:[4026531840]": "net", "pid_for_children:[4026531836]": "pid_for_children", "anon_inode:[eventfd]": "", "pipe:[12]": "pipe", "/tmp/x:[1]": "", "net:[12a]": ""} {
		got, ok := nsfsName(link)
		if got != want || ok != (want != "") {
			t.Errorf("nsfsName(%q) = %q, %v; want %q", link, got, ok, want)
		}
	}
}

// A file lock held through an fd is refused, naming the fd and the lock.
func TestClassifyRefusesLock(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "lock")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	_, err = New().Classify(os.Getpid(), ownFile(t, int(f.Fd())), Options{})
	var ue *ckerr.UnsupportedError
	if !errors.As(err, &ue) || !strings.Contains(ue.Object, "FLOCK") || !strings.Contains(ue.Reason, "use --file-locks") {
		t.Errorf("a flock'ed file: %v", err)
	}
}
