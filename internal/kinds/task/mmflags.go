//go:build linux && amd64

package task

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/ckerr"
	"github.com/ckpt/ckpt/internal/uapi"
)

// This file holds the attributes of a process's mm that are not memory
// contents: PR_SET_THP_DISABLE, the membarrier registrations and
// mlockall's MCL_FUTURE. (MAP_LOCKED on one mapping is a vma flag: see
// internal/dump/memory.go.)

// thpDisabled is prctl(PR_SET_THP_DISABLE), in CRIU's
// mm_entry.thp_disabled. The flag lives in the mm and is inherited
// across fork and exec, so a restore sets it either way when the new
// task's differs.
type thpDisabled struct{}

func (thpDisabled) Name() string { return "THP disable (PR_SET_THP_DISABLE)" }
func (thpDisabled) Stage() Stage { return StageProcess }

func (thpDisabled) Collect(t Thread, e Entry) error {
	v, err := t.Syscall(x86.SysPrctl, unix.PR_GET_THP_DISABLE, 0, 0, 0, 0)
	if err != nil {
		return fmt.Errorf("prctl(PR_GET_THP_DISABLE): %w", err)
	}
	if v&unix.PR_THP_DISABLE_EXCEPT_ADVISED != 0 {
		// Linux 6.18's "disabled except where madvise(MADV_HUGEPAGE)
		// asks": CRIU's mm image keeps a bool only.
		return ckerr.Unsupported(t.Pid(), "PR_SET_THP_DISABLE with PR_THP_DISABLE_EXCEPT_ADVISED", "the image format keeps only whether THP is disabled, not this mode: not supported yet")
	}
	e.MM.ThpDisabled = proto.Bool(v != 0)
	return nil
}

func (thpDisabled) Restore(t Thread, e Entry) error {
	if e.MM.ThpDisabled == nil {
		return nil
	}
	want := e.MM.GetThpDisabled()
	cur, err := t.Syscall(x86.SysPrctl, unix.PR_GET_THP_DISABLE, 0, 0, 0, 0)
	if err != nil {
		return fmt.Errorf("prctl(PR_GET_THP_DISABLE): %w", err)
	}
	if (cur != 0) == want && cur&unix.PR_THP_DISABLE_EXCEPT_ADVISED == 0 {
		return nil
	}
	var arg uint64
	if want {
		arg = 1
	}
	if _, err := t.Syscall(x86.SysPrctl, unix.PR_SET_THP_DISABLE, arg, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_THP_DISABLE, %d): %w", arg, err)
	}
	return nil
}

// membarrier is the mm's membarrier(2) registrations, in CRIU's
// task_core_entry.membarrier_registration_mask (the
// MEMBARRIER_CMD_REGISTER_* commands). They are read with
// MEMBARRIER_CMD_GET_REGISTRATIONS, which Linux 6.3 brought. On an older
// kernel the private ones are found by trying each private command in
// the task (EPERM when it is not registered; a barrier when it is, which
// changes nothing for stopped threads); a global-expedited registration
// cannot be seen there and is not kept (the README says so).
type membarrier struct{}

func (membarrier) Name() string { return "membarrier registrations" }
func (membarrier) Stage() Stage { return StageProcess }

func knownMembarrier() uint64 {
	var m uint64
	for _, c := range uapi.MembarrierRegistrations {
		m |= uint64(c)
	}
	return m
}

func (membarrier) Collect(t Thread, e Entry) error {
	v, err := t.Syscall(x86.SysMembarrier, uapi.MEMBARRIER_CMD_GET_REGISTRATIONS, 0, 0)
	switch {
	case errors.Is(err, unix.ENOSYS):
		return nil // no CONFIG_MEMBARRIER: nothing to register
	case errors.Is(err, unix.EINVAL):
		if v, err = probeMembarrier(t); err != nil {
			return err
		}
	case err != nil:
		return fmt.Errorf("membarrier(MEMBARRIER_CMD_GET_REGISTRATIONS): %w", err)
	}
	if unknown := v &^ knownMembarrier(); unknown != 0 {
		return ckerr.Unsupported(t.Pid(), fmt.Sprintf("membarrier registrations %#x", v), fmt.Sprintf("registration commands %#x are unknown to ckpt", unknown))
	}
	e.Core.Tc.MembarrierRegistrationMask = proto.Uint32(uint32(v))
	return nil
}

