//go:build linux && amd64

package restore

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/image"
)

// pageFiller puts dumped pages into the task in one copy: the task opens
// the pages image itself and preadv's runs of it straight into place,
// many runs per injected call (iovecs in the scratch data area). Only
// runs in writable mappings go this way: a preadv into a read-only one
// fails, where a write to /proc/PID/mem (the other path) does not.
type pageFiller struct {
	r    *restorer
	fd   uint64   // the pages image, open in the task
	img  *os.File // the same image, open in ckpt (fillhelp.go)
	name string   // its path, for errors
	// writable are the dumped VMAs with PROT_WRITE.
	writable []span
	// The pending call: iovecs enc (count n) for the bytes of the
	// image from off to next.
	enc       []byte
	n         int
	off, next int64
	// helpers is how many goroutines of ckpt copy part of a large call
	// beside the task (fillhelp.go); 0 on one CPU.
	helpers int
}

// fillerIovMax is how many iovecs one call takes: what the scratch data
// area holds, at 16 bytes each (below UIO_MAXIOV, 1024).
const fillerIovMax = dataSize / 16

// newPageFiller opens the pages image pf in the task; nil, with the
// reason logged, when the task cannot open it (the image's path is not
// reachable from the task): the pages then go through /proc/PID/mem.
func (r *restorer) newPageFiller(pf *os.File) *pageFiller {
	path, err := filepath.Abs(pf.Name())
	if err == nil {
		var p uint64
		if p, err = r.putString(0, path); err == nil {
			var fd uint64
			if fd, err = r.inj.Syscall(x86.SysOpenat, atFdcwd, p, unix.O_RDONLY|unix.O_CLOEXEC, 0); err == nil {
				f := &pageFiller{r: r, fd: fd, img: pf, name: pf.Name(), helpers: fillHelpers()}
				for _, v := range r.im.MM.GetVmas() {
					if v.GetProt()&unix.PROT_WRITE != 0 && v.GetStatus()&(image.VMAAreaVDSO|image.VMAAreaVVAR) == 0 {
						f.writable = append(f.writable, span{v.GetStart(), v.GetEnd()})
					}
				}
				return f
			}
		}
	}
	r.opts.logf("restore %d: pages through /proc/PID/mem, not preadv: open %s in the task: %v", r.pid, pf.Name(), err)
	return nil
}

// take queues the run of size bytes at addr, at offset off of the image,
// for preadv and says so, or says it must go another way.
func (f *pageFiller) take(addr, size uint64, off int64) (bool, error) {
	if f == nil || !inSpans(span{addr, addr + size}, f.writable) {
		return false, nil
	}
	if f.n > 0 && (off != f.next || f.n == fillerIovMax) {
		if err := f.flush(); err != nil {
			return false, err
		}
	}
	if f.n == 0 {
		f.off, f.next = off, off
	}
	f.enc = binary.LittleEndian.AppendUint64(f.enc, addr)
	f.enc = binary.LittleEndian.AppendUint64(f.enc, size)
	f.n++
	f.next += int64(size)
	return true, nil
}

// flush runs the pending call. A large one is shared out (fillhelp.go):
// the task preadv's pieces from its front while ckpt's helpers write
// pieces from its back; otherwise the task preadv's all of it.
func (f *pageFiller) flush() error {
	if f == nil || f.n == 0 {
		return nil
	}
	enc := f.enc
	defer f.r.watchFill(uint64(f.next - f.off))()
	f.enc, f.n = f.enc[:0], 0
	var err error
	if f.helpers > 0 && f.next-f.off >= fillShareMin && f.imageHolds(f.next) {
		err = f.share(enc, f.off, f.next)
	} else {
		err = f.preadv(enc, f.off)
	}
	f.enc = enc[:0]
	return err
}

// preadv has the task read the image from off into the iovecs iov (as
// encoded for the call), again from where a short read stopped.
func (f *pageFiller) preadv(iov []byte, off int64) error {
	for len(iov) > 0 {
		n := min(len(iov)/16, fillerIovMax)
		p, err := f.r.put(0, iov[:n*16])
		if err != nil {
			return err
		}
		got, err := f.r.inj.Syscall(x86.SysPreadv, f.fd, p, uint64(n), uint64(off), 0)
		if err != nil {
			return fmt.Errorf("%s: preadv at byte %d into %#x: %w", f.name, off, binary.LittleEndian.Uint64(iov), err)
		}
		if got == 0 {
			return fmt.Errorf("%s: %w: truncated at byte %d", f.name, image.ErrCorrupt, off)
		}
		off += int64(got)
		f.r.filled(got)
		iov = dropIov(iov, got)
	}
	return nil
}

// dropIov drops the first n bytes of the encoded iovecs iov: whole
// iovecs, then the front of one (rewritten in place).
func dropIov(iov []byte, n uint64) []byte {
	for n > 0 && len(iov) > 0 {
		base, l := binary.LittleEndian.Uint64(iov), binary.LittleEndian.Uint64(iov[8:])
		if n < l {
			binary.LittleEndian.PutUint64(iov, base+n)
			binary.LittleEndian.PutUint64(iov[8:], l-n)
			break
		}
		n -= l
		iov = iov[16:]
	}
	return iov
}

// close closes the image in the task.
func (f *pageFiller) close() error {
	if f == nil {
		return nil
	}
	if _, err := f.r.inj.Syscall(x86.SysClose, f.fd); err != nil {
		return fmt.Errorf("close pages image in the task: %w", err)
	}
	return nil
}

// overlapsAny reports whether s overlaps a span of in.
func overlapsAny(s span, in []span) bool {
	for _, v := range in {
		if overlaps(s, v) {
			return true
		}
	}
	return false
}
