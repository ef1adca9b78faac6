//go:build linux && amd64

package restore

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A large preadv of the task uses one CPU: the restored task has one
// thread while its memory is filled, and the copy from the page cache
// (with the fault of each page it lands on) is the restore's cost. So a
// call of at least fillShareMin bytes is shared out: the task takes
// pieces of fillPiece bytes from the front of the call, and ckpt's
// helper goroutines take pieces from its back, which they copy with
// process_vm_writev from a read-only shared mapping of the pages image:
// still one copy, from the page cache straight into place, on another
// CPU. They meet where the faster side got to. A piece a helper cannot
// write (process_vm_writev refused: no such syscall, a seccomp filter)
// goes back to the task.

const (
	// fillShareMin is the least a call must move to be shared out.
	fillShareMin = 16 << 20
	// fillPiece is the size of the pieces: an injected call for each of
	// the task's costs tens of microseconds, a sixteenth of a gigabyte
	// against a few milliseconds of copying.
	fillPiece = 16 << 20
	// fillHelpersMax caps the helpers: the copy is bound by memory
	// bandwidth long before many CPUs are busy.
	fillHelpersMax = 3
	// remoteIovMax is UIO_MAXIOV (include/uapi/linux/uio.h): the most
	// remote iovecs one process_vm_writev takes.
	remoteIovMax = 1024
)

// fillHelpers is how many helpers to run beside the task: one CPU fewer
// than the process may use, up to fillHelpersMax.
func fillHelpers() int {
	return min(runtime.GOMAXPROCS(0)-1, fillHelpersMax)
}

// fillShare is the state of one shared call: what is left of it, from
// byte lo to byte hi of the image.
type fillShare struct {
	mu     sync.Mutex
	lo, hi int64
	// back are pieces helpers handed back, for the task.
	back [][2]int64
	// helped counts the bytes the helpers wrote.
	helped uint64
}

// front takes the next piece from the front for the task.
func (s *fillShare) front() (int64, int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lo < s.hi {
		a := s.lo
		s.lo = min(s.lo+fillPiece, s.hi)
		return a, s.lo, true
	}
	if n := len(s.back); n > 0 {
		p := s.back[n-1]
		s.back = s.back[:n-1]
		return p[0], p[1], true
	}
	return 0, 0, false
}

// rear takes the next piece from the back for a helper.
func (s *fillShare) rear() (int64, int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lo >= s.hi {
		return 0, 0, false
	}
	b := s.hi
	s.hi = max(s.hi-fillPiece, s.lo)
	return s.hi, b, true
}

// share runs the call whose iovecs are iov, for the image's bytes from
// lo to hi, shared out between the task and f.helpers helpers.
func (f *pageFiller) share(iov []byte, lo, hi int64) error {
	s := &fillShare{lo: lo, hi: hi}
	var wg sync.WaitGroup
	for range f.helpers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				a, b, ok := s.rear()
				if !ok {
					return
				}
				n, err := f.write(iovSlice(iov, lo, a, b), a, b)
				s.mu.Lock()
				s.helped += n
				if err != nil {
					s.back = append(s.back, [2]int64{a + int64(n), b})
				}
				s.mu.Unlock()
				if err != nil {
					f.r.opts.logf("restore %d: pages %d-%d of %s through the task: %v", f.r.pid, a+int64(n), b, f.name, err)
					return
				}
			}
		}()
	}
	var err error
	for err == nil {
		a, b, ok := s.front()
		if !ok {
			// Pieces a helper is still writing may yet come back.
			wg.Wait()
			if a, b, ok = s.front(); !ok {
				break
			}
		}
		err = f.preadv(iovSlice(iov, lo, a, b), a)
	}
	if err != nil {
		// Nothing more for the helpers, and none still writing into
		// the task when this returns.
		s.mu.Lock()
		s.hi = s.lo
		s.mu.Unlock()
	}
	wg.Wait()
	f.r.filled(s.helped)
	return err
}

// iovSlice returns, encoded, the part of the iovecs iov (those of the
// image's bytes from off on) that take its bytes from a to b.
func iovSlice(iov []byte, off, a, b int64) []byte {
	var out []byte
	for ; len(iov) > 0 && off < b; iov = iov[16:] {
		base, l := binary.LittleEndian.Uint64(iov), int64(binary.LittleEndian.Uint64(iov[8:]))
		from, to := max(off, a), min(off+l, b)
		if from < to {
			out = binary.LittleEndian.AppendUint64(out, base+uint64(from-off))
			out = binary.LittleEndian.AppendUint64(out, uint64(to-from))
		}
		off += l
	}
	return out
}

// write copies the image's bytes from a to b into the task at the
// iovecs iov, with process_vm_writev from a mapping of the image, and
// says how many bytes (from a on) went in.
func (f *pageFiller) write(iov []byte, a, b int64) (uint64, error) {
	// The image's pieces start on page boundaries (whole pages).
	m, err := unix.Mmap(int(f.img.Fd()), a, int(b-a), unix.PROT_READ, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return 0, fmt.Errorf("map %s: %w", f.name, err)
	}
	defer unix.Munmap(m)
	var done uint64
	remote := make([]unix.RemoteIovec, 0, remoteIovMax)
	for len(iov) > 0 {
		remote = remote[:0]
		var n uint64
		for i := 0; i < len(iov) && len(remote) < remoteIovMax; i += 16 {
			base, l := binary.LittleEndian.Uint64(iov[i:]), binary.LittleEndian.Uint64(iov[i+8:])
			remote = append(remote, unix.RemoteIovec{Base: uintptr(base), Len: int(l)})
			n += l
		}
		local := []unix.Iovec{{Base: (*byte)(unsafe.Pointer(&m[done])), Len: n}}
		got, err := unix.ProcessVMWritev(f.r.pid, local, remote, 0)
		if err != nil {
			return done, fmt.Errorf("process_vm_writev at %#x: %w", remote[0].Base, err)
		}
		if got <= 0 {
			return done, fmt.Errorf("process_vm_writev at %#x: wrote nothing", remote[0].Base)
		}
		done += uint64(got)
		iov = dropIov(iov, uint64(got))
	}
	return done, nil
}

// imageHolds says whether the image is at least end bytes long: the
// helpers map it, and a mapping past its end would not read as a short
// file does (the task's preadv says the image is truncated).
func (f *pageFiller) imageHolds(end int64) bool {
	fi, err := f.img.Stat()
	return err == nil && fi.Size() >= end
}
