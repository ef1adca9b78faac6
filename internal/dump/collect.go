package dump

import (
	"encoding/binary"
	"fmt"
	"os"
	"strings"
	"unsafe"

	core "github.com/checkpoint-restore/go-criu/v8/crit/images/core-x86"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/creds"
	criucore "github.com/checkpoint-restore/go-criu/v8/crit/images/criu-core"
	criusa "github.com/checkpoint-restore/go-criu/v8/crit/images/criu-sa"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/rlimit"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/rseq"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/siginfo"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/ckerr"
	"github.com/ckpt/ckpt/internal/inject"
	"github.com/ckpt/ckpt/internal/model/x86img"
	"github.com/ckpt/ckpt/internal/procfs"
	"github.com/ckpt/ckpt/internal/ptrace"
)

// threadState is what is read from the stopped thread with ptrace.
type threadState struct {
	tid      int
	status   *procfs.Status // /proc/PID/task/TID/status: per-thread creds
	robust   [2]uint64      // robust futex list head and length
	regs     x86.Regs
	xstate   []byte
	sigmask  uint64
	rseq     ptrace.RseqConfig
	tls      []*core.UserDescT
	private  [][]byte
	shared   [][]byte
	compat   bool // the task's ABI is ia32 (not the mode it was caught in)
	injected injectedState
}

// injectedState is what only the task itself can tell, asked by injected
// syscalls.
type injectedState struct {
	sigactions []*criusa.SaEntry
	altstack   x86.Stack
	brk        uint64
	pdeathSig  uint32
	tidAddr    uint64
	secbits    uint32
	dumpable   int32
	subreaper  bool
}

func (t *task) readThread(tid int) (*threadState, error) {
	pid := tid
	th := &threadState{tid: tid, compat: t.abi == x86.ABI32}
	var err error
	if th.status, err = procfs.ReadTaskStatus(t.pid, tid); err != nil {
		return nil, err
	}
	if !th.compat {
		// get_robust_list(2) reads another task's native list head; an
		// ia32 task keeps its own in compat_robust_list, which queryTask
		// asks the thread for.
		var head, n uint64
		if _, _, e := unix.Syscall(unix.SYS_GET_ROBUST_LIST, uintptr(tid), uintptr(unsafe.Pointer(&head)), uintptr(unsafe.Pointer(&n))); e != 0 {
			return nil, fmt.Errorf("get_robust_list: %w", e)
		}
		th.robust = [2]uint64{head, n}
	}
	if th.regs, err = ptrace.GetRegs(pid); err != nil {
		return nil, fmt.Errorf("registers: %w", err)
	}
	if th.xstate, err = ptrace.GetXstate(pid); err != nil {
		return nil, fmt.Errorf("xstate: %w", err)
	}
	if th.sigmask, err = ptrace.GetSigmask(pid); err != nil {
		return nil, fmt.Errorf("signal mask: %w", err)
	}
	if th.rseq, err = ptrace.GetRseqConfig(pid); err != nil {
		return nil, fmt.Errorf("rseq configuration: %w", err)
	}
	if th.private, err = ptrace.PeekSiginfo(pid, false); err != nil {
		return nil, fmt.Errorf("pending signals: %w", err)
	}
	if tid == t.pid {
		if th.shared, err = ptrace.PeekSiginfo(pid, true); err != nil {
			return nil, fmt.Errorf("shared pending signals: %w", err)
		}
	}
	for i := 0; i < x86.GDTEntryTLSEntries; i++ {
		raw, err := ptrace.GetThreadArea(pid, x86.GDTEntryTLSMin+i)
		if err != nil {
			return nil, fmt.Errorf("TLS entry %d: %w", x86.GDTEntryTLSMin+i, err)
		}
		d, err := x86.DecodeUserDesc(raw)
		if err != nil {
			return nil, err
		}
		th.tls = append(th.tls, x86img.UserDescToImage(d))
	}
	return th, nil
}

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

