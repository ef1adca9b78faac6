package restore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/model/x86img"
	"github.com/ckpt/ckpt/internal/procfs"
	"github.com/ckpt/ckpt/internal/ptrace"
	"github.com/ckpt/ckpt/internal/uapi"
)

// restoreMM sets the mm fields, saved auxv and exe link with PR_SET_MM_MAP.
func (r *restorer) restoreMM() error {
	m := r.im.MM
	// auxv is stored as words; an ia32 task's saved auxv is 32-bit words.
	var auxv []byte
	for _, w := range m.GetMmSavedAuxv() {
		if r.im.Compat {
			auxv = binary.LittleEndian.AppendUint32(auxv, uint32(w))
		} else {
			auxv = binary.LittleEndian.AppendUint64(auxv, w)
		}
	}
	if len(auxv) > 2*x86.PageSize-uapi.SizeofPrctlMMMap {
		return fmt.Errorf("saved auxv of %d bytes is too large", len(auxv))
	}
	auxvAddr, err := r.put(x86.PageSize, auxv)
	if err != nil {
		return err
	}
	exePath, err := r.putString(0, r.im.ExePath)
	if err != nil {
		return err
	}
	exeFd, err := r.inj.Syscall(x86.SysOpenat, atFdcwd, exePath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open exe %s: %w", r.im.ExePath, err)
	}
	defer r.inj.Syscall(x86.SysClose, exeFd)
	b := uapi.PrctlMMMap{
		StartCode: m.GetMmStartCode(), EndCode: m.GetMmEndCode(),
		StartData: m.GetMmStartData(), EndData: m.GetMmEndData(),
		StartBrk: m.GetMmStartBrk(), Brk: m.GetMmBrk(), StartStack: m.GetMmStartStack(),
		ArgStart: m.GetMmArgStart(), ArgEnd: m.GetMmArgEnd(),
		EnvStart: m.GetMmEnvStart(), EnvEnd: m.GetMmEnvEnd(),
		Auxv: auxvAddr, AuxvSize: uint32(len(auxv)), ExeFd: uint32(exeFd),
	}.Bytes()
	mapAddr, err := r.put(2*x86.PageSize, b)
	if err != nil {
		return err
	}
	if _, err := r.inj.Syscall(x86.SysPrctl, unix.PR_SET_MM, unix.PR_SET_MM_MAP, mapAddr, uapi.SizeofPrctlMMMap, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_MM_MAP): %w", err)
	}
	return nil
}

// restoreTaskAttrs sets personality, rlimits, comm and the subreaper flag.
func (r *restorer) restoreTaskAttrs() error {
	tc := r.im.Core.GetTc()
	if _, err := r.inj.Syscall(x86.SysPersonality, uint64(tc.GetPersonality())); err != nil {
		return fmt.Errorf("personality %#x: %w", tc.GetPersonality(), err)
	}
	cur, err := procfs.ReadLimits(r.pid)
	if err != nil {
		return err
	}
	for res, l := range tc.GetRlimits().GetRlimits() {
		want := procfs.Rlimit{Cur: l.GetCur(), Max: l.GetMax()}
		if c, ok := cur[res]; ok && c == want {
			continue
		}
		p, err := r.put(0, uapi.Rlimit64{Cur: want.Cur, Max: want.Max}.Bytes())
		if err != nil {
			return err
		}
		if _, err := r.inj.Syscall(x86.SysPrlimit64, 0, uint64(res), p, 0); err != nil {
			if c, ok := cur[res]; ok && want.Max > c.Max && errors.Is(err, unix.EPERM) {
				return fmt.Errorf("rlimit %d: the hard limit %d is above this machine's %d, and raising it needs CAP_SYS_RESOURCE, which ckpt lacks", res, want.Max, c.Max)
			}
			return fmt.Errorf("rlimit %d to %d/%d: %w", res, want.Cur, want.Max, err)
		}
	}
	if comm := tc.GetComm(); comm != "" {
		p, err := r.putString(0, comm)
		if err != nil {
			return err
		}
		if _, err := r.inj.Syscall(x86.SysPrctl, unix.PR_SET_NAME, p); err != nil {
			return fmt.Errorf("prctl(PR_SET_NAME, %q): %w", comm, err)
		}
	}
	if tc.GetChildSubreaper() {
		if _, err := r.inj.Syscall(x86.SysPrctl, unix.PR_SET_CHILD_SUBREAPER, 1); err != nil {
			return fmt.Errorf("prctl(PR_SET_CHILD_SUBREAPER): %w", err)
		}
	}
	return nil
}

// sigNums lists the signals in the order of task_core_entry.sigactions:
// 1..64 without SIGKILL and SIGSTOP.
func sigNums() []int {
	var out []int
	for s := 1; s <= x86.NSig; s++ {
		if s != x86.SigKill && s != x86.SigStop {
			out = append(out, s)
		}
	}
	return out
}

