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

func (f *fakeThread) call(abi string, s x86.Syscall, args []uint64) (uint64, error) {
	f.calls = append(f.calls, fmt.Sprintf("%s:%d", abi, s))
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
