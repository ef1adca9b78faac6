//go:build linux && amd64

package vma

import (
	"fmt"
	"os"

	mmimg "github.com/checkpoint-restore/go-criu/v8/crit/images/mm"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/ckerr"
	"github.com/ckpt/ckpt/internal/procfs"
	"github.com/ckpt/ckpt/internal/uapi"
)

// HugetlbFlags returns the mmap flags that map a hugetlb area se again
// with its page size: MAP_HUGETLB and the page size's MAP_HUGE_* bits,
// as CRIU writes them into vma_entry.flags (its MAP_HUGETLB_2MB, ...).
// The page size is smaps' KernelPageSize. A shared area must map its
// whole object (see below).
func HugetlbFlags(pid int, se procfs.SmapsEntry) (uint32, error) {
	v := se.VMA
	hf := uapi.MapHugeFlag(se.KernelPageSize)
	if hf == 0 || se.KernelPageSize <= uint64(os.Getpagesize()) {
		return 0, ckerr.Unsupported(pid, fmt.Sprintf("vma %#x-%#x %s", v.Start, v.End, v.Path),
			fmt.Sprintf("hugetlb memory with a page size of %d bytes (smaps KernelPageSize) cannot be dumped", se.KernelPageSize))
	}
	if v.Shared {
		// The restore fills a shared object through its mapping
		// (hugetlbfs has no write(2)), so the area must map it whole.
		var st unix.Stat_t
		mf := fmt.Sprintf("/proc/%d/map_files/%x-%x", pid, v.Start, v.End)
		if err := unix.Stat(mf, &st); err != nil {
			return 0, fmt.Errorf("task %d: vma %#x-%#x %s: stat: %w", pid, v.Start, v.End, v.Path, err)
		}
		if v.Offset != 0 || uint64(st.Size) != v.End-v.Start {
			return 0, ckerr.Unsupported(pid, fmt.Sprintf("vma %#x-%#x %s", v.Start, v.End, v.Path),
				fmt.Sprintf("shared hugetlb memory mapped in part (%d bytes at offset %d of %d) cannot be dumped yet", v.End-v.Start, v.Offset, st.Size))
		}
	}
	return unix.MAP_HUGETLB | hf, nil
}

// ReadAIORing reads and checks the header of the AIO ring at area v of
// task pid (through /proc/PID/mem: the task may run).
//
// What the dump cannot see: requests submitted and not yet completed.
// The kernel counts them only in the context (reqs_available, per CPU),
// which neither /proc nor the ring shows, and the one call that would
// tell (io_getevents) reaps what it finds. Reads and writes of ordinary
// files complete inside io_submit (their read_iter/write_iter runs in
// the submitter), so such a ring has none; O_DIRECT requests complete
// by themselves within the freeze; but a request that waits for an
// event (IOCB_CMD_POLL) stays in flight, and the restored context would
// never complete it. This limit is documented in the README.
func ReadAIORing(pid int, v procfs.VMA) (uapi.AIORing, error) {
	object := fmt.Sprintf("vma %#x-%#x (AIO ring, context %#x)", v.Start, v.End, v.Start)
	f, err := os.Open(fmt.Sprintf("/proc/%d/mem", pid))
	if err != nil {
		return uapi.AIORing{}, fmt.Errorf("task %d: %s: %w", pid, object, err)
	}
	defer f.Close()
	b := make([]byte, uapi.AIORingHeaderSize)
	if _, err := f.ReadAt(b, int64(v.Start)); err != nil {
		return uapi.AIORing{}, fmt.Errorf("task %d: %s: read header: %w", pid, object, err)
	}
	r, err := uapi.ParseAIORing(b, v.End-v.Start)
	if err != nil {
		return r, ckerr.Unsupported(pid, object, fmt.Sprintf("the ring's header is not one ckpt knows (%v): it cannot be dumped", err))
	}
	if uapi.AIONrEvents(v.End-v.Start) == 0 {
		return r, ckerr.Unsupported(pid, object, "a ring this small cannot be made again by io_setup")
	}
	return r, nil
}

// AIORingEntry is the mm image's record of the ring at area v (CRIU's
// aio_ring_entry: the context id is the ring's address).
func AIORingEntry(v procfs.VMA) *mmimg.AioRingEntry {
	n := v.End - v.Start
	return &mmimg.AioRingEntry{
		Id:      proto.Uint64(v.Start),
		NrReq:   proto.Uint32(uapi.AIONrEvents(n)),
		RingLen: proto.Uint32(uint32(n)),
	}
}