// restoreSigactions installs the sigactions. Handlers
// of an ia32 task are installed with the ia32 rt_sigaction, because the
// kind of syscall that installs a handler decides the signal frame it gets.
func (r *restorer) restoreSigactions() error {
	sas := r.im.Core.GetTc().GetSigactions()
	nums := sigNums()
	if len(sas) > len(nums) {
		return fmt.Errorf("%d sigactions in the image, at most %d", len(sas), len(nums))
	}
	for i, sa := range sas {
		sig := nums[i]
		compat := sa.GetCompatSigaction()
		if compat && r.data(0) >= 1<<32 {
			return fmt.Errorf("scratch area above 4 GiB for an ia32 sigaction")
		}
		b := x86.EncodeSigaction(x86.Sigaction{
			Handler: sa.GetSigaction(), Flags: sa.GetFlags(), Restorer: sa.GetRestorer(), Mask: sa.GetMask(),
		}, compat)
		p, err := r.put(0, b)
		if err != nil {
			return err
		}
		if compat {
			_, err = r.inj.Syscall32(x86.SysRtSigaction, uint64(sig), p, 0, x86.SigsetBytes)
		} else {
			_, err = r.inj.Syscall(x86.SysRtSigaction, uint64(sig), p, 0, x86.SigsetBytes)
		}
		if err != nil {
			return fmt.Errorf("sigaction of signal %d: %w", sig, err)
		}
	}
	return nil
}

func capMask(words []uint32) uint64 {
	var v uint64
	for i, w := range words {
		if i < 2 {
			v |= uint64(w) << (32 * i)
		}
	}
	return v
}

func lastCap() int {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return 40
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 40
	}
	return n
}

// restoreCreds sets a thread's groups, ids, capabilities and securebits,
// then its pdeath_signal, which a change of credentials resets.
func (r *restorer) restoreCreds(th *thread) error {
	tc := th.core.GetThreadCore()
	cr := tc.GetCreds()
	if cr == nil {
		return fmt.Errorf("core image has no credentials")
	}
	sys := th.inj.Syscall
	bnd := capMask(cr.GetCapBnd())
	for c := 0; c <= lastCap(); c++ {
		if bnd&(1<<uint(c)) == 0 {
			if _, err := sys(x86.SysPrctl, unix.PR_CAPBSET_DROP, uint64(c)); err != nil {
				return fmt.Errorf("drop capability %d from the bounding set: %w", c, err)
			}
		}
	}
	groups := make([]byte, 0, 4*len(cr.GetGroups()))
	for _, g := range cr.GetGroups() {
		groups = binary.LittleEndian.AppendUint32(groups, g)
	}
	p, err := r.put(0, groups)
	if err != nil {
		return err
	}
	if _, err := sys(x86.SysSetgroups, uint64(len(cr.GetGroups())), p); err != nil {
		return fmt.Errorf("setgroups: %w", err)
	}
	secbits := uint64(cr.GetSecbits())
	if secbits&uapi.SECBIT_KEEP_CAPS_LOCKED == 0 {
		if _, err := sys(x86.SysPrctl, unix.PR_SET_SECUREBITS, secbits|uapi.SECBIT_KEEP_CAPS); err != nil {
			return fmt.Errorf("securebits %#x: %w", secbits, err)
		}
	} else if _, err := sys(x86.SysPrctl, unix.PR_SET_SECUREBITS, secbits); err != nil {
		return fmt.Errorf("securebits %#x: %w", secbits, err)
	}
	if _, err := sys(x86.SysSetresgid, uint64(cr.GetGid()), uint64(cr.GetEgid()), uint64(cr.GetSgid())); err != nil {
		return fmt.Errorf("setresgid: %w", err)
	}
	if _, err := sys(x86.SysSetfsgid, uint64(cr.GetFsgid())); err != nil {
		return fmt.Errorf("setfsgid: %w", err)
	}
	if _, err := sys(x86.SysSetresuid, uint64(cr.GetUid()), uint64(cr.GetEuid()), uint64(cr.GetSuid())); err != nil {
		return fmt.Errorf("setresuid: %w", err)
	}
	if _, err := sys(x86.SysSetfsuid, uint64(cr.GetFsuid())); err != nil {
		return fmt.Errorf("setfsuid: %w", err)
	}
	capb := uapi.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}.Bytes()
	for _, d := range uapi.CapDataV3(capMask(cr.GetCapEff()), capMask(cr.GetCapPrm()), capMask(cr.GetCapInh())) {
		capb = d.Append(capb)
	}
	hdr, err := r.put(0, capb)
	if err != nil {
		return err
	}
	if _, err := sys(x86.SysCapset, hdr, hdr+uapi.SizeofCapUserHeader); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	amb := capMask(cr.GetCapAmb())
	for c := 0; c < 64; c++ {
		if amb&(1<<uint(c)) != 0 {
			if _, err := sys(x86.SysPrctl, unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, uint64(c), 0, 0); err != nil {
				return fmt.Errorf("raise ambient capability %d: %w", c, err)
			}
		}
	}
	if secbits&uapi.SECBIT_KEEP_CAPS_LOCKED == 0 {
		keep := uint64(0)
		if secbits&uapi.SECBIT_KEEP_CAPS != 0 {
			keep = 1
		}
		if _, err := sys(x86.SysPrctl, unix.PR_SET_KEEPCAPS, keep); err != nil {
			return fmt.Errorf("prctl(PR_SET_KEEPCAPS): %w", err)
		}
	}
	if cr.GetNoNewPrivs() != 0 {
		if _, err := sys(x86.SysPrctl, unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("prctl(PR_SET_NO_NEW_PRIVS): %w", err)
		}
	}
	if _, err := sys(x86.SysPrctl, unix.PR_SET_PDEATHSIG, uint64(tc.GetPdeathSig())); err != nil {
		return fmt.Errorf("prctl(PR_SET_PDEATHSIG): %w", err)
	}
	return nil
}

