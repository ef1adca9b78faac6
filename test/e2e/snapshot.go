package e2e

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/internal/procfs"
)

// State is what the kernel shows about a task that must be the same
// before the dump and after the restore.
type State struct {
	Maps  []string          // /proc/PID/maps lines without [vsyscall]
	Fds   map[int]string    // fd -> target, pos, flags and fdinfoExtras
	Masks map[string]uint64 // SigBlk, SigIgn, SigCgt, SigPnd, ShdPnd
	// Timers are the POSIX timers of /proc/PID/timers, by id.
	Timers []string
	// Sched is, per thread, its state (running and sleeping alike as
	// "S", stopped "T", ...) with nice, policy and real-time priority
	// from /proc/PID/task/TID/stat.
	Sched map[int]string
	// Children are the states of the task's children, sorted (not by
	// PID: a tree restored into a new PID namespace has other host PIDs).
	Children string
	// churn is set for a program whose children keep coming and going
	// (manifest children=churn): their states and namespaces are then
	// not compared.
	churn       bool
	OomScoreAdj string
	// Namespaces is which namespaces the task and its children are in,
	// as a sharing structure (see namespaces), not inode numbers: a
	// restore makes new ones.
	Namespaces string
	// Locks are the task's lines of /proc/locks (see locks).
	Locks []string
	// vdsoRange is "start-end" of [vdso], in maps' hex.
	vdsoRange string
}

func snapshot(pid int) (*State, error) {
	s := &State{Fds: map[int]string{}, Masks: map[string]uint64{}}
	vmas, err := procfs.ReadMaps(pid)
	if err != nil {
		return nil, err
	}
	for _, v := range vmas {
		if v.Path == "[vsyscall]" {
			continue
		}
		if v.Path == "[vdso]" {
			s.vdsoRange = fmt.Sprintf("%x-%x", v.Start, v.End)
		}
		s.Maps = append(s.Maps, fmt.Sprintf("%x-%x %v%v%v%v %x %s", v.Start, v.End, b(v.Read, "r"), b(v.Write, "w"), b(v.Exec, "x"), map[bool]string{true: "s", false: "p"}[v.Shared], v.Offset, v.Path))
	}
	fds, err := procfs.ListFds(pid)
	if err != nil {
		return nil, err
	}
	inodes := map[uint64]bool{}
	for _, fd := range fds {
		info, err := procfs.ReadFdInfo(pid, fd.Num)
		if err != nil {
			return nil, err
		}
		inodes[info.Ino] = true
		target := fd.Target
		if strings.HasPrefix(target, "pipe:") {
			target = "pipe" // inherited stdio is another pipe after restore
		}
		if strings.HasPrefix(target, "/dev/pts/") {
			target = "/dev/pts/*" // a restored pty pair is a new one
		}
		if strings.HasPrefix(target, "socket:") {
			target = "socket" // a restored socket is a new inode
		}
		s.Fds[fd.Num] = fmt.Sprintf("%s pos=%d flags=%o%s", target, info.Pos, info.Flags, fdinfoExtras(info))
	}
	st, err := procfs.ReadStatus(pid)
	if err != nil {
		return nil, err
	}
	s.Masks["SigBlk"], s.Masks["SigIgn"], s.Masks["SigCgt"] = st.SigBlk, st.SigIgn, st.SigCgt
	s.Masks["SigPnd"], s.Masks["ShdPnd"] = st.SigPnd, st.ShdPnd
	tids, err := procfs.Threads(pid)
	if err != nil {
		return nil, err
	}
	s.Sched = map[int]string{}
	for _, tid := range tids {
		ts, err := procfs.ReadTaskStat(pid, tid)
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ESRCH) {
			continue // a thread that ended since the list was read
		}
		if err != nil {
			return nil, err
		}
		s.Sched[tid] = fmt.Sprintf("state %s nice %d policy %d rt_priority %d", runState(ts.State), ts.Nice, ts.Policy, ts.RtPriority)
	}
	var kidStates []string
	if kids, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid)); err == nil {
		for _, f := range strings.Fields(string(kids)) {
			c, err := strconv.Atoi(f)
			if err != nil {
				continue
			}
			if cs, err := procfs.ReadStat(c); err == nil {
				kidStates = append(kidStates, runState(cs.State))
			}
		}
	}
	sort.Strings(kidStates)
	s.Children = strings.Join(kidStates, ",")
	oom, err := os.ReadFile(fmt.Sprintf("/proc/%d/oom_score_adj", pid))
	if err != nil {
		return nil, err
	}
	s.OomScoreAdj = strings.TrimSpace(string(oom))
	if s.Timers, err = timers(pid); err != nil {
		return nil, err
	}
	if s.Namespaces, err = namespaces(pid); err != nil {
		return nil, err
	}
	if s.Locks, err = locks(pid, inodes); err != nil {
		return nil, err
	}
	return s, nil
}

// nsKinds are the namespaces compared: all but time, which a restore
// may give the tree to keep its clocks going on.
var nsKinds = []string{"uts", "ipc", "mnt", "net", "cgroup", "user", "pid", "pid_for_children"}

