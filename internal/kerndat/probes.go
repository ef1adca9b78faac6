//go:build linux && amd64

package kerndat

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/inject"
	"github.com/ckpt/ckpt/internal/procfs"
	"github.com/ckpt/ckpt/internal/ptrace"
	"github.com/ckpt/ckpt/internal/uapi"
)

// Probe names, as `ckpt check` prints them.
const (
	nameKernel      = "kernel version"
	nameRoot        = "root privileges"
	nameSysResource = "CAP_SYS_RESOURCE"
	nameSeize       = "ptrace seize/interrupt"
	nameRegs        = "ptrace getregs/setregs"
	nameInject      = "syscall injection"
	nameVMReadv     = "process_vm_readv"
	namePagemap     = "/proc/PID/pagemap"
	nameMapFiles    = "/proc/PID/map_files"
	nameRseq        = "PTRACE_GET_RSEQ_CONFIGURATION"
	nameMMMap       = "PR_SET_MM_MAP"
	nameClone3      = "clone3 with set_tid"
	nameVDSO64      = "ARCH_MAP_VDSO_64"
	nameIA32        = "ia32 emulation"
	nameVDSO32      = "ARCH_MAP_VDSO_32"
	nameCompat      = CompatProbe
	nameTimeNS      = "time namespaces"
	nameCPU         = "CPU"
)

// kernel is what the probes know about the running kernel and ckpt.
type kernel struct {
	release      string
	major, minor int
	euid         uint32
	capEff       uint64
	capErr       error
}

func (k *kernel) hasCap(c uint) bool { return k.capErr == nil && k.capEff&(1<<c) != 0 }

func (k *kernel) atLeast(major, minor int) bool {
	return k.major > major || (k.major == major && k.minor >= minor)
}

func runAll() []Result {
	k := &kernel{}
	var rs []Result
	rs = append(rs, k.probeVersion())
	k.readCaps()
	rs = append(rs, k.probeRoot(), k.probeSysResource())

	tr := ptrace.NewTracer()
	defer tr.Close()
	rs = append(rs, probeLive(tr)...)
	rs = append(rs, probeMMMap(), k.probeClone3(), probeTimeNS(), probeCPU(), probeSockBPF(), probeMemTrack())
	vdso64, _ := probeVDSO(tr, false)
	rs = append(rs, vdso64)
	ia32 := probeIA32()
	rs = append(rs, ia32.result)
	vdso32, _ := probeVDSO(tr, true)
	rs = append(rs, ia32.gate(vdso32))
	rs = append(rs, ia32.gate(probeCompat(tr)))
	return rs
}

func (k *kernel) probeVersion() Result {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return fail(nameKernel, false, "uname: %v", err)
	}
	k.release = unix.ByteSliceToString(u.Release[:])
	fmt.Sscanf(k.release, "%d.%d", &k.major, &k.minor)
	return ok(nameKernel, fmt.Sprintf("%s %s %s", unix.ByteSliceToString(u.Sysname[:]), k.release, unix.ByteSliceToString(u.Machine[:])), false)
}

func (k *kernel) readCaps() {
	st, err := procfs.ReadStatus(os.Getpid())
	if err != nil {
		k.capErr = err
		return
	}
	k.euid = st.Uid[1]
	k.capEff = st.CapEff
}

func (k *kernel) probeRoot() Result {
	if k.capErr != nil {
		return fail(nameRoot, true, "cannot read capabilities: %v", k.capErr)
	}
	var held []string
	for _, c := range []struct {
		n    uint
		name string
	}{{unix.CAP_SYS_ADMIN, "CAP_SYS_ADMIN"}, {unix.CAP_CHECKPOINT_RESTORE, "CAP_CHECKPOINT_RESTORE"}, {unix.CAP_SYS_PTRACE, "CAP_SYS_PTRACE"}} {
		if k.hasCap(c.n) {
			held = append(held, c.name)
		}
	}
	if k.euid != 0 {
		return fail(nameRoot, true, "not running as root (euid %d): run ckpt as root", k.euid)
	}
	if !k.hasCap(unix.CAP_SYS_ADMIN) && !k.hasCap(unix.CAP_CHECKPOINT_RESTORE) {
		return fail(nameRoot, true, "euid 0 but neither CAP_SYS_ADMIN nor CAP_CHECKPOINT_RESTORE is effective (CapEff %#x)", k.capEff)
	}
	d := "euid 0, " + strings.Join(held, ", ")
	if !k.hasCap(unix.CAP_SYS_PTRACE) {
		d += "; CAP_SYS_PTRACE missing: tasks of other users cannot be traced"
	}
	return ok(nameRoot, d, true)
}

