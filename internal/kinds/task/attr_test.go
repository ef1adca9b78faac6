package task

import (
	"fmt"
	"testing"

	criucore "github.com/checkpoint-restore/go-criu/v8/crit/images/criu-core"
	criusa "github.com/checkpoint-restore/go-criu/v8/crit/images/criu-sa"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/procfs"
	"github.com/ckpt/ckpt/internal/ptrace"
)

// fakeThread records the syscalls an attribute makes and answers them
// from a table; its memory is one scratch page.
type fakeThread struct {
	leader, compat bool
	calls          []string
	answer         map[x86.Syscall]uint64
	mem            []byte
	status         *procfs.Status
	args           [][]uint64 // of each call
	// asExec, execIgnored: what ExecSignals says.
	asExec      bool
	execIgnored uint64
}

const fakeScratch = 0x100000

func (f *fakeThread) Pid() int               { return 10 }
func (f *fakeThread) Tid() int               { return 11 }
func (f *fakeThread) VPid() int              { return 1 }
func (f *fakeThread) VTid() int              { return 2 }
func (f *fakeThread) Leader() bool           { return f.leader }
func (f *fakeThread) Compat() bool           { return f.compat }
func (f *fakeThread) Scratch() uint64        { return fakeScratch }
func (f *fakeThread) Status() *procfs.Status { return f.status }
func (f *fakeThread) Ptrace() ptrace.Thread  { return ptrace.Thread{Tid: 11} }
func (f *fakeThread) ExecSignals() (uint64, bool) {
	return f.execIgnored, f.asExec
}

func (f *fakeThread) call(abi string, s x86.Syscall, args []uint64) (uint64, error) {
	f.calls = append(f.calls, fmt.Sprintf("%s:%d", abi, s))
	f.args = append(f.args, args)
	return f.answer[s], nil
}

func (f *fakeThread) Syscall(s x86.Syscall, args ...uint64) (uint64, error) {
	return f.call("64", s, args)
}

func (f *fakeThread) Syscall32(s x86.Syscall, args ...uint64) (uint64, error) {
	return f.call("32", s, args)
}

func (f *fakeThread) Put(b []byte) (uint64, error) {
	copy(f.mem, b)
	return fakeScratch, nil
}

func (f *fakeThread) ReadMem(addr uint64, n int) ([]byte, error) {
	off := addr - fakeScratch
	return append([]byte(nil), f.mem[off:off+uint64(n)]...), nil
}

// Whatever a change of credentials resets comes after creds in its stage,
// and the restore order within a stage is the table's.
func TestTableOrder(t *testing.T) {
	pos := map[string]int{}
	for i, a := range All {
		if _, dup := pos[a.Name()]; dup {
			t.Errorf("attribute %q twice in All", a.Name())
		}
		pos[a.Name()] = i
	}
	if pos["parent-death signal"] < pos["credentials"] {
		t.Error("the parent-death signal is set before the credentials, which reset it")
	}
	for _, a := range All {
		if a.Name() == "dumpable" && a.Stage() != StageAfterCreds {
			t.Error("dumpable is not set after the credentials, which reset it")
		}
		if a.Name() == "rseq" && a.Stage() != StageLate {
			t.Error("rseq is registered before the last injected syscalls")
		}
	}
}

// An ia32 task's handlers are installed with the ia32 rt_sigaction, so
// that they get ia32 signal frames; a 64-bit task's with the 64-bit one.
func TestSigactionsABI(t *testing.T) {
	for _, compat := range []bool{false, true} {
		f := &fakeThread{leader: true, compat: compat, mem: make([]byte, x86.PageSize)}
		tc := &criucore.TaskCoreEntry{Sigactions: []*criusa.SaEntry{{
			Sigaction: proto.Uint64(0x401000), Flags: proto.Uint64(0), Restorer: proto.Uint64(0), Mask: proto.Uint64(0),
			CompatSigaction: proto.Bool(compat),
		}}}
		if err := (sigactions{}).Restore(f, Entry{Core: &criucore.CoreEntry{Tc: tc}}); err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("64:%d", x86.SysRtSigaction)
		if compat {
			want = fmt.Sprintf("32:%d", x86.SysRtSigaction)
		}
		if len(f.calls) != 1 || f.calls[0] != want {
			t.Errorf("compat %v: calls %v, want [%s]", compat, f.calls, want)
		}
	}
}