// namespaces describes, for each kind, whether the task's namespace is
// the harness's (ckpt's) or its own, and for each child (sorted)
// whether it shares its parent's, the harness's or is in another.
func namespaces(pid int) (string, error) {
	var out []string
	var kids []string
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid)); err == nil {
		kids = strings.Fields(string(b))
	}
	for _, k := range nsKinds {
		mine, err := os.Readlink("/proc/self/ns/" + k)
		if err != nil {
			continue
		}
		its, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, k))
		if k == "pid_for_children" && errors.Is(err, unix.ENOENT) {
			// A PID namespace without an init yet (unshare without fork).
			out = append(out, k+":new")
			continue
		}
		if err != nil {
			return "", err
		}
		d := k + ":" + map[bool]string{true: "ckpt's", false: "own"}[its == mine]
		var ks []string
		for _, c := range kids {
			l, err := os.Readlink(fmt.Sprintf("/proc/%s/ns/%s", c, k))
			switch {
			case err != nil:
				continue // a zombie or a child that just ended
			case l == its:
				ks = append(ks, "parent's")
			case l == mine:
				ks = append(ks, "ckpt's")
			default:
				ks = append(ks, "other")
			}
		}
		sort.Strings(ks)
		if len(ks) > 0 {
			d += " children [" + strings.Join(ks, ",") + "]"
		}
		out = append(out, d)
	}
	return strings.Join(out, "; "), nil
}

// locks lists the file locks the task holds, as /proc/locks shows them:
// the lines that name it (POSIX and flock locks), and the OFD locks
// (which name no process) on files it has open (inodes). Each is its
// kind, type, file and range; the lock ids of /proc/locks, the order of
// its lines and the task's PID (another on the host for a tree restored
// into a new PID namespace) may differ.
func locks(pid int, inodes map[uint64]bool) ([]string, error) {
	ls, err := procfs.ReadLocks()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range ls {
		if l.Pid != pid && !(l.Class == "OFDLCK" && inodes[l.Ino]) {
			continue
		}
		owner := "the task"
		if l.Pid != pid {
			owner = "an open file" // OFD
		}
		blocked := ""
		if l.Blocked {
			blocked = "waiting: "
		}
		out = append(out, fmt.Sprintf("%s%s %s %s of %s on %02x:%02x:%d, %s", blocked, l.Class, l.Mode, l.Type, owner, l.Major, l.Minor, l.Ino, l.Range()))
	}
	sort.Strings(out)
	return out, nil
}

// stableFdinfo are the fdinfo fields of eventfd, signalfd, timerfd, inotify and
// epoll files that a restore must bring back as they were and that do
// not change while the program waits for SIGTERM (a timerfd's it_value
// does; the programs check it themselves).
var stableFdinfo = []string{"eventfd-count", "eventfd-semaphore", "sigmask", "clockid", "it_interval", "settime flags", "tfd", "inotify wd"}

// fdinfoExtras renders the stableFdinfo fields of one fd. An epoll
// target's "tfd" line names its file by inode and device, which a
// restored eventfd or pipe does not keep: those are left out, and the
// lines are sorted.
func fdinfoExtras(info *procfs.FdInfo) string {
	var b strings.Builder
	for _, k := range stableFdinfo {
		v, ok := info.Extra[k]
		if !ok {
			continue
		}
		if k == "tfd" {
			var lines []string
			for _, l := range strings.Split(v, "\n") {
				var kept []string
				for _, f := range strings.Fields(l) {
					if !strings.HasPrefix(f, "ino:") && !strings.HasPrefix(f, "sdev:") {
						kept = append(kept, f)
					}
				}
				lines = append(lines, strings.Join(kept, " "))
			}
			// In the kernel's order of its epitems, by file address.
			sort.Strings(lines)
			v = strings.Join(lines, "; ")
		}
		fmt.Fprintf(&b, " %s=%q", k, v)
	}
	return b.String()
}

// timers lists the task's POSIX timers as /proc/PID/timers shows them:
// id, signal and sigev_value, notification and clock, all of which must
// come back as they were. Only the target of the notification is named
// differently: /proc gives its PID in the reader's namespace, which
// differs for a tree restored into a new PID namespace; it is compared
// as "the process" or "its Nth thread". The time left and the overrun
// count are not in the file (the programs check them themselves).
func timers(pid int) ([]string, error) {
	ts, err := procfs.ReadTimers(pid)
	if err != nil {
		return nil, err
	}
	tids, err := procfs.Threads(pid)
	if err != nil {
		return nil, err
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].ID < ts[j].ID })
	var out []string
	for _, t := range ts {
		target := fmt.Sprintf("unknown task %d", t.NotifyPid)
		if t.NotifyPid == pid {
			target = "the process"
		}
		if i := slices.Index(tids, t.NotifyPid); i >= 0 && t.Notify&4 != 0 { // SIGEV_THREAD_ID
			target = fmt.Sprintf("thread #%d", i)
		}
		out = append(out, fmt.Sprintf("timer %d: signal %d value %#x notify %d to %s, clock %d", t.ID, t.Signo, t.SigevValue, t.Notify, target, t.ClockID))
	}
	return out, nil
}