func (k *kernel) probeSysResource() Result {
	if k.hasCap(unix.CAP_SYS_RESOURCE) {
		return ok(nameSysResource, "held: hard rlimits can be raised at restore", false)
	}
	return fail(nameSysResource, false, "not held: hard rlimits cannot be raised, so a task whose hard limits are above ckpt's own cannot get them back")
}

// probeTimeNS tells whether a restore can give the tree a time namespace,
// which keeps its clocks from going back on a machine booted later.
func probeTimeNS() Result {
	if _, err := os.Stat("/proc/self/timens_offsets"); err != nil {
		return fail(nameTimeNS, false, "none (CONFIG_TIME_NS is off): a restore after a reboot or on another machine sets the tree's CLOCK_MONOTONIC and CLOCK_BOOTTIME back")
	}
	return ok(nameTimeNS, "a restore where the clocks are behind the dump's keeps them going in a time namespace", false)
}

// probeCPU names this CPU and the instruction-set features a dump from it
// needs wherever it is restored (restore --cpu-cap=ins).
func probeCPU() Result {
	feats := x86.InstructionFeatures(x86.CPUCapabilities())
	brand := x86.CPUBrand()
	if brand == "" {
		brand, _, _, _ = x86.CPUVendorModel()
	}
	return ok(nameCPU, fmt.Sprintf("%s; %d instruction-set features, which a restore of its dumps elsewhere needs (--cpu-cap=ins)", brand, len(feats)), false)
}

// probeLive attaches to a helper the way a dump attaches to a task and
// checks each thing a dump does with it.
func probeLive(tr *ptrace.Tracer) []Result {
	type named struct {
		name     string
		required bool
	}
	all := []named{
		{nameSeize, true}, {nameRegs, true}, {nameInject, true}, {nameVMReadv, false},
		{namePagemap, true}, {nameMapFiles, true}, {nameRseq, true},
	}
	got := map[string]Result{}
	set := func(r Result) { got[r.Name] = r }
	err := tr.Run(func(sess *ptrace.Session) error {
		h, err := startHelper(sess)
		var se *seizeError
		if errors.As(err, &se) {
			set(fail(nameSeize, true, "%v", se.err))
			return nil
		}
		if err != nil {
			return err
		}
		defer h.kill()
		set(ok(nameSeize, "", true))
		pid := h.pid

		regs, err := h.th.GetRegs()
		if err == nil {
			err = h.th.SetRegs(&regs)
		}
		if err != nil {
			set(fail(nameRegs, true, "%v", err))
			return nil
		}
		if x86.RegsMode(&regs) != x86.ModeNative {
			set(fail(nameRegs, true, "a 64-bit helper shows cs %#x", regs.Cs))
			return nil
		}
		set(ok(nameRegs, "", true))

		set(probeInjectGetpid(h, regs.Rip))
		set(probeVMReadv(h, regs.Rip))
		set(probePagemap(pid, regs.Rip))
		set(probeMapFiles(pid))
		if c, err := h.th.GetRseqConfig(); err != nil {
			set(fail(nameRseq, true, "%v: this kernel cannot tell a task's rseq area (needs Linux 5.13), so glibc programs cannot be dumped", err))
		} else if c.Addr != 0 {
			set(ok(nameRseq, fmt.Sprintf("helper rseq at %#x, %d bytes", c.Addr, c.Len), true))
		} else {
			set(ok(nameRseq, "", true))
		}
		return nil
	})
	var rs []Result
	for _, n := range all {
		r, done := got[n.name]
		if !done {
			if err != nil {
				r = fail(n.name, n.required, "not tested: no traced helper: %v", err)
			} else {
				r = fail(n.name, n.required, "not tested: an earlier step failed")
			}
		}
		rs = append(rs, r)
	}
	return rs
}

// probeInjectGetpid runs getpid inside the helper.
func probeInjectGetpid(h *helper, code uint64) Result {
	inj, err := inject.Begin(h.th, code)
	if err != nil {
		return fail(nameInject, true, "%v", h.explain(err))
	}
	got, err := inj.Syscall(x86.SysGetpid)
	if eerr := inj.End(); err == nil && eerr != nil {
		err = eerr
	}
	if err != nil {
		return fail(nameInject, true, "getpid: %v", h.explain(err))
	}
	if int(got) != h.pid {
		return fail(nameInject, true, "injected getpid returned %d, the helper is %d", got, h.pid)
	}
	return ok(nameInject, "", true)
}

func probeVMReadv(h *helper, addr uint64) Result {
	pid := h.pid
	const n = 16
	b := make([]byte, n)
	local := []unix.Iovec{{Base: &b[0]}}
	local[0].SetLen(n)
	remote := []unix.RemoteIovec{{Base: uintptr(addr), Len: n}}
	got, err := unix.ProcessVMReadv(pid, local, remote, 0)
	if err != nil {
		return fail(nameVMReadv, false, "%v: memory is read through /proc/PID/mem instead (slower)", err)
	}
	want, err := h.th.ReadBytes(addr, n)
	if err != nil {
		return fail(nameVMReadv, false, "PTRACE_PEEKDATA to compare: %v", err)
	}
	if got != n || string(b) != string(want) {
		return fail(nameVMReadv, false, "read %d bytes that differ from PTRACE_PEEKDATA's", got)
	}
	return ok(nameVMReadv, "", false)
}

