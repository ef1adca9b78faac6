//go:build linux && amd64

package dump

import (
	"fmt"

	core "github.com/checkpoint-restore/go-criu/v8/crit/images/core-x86"
	criucore "github.com/checkpoint-restore/go-criu/v8/crit/images/criu-core"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/fault"
	"github.com/ckpt/ckpt/internal/inject"
	attrs "github.com/ckpt/ckpt/internal/kinds/task"
	"github.com/ckpt/ckpt/internal/model"
	"github.com/ckpt/ckpt/internal/model/x86img"
	"github.com/ckpt/ckpt/internal/procfs"
	"github.com/ckpt/ckpt/internal/ptrace"
)

// scratchCodeAddr picks where injected code goes: the start of [vdso]
// when there is one (its pages are never dumped), else of the first
// executable private mapping.
func scratchCodeAddr(vmas []procfs.SmapsEntry) (uint64, error) {
	for _, v := range vmas {
		if v.VMA.Path == "[vdso]" {
			return v.VMA.Start, nil
		}
	}
	for _, v := range vmas {
		if v.VMA.Exec && !v.VMA.Shared && v.VMA.Path != "[vsyscall]" {
			return v.VMA.Start, nil
		}
	}
	return 0, fmt.Errorf("no executable mapping to run injected syscalls from")
}

// cpuState reads a stopped thread's registers, FPU/xstate, TLS entries and
// signal mask into a new core entry, with the other fields the image
// requires set to their defaults for the task attributes to fill.
func cpuState(th ptrace.Thread, leader bool) (*criucore.CoreEntry, error) {
	regs, err := th.GetRegs()
	if err != nil {
		return nil, fmt.Errorf("registers: %w", err)
	}
	xstate, err := th.GetXstate()
	if err != nil {
		return nil, fmt.Errorf("xstate: %w", err)
	}
	fp, err := x86img.XstateToImage(xstate)
	if err != nil {
		return nil, err
	}
	mask, err := th.GetSigmask()
	if err != nil {
		return nil, fmt.Errorf("signal mask: %w", err)
	}
	// An interrupted syscall is rewound in the image, as CRIU writes it
	// (model/criu.go); regs stay as they are for the live thread.
	img := regs
	x86.RestartInImage(&img)
	var tls []*core.UserDescT
	for i := 0; i < x86.GDTEntryTLSEntries; i++ {
		raw, err := th.GetThreadArea(x86.GDTEntryTLSMin + i)
		if err != nil {
			return nil, fmt.Errorf("TLS entry %d: %w", x86.GDTEntryTLSMin+i, err)
		}
		d, err := x86.DecodeUserDesc(raw)
		if err != nil {
			return nil, err
		}
		tls = append(tls, x86img.UserDescToImage(d))
	}
	c := &criucore.CoreEntry{
		Mtype: criucore.CoreEntry_X86_64.Enum(),
		ThreadInfo: &core.ThreadInfoX86{
			ClearTidAddr: proto.Uint64(0),
			Gpregs:       x86img.RegsToImage(&img),
			Fpregs:       fp,
			Tls:          tls,
		},
		ThreadCore: &criucore.ThreadCoreEntry{
			FutexRla: proto.Uint64(0), FutexRlaLen: proto.Uint32(0),
			BlkSigset: proto.Uint64(mask),
		},
	}
	if leader {
		c.Tc = &criucore.TaskCoreEntry{
			TaskState: proto.Uint32(model.TaskAlive), ExitCode: proto.Uint32(0),
			Personality: proto.Uint32(0), Flags: proto.Uint32(0),
			BlkSigset: proto.Uint64(mask), Comm: proto.String(""),
		}
	}
	return c, nil
}