// queueSignal queues one dumped pending signal from inside the thread it
// was pending for, so the kernel accepts its original siginfo (si_code >= 0
// is only allowed for signals a task sends itself).
func (r *restorer) queueSignal(th *thread, raw []byte, shared bool) error {
	if len(raw) != ptrace.SiginfoSize {
		return fmt.Errorf("siginfo of %d bytes", len(raw))
	}
	sig := uint64(binary.LittleEndian.Uint32(raw))
	p, err := r.put(0, raw)
	if err != nil {
		return err
	}
	if shared {
		_, err = th.inj.Syscall(x86.SysRtSigqueueinfo, uint64(r.im.Pid), sig, p)
	} else {
		_, err = th.inj.Syscall(x86.SysRtTgsigqueueinfo, uint64(r.im.Pid), uint64(th.vtid), sig, p)
	}
	if err != nil {
		return fmt.Errorf("queue signal %d: %w", sig, err)
	}
	return nil
}

// queueSharedSignals queues the process-wide pending signals.
func (r *restorer) queueSharedSignals() error {
	for _, s := range r.im.Core.GetTc().GetSignalsS().GetSignals() {
		if err := r.queueSignal(r.threads[0], s.GetSiginfo(), true); err != nil {
			return err
		}
	}
	return nil
}

// removeScratch unmaps the scratch area from inside the leader; the
// syscall-exit stop still comes after the call unmapped its own code.
func (r *restorer) removeScratch() error {
	if _, err := r.inj.Syscall(x86.SysMunmap, r.scratch, scratchPages*x86.PageSize); err != nil {
		return fmt.Errorf("munmap scratch %#x: %w", r.scratch, err)
	}
	for _, th := range r.threads {
		th.inj.ForgetCode()
	}
	return nil
}

// setRegisters sets TLS, FPU/xstate, general registers and the blocked
// mask as dumped.
func (r *restorer) setRegisters(th *thread) error {
	ti := th.core.GetThreadInfo()
	pid := th.tid
	for _, d := range ti.GetTls() {
		if err := ptrace.SetThreadArea(pid, int(d.GetEntryNumber()), x86.EncodeUserDesc(x86img.UserDescFromImage(d))); err != nil {
			return fmt.Errorf("TLS entry %d: %w", d.GetEntryNumber(), err)
		}
	}
	tmpl, err := ptrace.GetXstate(pid)
	if err != nil {
		return fmt.Errorf("read xstate: %w", err)
	}
	xs, err := x86img.XstateFromImage(ti.GetFpregs(), tmpl)
	if err != nil {
		return err
	}
	if err := ptrace.SetRegset(pid, unix.NT_X86_XSTATE, xs); err != nil {
		return fmt.Errorf("set xstate: %w", err)
	}
	regs := x86img.RegsFromImage(ti.GetGpregs())
	// The task leaves a syscall-exit stop, where the kernel applies no
	// restart rules: rewind an interrupted syscall here.
	x86.RewindSyscall(&regs)
	if err := ptrace.SetRegs(pid, &regs); err != nil {
		return fmt.Errorf("set registers (ip %#x cs %#x): %w", regs.Rip, regs.Cs, err)
	}
	mask := th.core.GetThreadCore().GetBlkSigset()
	if err := ptrace.SetSigmask(pid, mask); err != nil {
		return fmt.Errorf("set signal mask: %w", err)
	}
	return nil
}