func probePagemap(pid int, addr uint64) Result {
	f, err := os.Open(fmt.Sprintf("/proc/%d/pagemap", pid))
	if err != nil {
		return fail(namePagemap, true, "%v: without it every page would have to be saved", err)
	}
	defer f.Close()
	var b [8]byte
	if _, err := f.ReadAt(b[:], int64(addr/x86.PageSize*8)); err != nil {
		return fail(namePagemap, true, "read: %v", err)
	}
	return ok(namePagemap, "", true)
}

func probeMapFiles(pid int) Result {
	dir := fmt.Sprintf("/proc/%d/map_files", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fail(nameMapFiles, true, "%v: file mappings cannot be identified (needs CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE)", err)
	}
	if len(ents) == 0 {
		return fail(nameMapFiles, true, "%s is empty for a task with file mappings", dir)
	}
	p := dir + "/" + ents[0].Name()
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		return fail(nameMapFiles, true, "stat %s: %v", p, err)
	}
	if _, err := os.Readlink(p); err != nil {
		return fail(nameMapFiles, true, "readlink %s: %v", p, err)
	}
	return ok(nameMapFiles, "", true)
}

func probeMMMap() Result {
	var size uint32
	err := unix.Prctl(unix.PR_SET_MM, unix.PR_SET_MM_MAP_SIZE, uintptr(unsafe.Pointer(&size)), 0, 0)
	switch {
	case errors.Is(err, unix.EINVAL):
		return fail(nameMMMap, true, "prctl(PR_SET_MM, PR_SET_MM_MAP_SIZE): EINVAL: kernel built without CONFIG_CHECKPOINT_RESTORE")
	case err != nil:
		return fail(nameMMMap, true, "prctl(PR_SET_MM, PR_SET_MM_MAP_SIZE): %v", err)
	case size != uapi.SizeofPrctlMMMap:
		return fail(nameMMMap, true, "struct prctl_mm_map is %d bytes on this kernel, ckpt writes %d", size, uapi.SizeofPrctlMMMap)
	}
	return ok(nameMMMap, "", true)
}

func (k *kernel) probeClone3() Result {
	if !k.atLeast(5, 5) {
		return fail(nameClone3, true, "kernel %s: clone3 set_tid needs Linux 5.5, so tasks cannot get their PIDs back", k.release)
	}
	switch {
	case k.hasCap(unix.CAP_SYS_ADMIN):
		return ok(nameClone3, "Linux >= 5.5 and CAP_SYS_ADMIN (not tried)", true)
	case k.hasCap(unix.CAP_CHECKPOINT_RESTORE) && k.atLeast(5, 9):
		return ok(nameClone3, "Linux >= 5.9 and CAP_CHECKPOINT_RESTORE (not tried)", true)
	}
	return fail(nameClone3, true, "set_tid needs CAP_SYS_ADMIN (or CAP_CHECKPOINT_RESTORE on Linux 5.9+), which ckpt lacks: tasks cannot get their PIDs back")
}

// probeVDSO unmaps a helper's vDSO and vvar areas and maps a new vDSO
// with arch_prctl(ARCH_MAP_VDSO_64 or _32), as a restore does. It returns
// the result and the layout mapped.
func probeVDSO(tr *ptrace.Tracer, compat bool) (Result, string) {
	name, code, required := nameVDSO64, uint64(x86.ArchMapVDSO64), true
	if compat {
		name, code, required = nameVDSO32, uint64(x86.ArchMapVDSO32), false
	}
	var res Result
	var layout string
	err := tr.Run(func(sess *ptrace.Session) error {
		h, err := startHelper(sess)
		if err != nil {
			return err
		}
		defer h.kill()
		res, layout = mapVDSOIn(h, name, code, required)
		return nil
	})
	if err != nil {
		return fail(name, required, "not tested: no traced helper: %v", err), ""
	}
	return res, layout
}

func isVDSOArea(path string) bool {
	return path == "[vdso]" || path == "[vvar]" || path == "[vvar_vclock]"
}

func vdsoLayout(maps []procfs.VMA) (string, uint64) {
	var parts []string
	var vdso uint64
	for _, v := range maps {
		if isVDSOArea(v.Path) {
			parts = append(parts, fmt.Sprintf("%s %d KiB", v.Path, v.Size()/1024))
			if v.Path == "[vdso]" {
				vdso = v.Start
			}
		}
	}
	return strings.Join(parts, ", "), vdso
}

