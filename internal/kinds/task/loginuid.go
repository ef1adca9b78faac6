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
)

// loginuid is the audit login uid (/proc/PID/loginuid), kept in CRIU's
// task_core_entry.loginuid; 4294967295 is unset. Only the task itself
// may write its own (fs/proc/base.c, proc_loginuid_write), so a restore
// writes it from inside the leader, before its credentials are restored
// and before the other threads exist (they inherit it). Setting an unset
// loginuid needs no privilege; changing a set one needs CAP_AUDIT_CONTROL
// (kernel/audit.c, audit_set_loginuid_perm). A kernel without
// CONFIG_AUDITSYSCALL has no such file: nothing to keep.
type loginuid struct{}

func (loginuid) Name() string { return "loginuid" }
func (loginuid) Stage() Stage { return StageProcess }

// atFdcwd is AT_FDCWD (-100, include/uapi/linux/fcntl.h) as a syscall
// argument.
const atFdcwd = ^uint64(99)

func loginuidPath(pid int) string { return fmt.Sprintf("/proc/%d/loginuid", pid) }

// readLoginuid reads a task's loginuid; ok is false where the kernel has
// none.
func readLoginuid(pid int) (v uint32, ok bool, err error) {
	b, err := os.ReadFile(loginuidPath(pid))
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	u, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 32)
	if err != nil {
		return 0, false, fmt.Errorf("%s: %w", loginuidPath(pid), err)
	}
	return uint32(u), true, nil
}

func (loginuid) Collect(t Thread, e Entry) error {
	v, ok, err := readLoginuid(t.Pid())
	if err != nil {
		return fmt.Errorf("loginuid: %w", err)
	}
	if ok {
		e.Core.Tc.Loginuid = proto.Uint32(v)
	}
	return nil
}

func (loginuid) Restore(t Thread, e Entry) error {
	tc := e.Core.GetTc()
	if tc.Loginuid == nil {
		return nil
	}
	want := tc.GetLoginuid()
	cur, ok, err := readLoginuid(t.Pid())
	if err != nil {
		return fmt.Errorf("loginuid: %w", err)
	}
	if !ok {
		if want == ^uint32(0) {
			return nil
		}
		return fmt.Errorf("loginuid %d: this kernel has no /proc/PID/loginuid (no audit support) to set it", want)
	}
	if cur == want {
		return nil
	}
	p, err := t.Put(append([]byte(loginuidPath(t.Pid())), 0))
	if err != nil {
		return err
	}
	fd, err := t.Syscall(x86.SysOpenat, atFdcwd, p, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("loginuid %d: open %s: %w", want, loginuidPath(t.Pid()), err)
	}
	s := strconv.FormatUint(uint64(want), 10)
	if p, err = t.Put([]byte(s)); err == nil {
		_, err = t.Syscall(x86.SysWrite, fd, p, uint64(len(s)))
	}
	if _, cerr := t.Syscall(x86.SysClose, fd); cerr != nil && err == nil {
		err = cerr
	}
	if errors.Is(err, unix.EPERM) {
		return fmt.Errorf("loginuid %d (this task's is %d): changing a loginuid that is set needs CAP_AUDIT_CONTROL, and the audit feature loginuid_immutable must be off: %w", want, cur, err)
	}
	if err != nil {
		return fmt.Errorf("loginuid %d: %w", want, err)
	}
	return nil
}