// A restored task whose actions are still the exec's gets rt_sigaction
// only for the signals whose dumped action differs: a handler, flags, a
// mask, a restorer, or SIG_IGN/SIG_DFL the other way round. Without that
// knowledge every signal is set.
func TestSigactionsSkipExecActions(t *testing.T) {
	sa := func(h, flags, restorer, mask uint64) *criusa.SaEntry {
		return &criusa.SaEntry{Sigaction: proto.Uint64(h), Flags: proto.Uint64(flags), Restorer: proto.Uint64(restorer), Mask: proto.Uint64(mask)}
	}
	var sas []*criusa.SaEntry
	for range sigNums() {
		sas = append(sas, sa(x86.SigDfl, 0, 0, 0))
	}
	// Signals 1-8 then 10-18, 20-64 (no SIGKILL, SIGSTOP): index of sig.
	idx := func(sig int) int {
		for i, n := range sigNums() {
			if n == sig {
				return i
			}
		}
		t.Fatalf("no signal %d", sig)
		return -1
	}
	sas[idx(1)] = sa(x86.SigIgn, 0, 0, 0)                       // SIGHUP ignored, as after the exec: skipped
	sas[idx(2)] = sa(x86.SigDfl, 0, 0, 0)                       // SIGINT ignored after the exec, SIG_DFL dumped: set
	sas[idx(10)] = sa(0x401000, x86.SaRestorer, 0x401100, 0)    // a handler: set
	sas[idx(13)] = sa(x86.SigIgn, x86.SaRestorer, 0x401100, 0)  // SIG_IGN with flags: set
	sas[idx(15)] = sa(x86.SigDfl, 0, 0, 1<<9)                   // SIG_DFL with a mask: set
	sas[idx(17)] = sa(x86.SigDfl, 0x1 /* SA_NOCLDSTOP */, 0, 0) // flags on SIG_DFL: set
	execIgnored := uint64(1<<(1-1) | 1<<(2-1))
	tc := &criucore.TaskCoreEntry{Sigactions: sas}
	for _, asExec := range []bool{true, false} {
		f := &fakeThread{leader: true, mem: make([]byte, x86.PageSize), asExec: asExec, execIgnored: execIgnored}
		if err := (sigactions{}).Restore(f, Entry{Core: &criucore.CoreEntry{Tc: tc}}); err != nil {
			t.Fatal(err)
		}
		var set []uint64
		for _, a := range f.args {
			set = append(set, a[0])
		}
		want := "[2 10 13 15 17]"
		if !asExec {
			want = fmt.Sprint(func() (all []uint64) {
				for _, n := range sigNums() {
					all = append(all, uint64(n))
				}
				return
			}())
		}
		if got := fmt.Sprint(set); got != want {
			t.Errorf("actions as the exec left them %v: rt_sigaction for signals %s, want %s", asExec, got, want)
		}
	}
}

// The robust list of an ia32 task is read and set with the ia32 calls,
// which reach compat_robust_list.
func TestRobustListCompat(t *testing.T) {
	f := &fakeThread{compat: true, mem: make([]byte, x86.PageSize)}
	copy(f.mem, []byte{0x10, 0x20, 0, 0, 12, 0, 0, 0})
	c := &criucore.CoreEntry{ThreadCore: &criucore.ThreadCoreEntry{}}
	if err := (robustList{}).Collect(f, Entry{Core: c}); err != nil {
		t.Fatal(err)
	}
	if c.ThreadCore.GetFutexRla() != 0x2010 || c.ThreadCore.GetFutexRlaLen() != 12 {
		t.Errorf("robust list %#x/%d", c.ThreadCore.GetFutexRla(), c.ThreadCore.GetFutexRlaLen())
	}
	if err := (robustList{}).Restore(f, Entry{Core: c}); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("[32:%d 32:%d]", x86.SysGetRobustList, x86.SysSetRobustList)
	if got := fmt.Sprint(f.calls); got != want {
		t.Errorf("calls %s, want %s", got, want)
	}
}