// collectThread reads one stopped thread: its CPU state, then every task
// attribute (kinds/task's All) with syscalls injected into it, and for the
// leader the program break into p.MM. The thread is put back as it was before the
// next one and before memory is read, so the pages saved are the task's
// own.
func (t *task) collectThread(h ptrace.Thread, vmas []procfs.SmapsEntry, p *model.Process) (c *criucore.CoreEntry, vtid int, err error) {
	tid := h.Tid
	leader := tid == t.pid
	status, err := procfs.ReadTaskStatus(t.pid, tid)
	if err != nil {
		return nil, 0, err
	}
	if c, err = cpuState(h, leader); err != nil {
		return nil, 0, err
	}
	code, err := scratchCodeAddr(vmas)
	if err != nil {
		return nil, 0, err
	}
	inj, err := inject.BeginUndo(t.s.Undo, h, code)
	if err != nil {
		return nil, 0, fmt.Errorf("prepare injection: %w", err)
	}
	t.inj = inj
	// Dozens of injected calls follow (every signal action is read):
	// on the tracer's CPU each is a context switch, not a wakeup of
	// another CPU (ptrace.Thread.ShareCPU).
	if share, serr := h.ShareCPU(); serr != nil {
		t.opts.logf("dump %d: injected calls of thread %d run on any CPU: %v", t.pid, tid, serr)
	} else {
		unshare := t.s.Push(fmt.Sprintf("put back the CPU affinity of thread %d and of the tracer", tid), share)
		defer func() {
			if uerr := unshare.Run(); uerr != nil && err == nil {
				err = uerr
			}
		}()
	}
	defer func() {
		if eerr := inj.End(); eerr != nil && err == nil {
			err = fmt.Errorf("finish injection: %w", eerr)
		}
		t.inj = nil
	}()
	const dataSize = x86.PageSize
	// A compat task gets its scratch data from the ia32 mmap2, which
	// places it below 4 GiB where ia32 syscalls can point.
	mmap := inj.Syscall
	if t.abi == x86.ABI32 {
		mmap = inj.Syscall32
	}
	data, err := mmap(x86.SysMmap, 0, dataSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS, ^uint64(0), 0)
	if err != nil {
		return nil, 0, fmt.Errorf("map scratch data: %w", err)
	}
	unmap := t.s.Push(fmt.Sprintf("unmap scratch data %#x in thread %d", data, tid), func() error {
		_, err := inj.Syscall(x86.SysMunmap, data, dataSize)
		return err
	})
	defer func() {
		if uerr := unmap.Run(); uerr != nil && err == nil {
			err = uerr
		}
	}()
	fault.Panic(fault.DumpInjecting)
	mem, err := ptrace.OpenMem(t.pid)
	if err != nil {
		return nil, 0, fmt.Errorf("open memory: %w", err)
	}
	defer mem.Close()
	vtid = t.virt(status.NSpid, tid)
	th := &frozenThread{t: t, h: h, vtid: vtid, inj: inj, data: data, mem: mem, status: status}
	if err := attrs.CollectAll(th, attrs.Entry{Core: c, MM: p.MM}); err != nil {
		return nil, 0, err
	}
	if leader {
		brk, err := inj.Syscall(x86.SysBrk, 0)
		if err != nil {
			return nil, 0, fmt.Errorf("brk: %w", err)
		}
		p.MM.MmBrk = proto.Uint64(brk)
	}
	return c, vtid, nil
}

// frozenThread is a frozen thread as task attributes see it (attrs.Thread).
type frozenThread struct {
	t      *task
	h      ptrace.Thread
	vtid   int
	inj    *inject.Task
	data   uint64
	mem    *ptrace.Mem
	status *procfs.Status
}

var _ attrs.Thread = (*frozenThread)(nil)

func (f *frozenThread) Pid() int               { return f.t.pid }
func (f *frozenThread) Tid() int               { return f.h.Tid }
func (f *frozenThread) VPid() int              { return f.t.vpid() }
func (f *frozenThread) VTid() int              { return f.vtid }
func (f *frozenThread) Leader() bool           { return f.h.Tid == f.t.pid }
func (f *frozenThread) Ptrace() ptrace.Thread  { return f.h }
func (f *frozenThread) Compat() bool           { return f.t.abi == x86.ABI32 }
func (f *frozenThread) Scratch() uint64        { return f.data }
func (f *frozenThread) Status() *procfs.Status { return f.status }

// ExecSignals: a dump reads every action.
func (f *frozenThread) ExecSignals() (uint64, bool) { return 0, false }

func (f *frozenThread) Syscall(s x86.Syscall, args ...uint64) (uint64, error) {
	return f.inj.Syscall(s, args...)
}

func (f *frozenThread) Syscall32(s x86.Syscall, args ...uint64) (uint64, error) {
	return f.inj.Syscall32(s, args...)
}

func (f *frozenThread) Put(b []byte) (uint64, error) {
	if len(b) > x86.PageSize {
		return 0, fmt.Errorf("%d bytes do not fit the scratch data page", len(b))
	}
	return f.data, f.mem.WriteAt(b, f.data)
}

func (f *frozenThread) ReadMem(addr uint64, n int) ([]byte, error) {
	b := make([]byte, n)
	return b, f.mem.ReadAt(b, addr)
}
