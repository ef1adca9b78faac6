//go:build linux && amd64

package dump

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/ckerr"
	"github.com/ckpt/ckpt/internal/inject"
	"github.com/ckpt/ckpt/internal/procfs"
	"github.com/ckpt/ckpt/internal/ptrace"
	"github.com/ckpt/ckpt/internal/uapi"
)

// aioRingOwned refuses the AIO ring area v of the frozen task unless its
// context belongs to the task. A child forked after io_setup keeps the
// parent's ring mapped (the area is not VM_DONTCOPY) but has no context
// (the mm's ioctx table is not copied): a restore would give it one. The
// kernel tells by io_getevents(ctx, 0, 0, NULL, NULL), which is EINVAL
// for a context of another mm and otherwise returns 0 at once and reaps
// nothing (min_nr 0 is met before any wait, nr 0 copies no event). The
// call is made in the task, from code at code (see scratchCodeAddr).
func (t *task) aioRingOwned(v procfs.VMA, code uint64) error {
	if code == 0 || len(t.threads) == 0 {
		return fmt.Errorf("vma %#x-%#x (AIO ring): no place to run a check in the task", v.Start, v.End)
	}
	inj, err := inject.BeginUndo(t.s.Undo, t.threads[0], code)
	if err != nil {
		return fmt.Errorf("vma %#x-%#x (AIO ring): prepare injection: %w", v.Start, v.End, err)
	}
	_, err = inj.Syscall(x86.SysIoGetevents, v.Start, 0, 0, 0, 0)
	if eerr := inj.End(); eerr != nil {
		return fmt.Errorf("vma %#x-%#x (AIO ring): end injection: %w", v.Start, v.End, eerr)
	}
	if errors.Is(err, unix.EINVAL) {
		return ckerr.Unsupported(t.pid, fmt.Sprintf("vma %#x-%#x (AIO ring)", v.Start, v.End),
			"the ring was inherited by fork and its context belongs to another process (io_getevents answers EINVAL): a restore cannot map it without a context")
	}
	if err != nil {
		return fmt.Errorf("vma %#x-%#x (AIO ring): io_getevents: %w", v.Start, v.End, err)
	}
	return nil
}

// aioRingsSettled refuses the dump if a ring's tail moved while its
// pages were copied (rings: area start to the tail read before): a
// request in flight at the freeze (O_DIRECT) completed meanwhile, and its
// event may be missing from the image.
func aioRingsSettled(pid int, mem *ptrace.Mem, rings map[procfs.VMA]uint32) error {
	b := make([]byte, uapi.AIORingHeaderSize)
	for v, tail := range rings {
		if err := mem.ReadAt(b, v.Start); err != nil {
			return fmt.Errorf("vma %#x-%#x (AIO ring): read header again: %w", v.Start, v.End, err)
		}
		r, err := uapi.ParseAIORing(b, v.End-v.Start)
		if err != nil {
			return fmt.Errorf("vma %#x-%#x (AIO ring): %w", v.Start, v.End, err)
		}
		if r.Tail != tail {
			return ckerr.Unsupported(pid, fmt.Sprintf("vma %#x-%#x (AIO ring, context %#x)", v.Start, v.End, v.Start),
				fmt.Sprintf("requests in flight completed while the ring was saved (tail %d, then %d): dump again when the task has no AIO request in flight", tail, r.Tail))
		}
	}
	return nil
}