// runState is a task's state letter, with running and sleeping (R, S, D,
// I) as one: which of them a task is in at a given moment is chance.
func runState(c byte) string {
	switch c {
	case 'R', 'S', 'D', 'I':
		return "S"
	}
	return string(c)
}

func b(c bool, s string) string {
	if c {
		return s
	}
	return "-"
}

// diff describes the first differences between two states, or "".
func (s *State) diff(o *State) string {
	var d []string
	n := max(len(s.Maps), len(o.Maps))
	for i := 0; i < n && len(d) < 3; i++ {
		var a, c string
		if i < len(s.Maps) {
			a = s.Maps[i]
		}
		if i < len(o.Maps) {
			c = o.Maps[i]
		}
		if a != c {
			d = append(d, fmt.Sprintf("maps line %d was %q, is %q", i+1, a, c))
		}
	}
	for fd, a := range s.Fds {
		if c := o.Fds[fd]; c != a {
			d = append(d, fmt.Sprintf("fd %d was %q, is %q", fd, a, c))
		}
	}
	for fd, c := range o.Fds {
		if _, ok := s.Fds[fd]; !ok {
			d = append(d, fmt.Sprintf("fd %d is new: %q", fd, c))
		}
	}
	if a, c := strings.Join(s.Timers, "; "), strings.Join(o.Timers, "; "); a != c {
		d = append(d, fmt.Sprintf("POSIX timers were [%s], are [%s]", a, c))
	}
	for tid, a := range s.Sched {
		if c, ok := o.Sched[tid]; ok && c != a {
			d = append(d, fmt.Sprintf("thread %d: %s, is %s", tid, a, c))
		}
	}
	if a, c := strings.Join(s.Locks, "; "), strings.Join(o.Locks, "; "); a != c {
		d = append(d, fmt.Sprintf("file locks were [%s], are [%s]", a, c))
	}
	if s.Children != o.Children && !s.churn {
		d = append(d, fmt.Sprintf("children's states were [%s], are [%s]", s.Children, o.Children))
	}
	if a, c := s.Namespaces, o.Namespaces; s.churn {
		a, c = childNS.ReplaceAllString(a, ""), childNS.ReplaceAllString(c, "")
		if a != c {
			d = append(d, fmt.Sprintf("namespaces were %s, are %s", a, c))
		}
	} else if s.Namespaces != o.Namespaces {
		d = append(d, fmt.Sprintf("namespaces were %s, are %s", s.Namespaces, o.Namespaces))
	}
	if s.OomScoreAdj != o.OomScoreAdj {
		d = append(d, fmt.Sprintf("oom_score_adj was %s, is %s", s.OomScoreAdj, o.OomScoreAdj))
	}
	for k, a := range s.Masks {
		if c := o.Masks[k]; c != a {
			d = append(d, fmt.Sprintf("%s was %016x, is %016x", k, a, c))
		}
	}
	return strings.Join(d, "; ")
}

// stableSnapshot waits until two snapshots of the task 50 ms apart are
// the same, for at most settleTimeout: after READY a program may still be
// on its way into the call it waits in (sigsuspend swaps the blocked
// mask), which takes longer in a slow guest.
func stableSnapshot(pid int) (*State, error) {
	prev, err := snapshot(pid)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(settleTimeout)
	for time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		s, err := snapshot(pid)
		if err != nil {
			return nil, err
		}
		if prev.diff(s) == "" {
			return s, nil
		}
		prev = s
	}
	return prev, nil
}

// childNS matches the children's part of a Namespaces entry.
var childNS = regexp.MustCompile(` children \[[^]]*\]`)

// settledSnapshot retries for a short while until the task's state equals
// want: a restored task may still be on its way back into the syscall it
// was dumped in (sigsuspend swaps the blocked mask), which is no error.
func settledSnapshot(pid int, want *State, noVDSO bool) (*State, string, error) {
	var s *State
	var err error
	d := ""
	deadline := time.Now().Add(settleTimeout)
	for {
		if s, err = snapshot(pid); err != nil {
			return nil, "", err
		}
		if noVDSO {
			s = s.withoutVDSO(want)
		}
		if d = want.diff(s); d == "" {
			return s, "", nil
		}
		if time.Now().After(deadline) {
			return s, d, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// withoutVDSO drops the vDSO and vvar lines and what stands at the
// dumped vDSO's range (the proxy after a trampoline restore), keeping the
// rest of the maps to compare.
func (s *State) withoutVDSO(dumped *State) *State {
	out := *s
	out.Maps = nil
	for _, l := range s.Maps {
		if strings.Contains(l, "[vdso]") || strings.Contains(l, "[vvar") || (dumped.vdsoRange != "" && strings.HasPrefix(l, dumped.vdsoRange+" ")) {
			continue
		}
		out.Maps = append(out.Maps, l)
	}
	out.vdsoRange = s.vdsoRange
	if out.vdsoRange == "" {
		out.vdsoRange = dumped.vdsoRange
	}
	return &out
}