// queryTask asks the task, through injected syscalls, for what /proc and
// ptrace do not show.
// Process-wide state is asked from the leader only.
func (t *task) queryTask(th *threadState, vmas []procfs.SmapsEntry) (err error) {
	leader := th.tid == t.pid
	code, err := scratchCodeAddr(vmas)
	if err != nil {
		return err
	}

	inj, err := inject.Begin(th.tid, code)
	if err != nil {
		return fmt.Errorf("prepare injection: %w", err)
	}
	t.inj = inj
	const dataSize = x86.PageSize
	// A compat task gets its scratch data from the ia32 mmap2, which
	// places it below 4 GiB where ia32 syscalls can point.
	var data uint64
	if th.compat {
		data, err = inj.Syscall32(x86.SysMmap, 0, dataSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS, ^uint64(0), 0)
	} else {
		data, err = inj.Syscall(x86.SysMmap, 0, dataSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS, ^uint64(0), 0)
	}
	if err != nil {
		return fmt.Errorf("map scratch data: %w", err)
	}
	defer func() {
		if _, uerr := inj.Syscall(x86.SysMunmap, data, dataSize); uerr != nil && err == nil {
			err = fmt.Errorf("unmap scratch data: %w", uerr)
		}
	}()
	mem, err := ptrace.OpenMem(t.pid)
	if err != nil {
		return fmt.Errorf("open memory: %w", err)
	}
	defer mem.Close()
	read := func(n int) ([]byte, error) {
		b := make([]byte, n)
		return b, mem.ReadAt(b, data)
	}
	q := &th.injected
	saSize := x86.SigactionSize(th.compat)
	for sig := 1; sig <= x86.NSig && leader; sig++ {
		if sig == x86.SigKill || sig == x86.SigStop {
			continue
		}
		if th.compat {
			_, err = inj.Syscall32(x86.SysRtSigaction, uint64(sig), 0, data, x86.SigsetBytes)
		} else {
			_, err = inj.Syscall(x86.SysRtSigaction, uint64(sig), 0, data, x86.SigsetBytes)
		}
		if err != nil {
			return fmt.Errorf("sigaction of signal %d: %w", sig, err)
		}
		b, err := read(saSize)
		if err != nil {
			return err
		}
		sa, err := x86.DecodeSigaction(b, th.compat)
		if err != nil {
			return err
		}
		q.sigactions = append(q.sigactions, &criusa.SaEntry{
			Sigaction:       proto.Uint64(sa.Handler),
			Flags:           proto.Uint64(sa.Flags),
			Restorer:        proto.Uint64(sa.Restorer),
			Mask:            proto.Uint64(sa.Mask),
			CompatSigaction: proto.Bool(th.compat),
		})
	}
	if th.compat {
		// The ia32 list head, kept apart from the native one: ia32
		// get_robust_list(0, &head, &len) with a compat_uptr_t and a
		// compat_size_t (kernel/futex/syscalls.c).
		if _, err := inj.Syscall32(x86.SysGetRobustList, 0, data, data+4); err != nil {
			return fmt.Errorf("ia32 get_robust_list: %w", err)
		}
		b, err := read(8)
		if err != nil {
			return err
		}
		th.robust = [2]uint64{uint64(binary.LittleEndian.Uint32(b)), uint64(binary.LittleEndian.Uint32(b[4:]))}
	}
	if _, err := inj.Syscall(x86.SysSigaltstack, 0, data); err != nil {
		return fmt.Errorf("sigaltstack: %w", err)
	}
	b, err := read(x86.StackSize64)
	if err != nil {
		return err
	}
	if q.altstack, err = x86.DecodeStack(b); err != nil {
		return err
	}
	if leader {
		if q.brk, err = inj.Syscall(x86.SysBrk, 0); err != nil {
			return fmt.Errorf("brk: %w", err)
		}
	}
	if _, err := inj.Syscall(x86.SysPrctl, unix.PR_GET_PDEATHSIG, data); err != nil {
		return fmt.Errorf("prctl(PR_GET_PDEATHSIG): %w", err)
	}
	if b, err = read(4); err != nil {
		return err
	}
	q.pdeathSig = binary.LittleEndian.Uint32(b)
	if _, err := inj.Syscall(x86.SysPrctl, unix.PR_GET_TID_ADDRESS, data); err != nil {
		return fmt.Errorf("prctl(PR_GET_TID_ADDRESS): %w", err)
	}
	if b, err = read(8); err != nil {
		return err
	}
	q.tidAddr = binary.LittleEndian.Uint64(b)
	v, err := inj.Syscall(x86.SysPrctl, unix.PR_GET_SECUREBITS)
	if err != nil {
		return fmt.Errorf("prctl(PR_GET_SECUREBITS): %w", err)
	}
	q.secbits = uint32(v)
	if v, err = inj.Syscall(x86.SysPrctl, unix.PR_GET_DUMPABLE); err != nil {
		return fmt.Errorf("prctl(PR_GET_DUMPABLE): %w", err)
	}
	q.dumpable = int32(v)
	if _, err := inj.Syscall(x86.SysPrctl, unix.PR_GET_CHILD_SUBREAPER, data); err != nil {
		return fmt.Errorf("prctl(PR_GET_CHILD_SUBREAPER): %w", err)
	}
	if b, err = read(4); err != nil {
		return err
	}
	q.subreaper = binary.LittleEndian.Uint32(b) != 0
	return nil
}

func siginfoQueue(raw [][]byte) *siginfo.SignalQueueEntry {
	q := &siginfo.SignalQueueEntry{}
	for _, r := range raw {
		q.Signals = append(q.Signals, &siginfo.SiginfoEntry{Siginfo: r})
	}
	return q
}