func mapVDSOIn(h *helper, name string, code uint64, required bool) (Result, string) {
	pid := h.pid
	regs, err := h.th.GetRegs()
	if err != nil {
		return fail(name, required, "get helper registers: %v", err), ""
	}
	maps, err := procfs.ReadMaps(pid)
	if err != nil {
		return fail(name, required, "%v", err), ""
	}
	inj, err := inject.Begin(h.th, regs.Rip)
	if err != nil {
		return fail(name, required, "%v", h.explain(err)), ""
	}
	defer inj.End()
	for _, v := range maps {
		if !isVDSOArea(v.Path) {
			continue
		}
		if regs.Rip >= v.Start && regs.Rip < v.End {
			return fail(name, required, "helper stopped inside %s", v.Path), ""
		}
		if _, err := inj.Syscall(x86.SysMunmap, v.Start, v.Size()); err != nil {
			return fail(name, required, "munmap %s: %v", v.Path, h.explain(err)), ""
		}
	}
	size, err := inj.Syscall(x86.SysArchPrctl, code, 0)
	if err != nil {
		return fail(name, required, "arch_prctl(%#x, 0) after unmapping the old vDSO: %v", code, h.explain(err)), ""
	}
	after, err := procfs.ReadMaps(pid)
	if err != nil {
		return fail(name, required, "%v", err), ""
	}
	layout, at := vdsoLayout(after)
	if at == 0 {
		return fail(name, required, "arch_prctl(%#x) returned %d but no [vdso] appeared", code, size), ""
	}
	d := fmt.Sprintf("new vDSO at %#x (%s)", at, layout)
	if _, err := inj.Syscall(x86.SysArchPrctl, code, 0); !errors.Is(err, unix.EEXIST) {
		return fail(name, required, "%s, but a second call gave %v instead of EEXIST", d, err), layout
	}
	return ok(name, d, required), layout
}

// probeCompat switches a traced helper's CS to the 32-bit code segment
// and back with PTRACE_SETREGS, then runs getpid with int $0x80.
func probeCompat(tr *ptrace.Tracer) Result {
	var res Result
	err := tr.Run(func(sess *ptrace.Session) error {
		h, err := startHelper(sess)
		if err != nil {
			return err
		}
		defer h.kill()
		res = compatIn(h)
		return nil
	})
	if err != nil {
		return fail(nameCompat, false, "not tested: no traced helper: %v", err)
	}
	return res
}

func compatIn(h *helper) Result {
	pid := h.pid
	regs, err := h.th.GetRegs()
	if err != nil {
		return fail(nameCompat, false, "get registers: %v", err)
	}
	r32 := regs
	r32.Cs, r32.Ss = x86.User32CS, x86.UserDS
	if err := h.th.SetRegs(&r32); err != nil {
		return fail(nameCompat, false, "PTRACE_SETREGS cs=%#x: %v", x86.User32CS, err)
	}
	back, err := h.th.GetRegs()
	if err != nil {
		return fail(nameCompat, false, "get registers: %v", err)
	}
	if back.Cs != x86.User32CS {
		return fail(nameCompat, false, "PTRACE_SETREGS cs=%#x reads back cs=%#x", x86.User32CS, back.Cs)
	}
	if err := h.th.SetRegs(&regs); err != nil {
		return fail(nameCompat, false, "PTRACE_SETREGS back to cs=%#x: %v", x86.UserCS, err)
	}
	if back, err = h.th.GetRegs(); err != nil || back.Cs != x86.UserCS {
		return fail(nameCompat, false, "switching back to cs=%#x: cs=%#x, %v", x86.UserCS, back.Cs, err)
	}
	inj, err := inject.Begin(h.th, regs.Rip)
	if err != nil {
		return fail(nameCompat, false, "%v", h.explain(err))
	}
	got, err := inj.Syscall32(x86.SysGetpid)
	if eerr := inj.End(); err == nil && eerr != nil {
		err = eerr
	}
	if err != nil {
		err = h.explain(err)
		if strings.Contains(err.Error(), unix.SIGSEGV.String()) {
			return fail(nameCompat, false, "cs switched %#x->%#x->%#x, but int $0x80 getpid raised SIGSEGV: the kernel refuses ia32 syscalls", x86.UserCS, x86.User32CS, x86.UserCS)
		}
		return fail(nameCompat, false, "cs switched %#x->%#x->%#x, but int $0x80 getpid failed: %v", x86.UserCS, x86.User32CS, x86.UserCS, err)
	}
	if int(got) != pid {
		return fail(nameCompat, false, "int $0x80 getpid returned %d, the helper is %d", got, pid)
	}
	return ok(nameCompat, fmt.Sprintf("cs switched %#x->%#x->%#x, int $0x80 getpid ran", x86.UserCS, x86.User32CS, x86.UserCS), false)
}
