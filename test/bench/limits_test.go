//go:build linux

package bench

import (
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// limitTries is how many times each limit is measured.
const limitTries = 3

// best runs measure limitTries times and returns the shortest time, or
// the first error.
func best(measure func() (time.Duration, error)) (time.Duration, error) {
	var min time.Duration
	for i := 0; i < limitTries; i++ {
		d, err := measure()
		if err != nil {
			return 0, err
		}
		if i == 0 || d < min {
			min = d
		}
	}
	return min, nil
}

func timeVMReadv(pid int, addr uint64, buf []byte) (time.Duration, error) {
	start := time.Now()
	for off := uint64(0); off < memSize; off += chunk {
		got := 0
		for got < chunk {
			local := []unix.Iovec{{Base: &buf[got]}}
			local[0].SetLen(chunk - got)
			remote := []unix.RemoteIovec{{Base: uintptr(addr + off + uint64(got)), Len: chunk - got}}
			n, err := unix.ProcessVMReadv(pid, local, remote, 0)
			if err != nil {
				return 0, err
			}
			if n == 0 {
				return 0, fmt.Errorf("short read at %#x", addr+off+uint64(got))
			}
			got += n
		}
	}
	return time.Since(start), nil
}

func timeProcMemRead(pid int, addr uint64, buf []byte) (time.Duration, error) {
	start := time.Now()
	f, err := os.Open(fmt.Sprintf("/proc/%d/mem", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	for off := uint64(0); off < memSize; off += chunk {
		if _, err := f.ReadAt(buf, int64(addr+off)); err != nil {
			return 0, err
		}
	}
	return time.Since(start), nil
}

func timeProcMemWrite(exe, dir string, buf []byte) (d time.Duration, err error) {
	t, err := startTarget(exe, dir, "notouch", "notouch")
	if err != nil {
		return 0, err
	}
	defer func() {
		if kerr := t.kill(); kerr != nil && err == nil {
			err = kerr
		}
	}()
	start := time.Now()
	f, err := os.OpenFile(fmt.Sprintf("/proc/%d/mem", t.pid()), os.O_RDWR, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	for off := uint64(0); off < memSize; off += chunk {
		if _, err := f.WriteAt(buf, int64(t.addr+off)); err != nil {
			return 0, err
		}
	}
	d = time.Since(start)
	// Make sure the bytes landed.
	got := make([]byte, pageSize)
	if _, err := f.ReadAt(got, int64(t.addr+memSize-pageSize)); err != nil {
		return 0, err
	}
	if string(got) != string(buf[chunk-pageSize:]) {
		return 0, fmt.Errorf("pwrite to /proc/%d/mem did not land", t.pid())
	}
	return d, nil
}

// timeFileWrite writes 1 GiB of buf to a new file at path and, with
// sync, fsyncs it.
func timeFileWrite(path string, buf []byte, sync bool) (time.Duration, error) {
	start := time.Now()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	for off := 0; off < memSize; off += chunk {
		if _, err := f.Write(buf); err != nil {
			return 0, err
		}
	}
	if sync {
		if err := f.Sync(); err != nil {
			return 0, err
		}
	}
	if err := f.Close(); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

func timeFileRead(path string, buf []byte) (time.Duration, error) {
	start := time.Now()
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	for off := 0; off < memSize; off += chunk {
		if _, err := io.ReadFull(f, buf); err != nil {
			return 0, err
		}
	}
	return time.Since(start), nil
}