func capWords(v uint64) []uint32 { return []uint32{uint32(v), uint32(v >> 32)} }

// coreEntry builds core-PID.img.
// Only the leader's entry has the process-wide part (task_core_entry).
func (t *task) coreEntry(th *threadState, leader *threadState, rlims map[int]procfs.Rlimit, personality uint32) (*criucore.CoreEntry, error) {
	fp, err := x86img.XstateToImage(th.xstate)
	if err != nil {
		return nil, err
	}
	st := th.status
	cr := &creds.CredsEntry{
		Uid: proto.Uint32(st.Uid[0]), Euid: proto.Uint32(st.Uid[1]), Suid: proto.Uint32(st.Uid[2]), Fsuid: proto.Uint32(st.Uid[3]),
		Gid: proto.Uint32(st.Gid[0]), Egid: proto.Uint32(st.Gid[1]), Sgid: proto.Uint32(st.Gid[2]), Fsgid: proto.Uint32(st.Gid[3]),
		CapInh: capWords(st.CapInh), CapPrm: capWords(st.CapPrm), CapEff: capWords(st.CapEff),
		CapBnd: capWords(st.CapBnd), CapAmb: capWords(st.CapAmb),
		Secbits: proto.Uint32(th.injected.secbits), Groups: st.Groups,
	}
	if st.NoNewPrivs {
		cr.NoNewPrivs = proto.Uint32(1)
	} else {
		cr.NoNewPrivs = proto.Uint32(0)
	}
	var rl []*rlimit.RlimitEntry
	for r := 0; r < 16; r++ {
		l, ok := rlims[r]
		if !ok {
			return nil, fmt.Errorf("/proc/%d/limits lacks resource %d", t.pid, r)
		}
		rl = append(rl, &rlimit.RlimitEntry{Cur: proto.Uint64(l.Cur), Max: proto.Uint64(l.Max)})
	}
	q := &th.injected
	lq := &leader.injected
	tc := &criucore.TaskCoreEntry{
		TaskState:      proto.Uint32(1), // TASK_ALIVE
		ExitCode:       proto.Uint32(0),
		Personality:    proto.Uint32(personality),
		Flags:          proto.Uint32(0),
		BlkSigset:      proto.Uint64(th.sigmask),
		Comm:           proto.String(t.stat.Comm),
		Rlimits:        &criucore.TaskRlimitsEntry{Rlimits: rl},
		SignalsS:       siginfoQueue(leader.shared),
		Sigactions:     lq.sigactions,
		ChildSubreaper: proto.Bool(lq.subreaper),
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/oom_score_adj", t.pid)); err == nil {
		var v int32
		if _, err := fmt.Sscan(strings.TrimSpace(string(b)), &v); err == nil {
			tc.OomScoreAdj = proto.Int32(v)
		}
	}
	thc := &criucore.ThreadCoreEntry{
		FutexRla:    proto.Uint64(th.robust[0]),
		FutexRlaLen: proto.Uint32(uint32(th.robust[1])),
		BlkSigset:   proto.Uint64(th.sigmask),
		Sas: &criucore.ThreadSasEntry{
			SsSp: proto.Uint64(q.altstack.Sp), SsSize: proto.Uint64(q.altstack.Size), SsFlags: proto.Uint32(q.altstack.Flags),
		},
		PdeathSig:   proto.Uint32(q.pdeathSig),
		SignalsP:    siginfoQueue(th.private),
		Creds:       cr,
		SeccompMode: criucore.SeccompMode(st.Seccomp).Enum(),
		Comm:        proto.String(t.stat.Comm),
	}
	if st.Seccomp != 0 {
		return nil, ckerr.Unsupported(t.pid, fmt.Sprintf("seccomp mode %d", st.Seccomp), "the task runs under seccomp, which is not supported yet")
	}
	if th.rseq.Addr != 0 {
		thc.RseqEntry = &rseq.RseqEntry{
			RseqAbiPointer: proto.Uint64(th.rseq.Addr),
			RseqAbiSize:    proto.Uint32(th.rseq.Len),
			Signature:      proto.Uint32(th.rseq.Signature),
		}
	}
	if th != leader {
		tc = nil
	}
	return &criucore.CoreEntry{
		Mtype: criucore.CoreEntry_X86_64.Enum(),
		ThreadInfo: &core.ThreadInfoX86{
			ClearTidAddr: proto.Uint64(q.tidAddr),
			Gpregs:       x86img.RegsToImage(&th.regs),
			Fpregs:       fp,
			Tls:          th.tls,
		},
		Tc:         tc,
		ThreadCore: thc,
	}, nil
}
