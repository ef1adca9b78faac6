//go:build linux && amd64

package task

import (
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	credsimg "github.com/checkpoint-restore/go-criu/v8/crit/images/creds"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/uapi"
)

// creds are a thread's credentials: user and group ids, supplementary
// groups, capability sets, securebits and no_new_privs. A restore sets
// them in each thread after every thread exists: clone3 with set_tid needs
// CAP_SYS_ADMIN, which the credentials may drop.
type creds struct{}

func (creds) Name() string { return "credentials" }
func (creds) Stage() Stage { return StageThread }

func capWords(v uint64) []uint32 { return []uint32{uint32(v), uint32(v >> 32)} }

func capMask(words []uint32) uint64 {
	var v uint64
	for i, w := range words {
		if i < 2 {
			v |= uint64(w) << (32 * i)
		}
	}
	return v
}

func (creds) Collect(t Thread, e Entry) error {
	sec, err := t.Syscall(x86.SysPrctl, unix.PR_GET_SECUREBITS)
	if err != nil {
		return fmt.Errorf("prctl(PR_GET_SECUREBITS): %w", err)
	}
	st := t.Status()
	cr := &credsimg.CredsEntry{
		Uid: proto.Uint32(st.Uid[0]), Euid: proto.Uint32(st.Uid[1]), Suid: proto.Uint32(st.Uid[2]), Fsuid: proto.Uint32(st.Uid[3]),
		Gid: proto.Uint32(st.Gid[0]), Egid: proto.Uint32(st.Gid[1]), Sgid: proto.Uint32(st.Gid[2]), Fsgid: proto.Uint32(st.Gid[3]),
		CapInh: capWords(st.CapInh), CapPrm: capWords(st.CapPrm), CapEff: capWords(st.CapEff),
		CapBnd: capWords(st.CapBnd), CapAmb: capWords(st.CapAmb),
		Secbits: proto.Uint32(uint32(sec)), Groups: st.Groups,
		NoNewPrivs: proto.Uint32(0),
	}
	if st.NoNewPrivs {
		cr.NoNewPrivs = proto.Uint32(1)
	}
	e.Core.ThreadCore.Creds = cr
	return nil
}

// lastCap is the highest capability this kernel knows, read once.
var lastCap = sync.OnceValue(func() int {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return 40
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 40
	}
	return n
})

// Restore sets groups, ids, capabilities and securebits, in the order that
// keeps the capabilities needed for the next step.
func (creds) Restore(t Thread, e Entry) error {
	cr := e.Core.GetThreadCore().GetCreds()
	if cr == nil {
		return fmt.Errorf("core image has no credentials")
	}
	sys := t.Syscall
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
	p, err := t.Put(groups)
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
	hdr, err := t.Put(capb)
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
	return nil
}