// probeMembarrier finds the private registrations of the task's mm on
// a kernel before 6.3 by issuing each private command the kernel has.
func probeMembarrier(t Thread) (uint64, error) {
	have, err := t.Syscall(x86.SysMembarrier, uapi.MEMBARRIER_CMD_QUERY, 0, 0)
	if err != nil {
		return 0, fmt.Errorf("membarrier(MEMBARRIER_CMD_QUERY): %w", err)
	}
	var v uint64
	for _, p := range uapi.MembarrierPrivate {
		if have&uint64(p.Cmd) == 0 {
			continue
		}
		_, err := t.Syscall(x86.SysMembarrier, uint64(p.Cmd), 0, 0)
		switch {
		case err == nil:
			v |= uint64(p.Register)
		case !errors.Is(err, unix.EPERM):
			return 0, fmt.Errorf("membarrier(%#x) to probe its registration: %w", p.Cmd, err)
		}
	}
	return v, nil
}

func (membarrier) Restore(t Thread, e Entry) error {
	mask := uint64(e.Core.GetTc().GetMembarrierRegistrationMask())
	if mask == 0 {
		return nil
	}
	if unknown := mask &^ knownMembarrier(); unknown != 0 {
		return fmt.Errorf("membarrier registrations %#x: commands %#x are unknown to ckpt", mask, unknown)
	}
	for _, c := range uapi.MembarrierRegistrations {
		if mask&uint64(c) == 0 {
			continue
		}
		if _, err := t.Syscall(x86.SysMembarrier, uint64(c), 0, 0); err != nil {
			return fmt.Errorf("membarrier register command %#x: %w", c, err)
		}
	}
	return nil
}

// mlockFuture is mlockall(MCL_FUTURE): the mm's def_flags, which lock
// every mapping made from then on. /proc shows def_flags nowhere but in
// the mappings made since, so the dump looks at the scratch page it
// mapped in the task itself: locked (VM_LOCKED, or VM_LOCKONFAULT with
// MCL_ONFAULT) means MCL_FUTURE. CRIU's images have no field for
// def_flags, so such a task is refused; the mappings that mlock or
// mlockall(MCL_CURRENT) locked are kept (MAP_LOCKED).
//
// Whether the scratch page is locked is read from the mm's locked_vm
// (VmLck in /proc/PID/status, which counts VM_LOCKED mappings, faulted in
// or not) around an injected munlock of that page: it drops by the page
// only if the page was locked. (Its VmFlags in /proc/PID/smaps say the
// same, but smaps walks the page tables of every mapping: 10-40 ms of a
// frozen task with 1 GiB of memory.) The tree is frozen, so nothing else
// changes locked_vm meanwhile; the scratch page is unmapped afterwards.
type mlockFuture struct{}

func (mlockFuture) Name() string { return "mlockall(MCL_FUTURE)" }
func (mlockFuture) Stage() Stage { return StageProcess }

func (mlockFuture) Collect(t Thread, e Entry) error {
	before, err := lockedKiB(t.Pid())
	if err != nil {
		return err
	}
	if _, err := t.Syscall(x86.SysMunlock, t.Scratch(), x86.PageSize); err != nil {
		return fmt.Errorf("munlock the scratch page: %w", err)
	}
	after, err := lockedKiB(t.Pid())
	if err != nil {
		return err
	}
	if after < before {
		return ckerr.Unsupported(t.Pid(), "mlockall(MCL_FUTURE)", "the task locks every mapping it makes (mm def_flags), which the image format cannot hold: not supported yet; munlockall() before the dump")
	}
	return nil
}

func (mlockFuture) Restore(t Thread, e Entry) error { return nil }

// lockedKiB is VmLck of /proc/PID/status (mm->locked_vm, in KiB).
func lockedKiB(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	n, err := parseVmLck(b)
	if err != nil {
		return 0, fmt.Errorf("/proc/%d/status: %w", pid, err)
	}
	return n, nil
}

// parseVmLck reads the "VmLck:   N kB" line of a /proc/PID/status
// (task_mem in fs/proc/task_mmu.c).
func parseVmLck(status []byte) (uint64, error) {
	for _, l := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(l, "VmLck:"); ok {
			f := strings.Fields(v)
			if len(f) == 2 && f[1] == "kB" {
				if n, err := strconv.ParseUint(f[0], 10, 64); err == nil {
					return n, nil
				}
			}
			return 0, fmt.Errorf("VmLck: %q", v)
		}
	}
	return 0, errors.New("no VmLck line")
}
