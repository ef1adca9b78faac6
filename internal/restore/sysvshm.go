//go:build linux && amd64

package restore

import (
	"fmt"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/vma"
	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/kinds/ns"
	"github.com/ckpt/ckpt/internal/uapi"
)

// attachShm attaches the SysV shared memory segment that area v maps
// (made with its id in the task's IPC namespace, package ns) at v's
// address with shmat, which the task runs, so that the kernel counts
// the attach as the task's. A segment that was marked for removal
// (IPC_RMID while attached) is marked again once attached: it still
// takes further attaches by id until the last one goes.
func (r *restorer) attachShm(v *vma.VmaEntry) error {
	start, end, id := v.GetStart(), v.GetEnd(), v.GetShmid()
	seg, err := ns.ShmSegment(r.im.Tree, r.im.IDs.GetIpcNsId(), id)
	if err != nil {
		return fmt.Errorf("vma %#x-%#x: %w", start, end, err)
	}
	prot := uint64(v.GetProt())
	// shmat gives PROT_READ, PROT_WRITE unless SHM_RDONLY, PROT_EXEC
	// with SHM_EXEC (ipc/shm.c do_shmat).
	flags, got := uint64(uapi.SHM_REMAP), uint64(unix.PROT_READ|unix.PROT_WRITE)
	if prot&unix.PROT_WRITE == 0 {
		flags |= unix.SHM_RDONLY
		got = unix.PROT_READ
	}
	if prot&unix.PROT_EXEC != 0 {
		flags |= uapi.SHM_EXEC
		got |= unix.PROT_EXEC
	}
	addr, err := r.inj.Syscall(x86.SysShmat, id, start, flags)
	if err != nil {
		return fmt.Errorf("vma %#x-%#x: shmat SysV segment %d: %w", start, end, id, err)
	}
	if addr != start {
		return fmt.Errorf("vma %#x-%#x: SysV segment %d attached at %#x", start, end, id, addr)
	}
	if got != prot {
		if _, err := r.inj.Syscall(x86.SysMprotect, start, end-start, prot); err != nil {
			return fmt.Errorf("vma %#x-%#x: mprotect SysV segment %d: %w", start, end, id, err)
		}
	}
	if seg.Entry.GetDesc().GetMode()&uapi.SHM_DEST != 0 {
		if _, err := r.inj.Syscall(x86.SysShmctl, id, unix.IPC_RMID, 0); err != nil {
			return fmt.Errorf("vma %#x-%#x: mark SysV segment %d for removal again (IPC_RMID): %w", start, end, id, err)
		}
	}
	return nil
}
