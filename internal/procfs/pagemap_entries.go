//go:build linux && amd64

package procfs

import (
	"encoding/binary"
	"fmt"
	"os"
)

// PagemapEntries returns the raw pagemap entry of every page in
// [start,end), reading /proc/PID/pagemap (open as pagemap) in 64 KiB
// chunks. Callers that need more than "present or swapped" (for example
// whether a page of a private file mapping was copied on write) use this.
func PagemapEntries(pagemap *os.File, start, end uint64) ([]PagemapEntry, error) {
	if start%PageSize != 0 || end%PageSize != 0 || start > end {
		return nil, fmt.Errorf("pagemap: bad range %#x-%#x", start, end)
	}
	n := (end - start) / PageSize
	out := make([]PagemapEntry, n)
	buf := make([]byte, 8*min(n, pagemapChunk))
	for done := uint64(0); done < n; {
		cnt := min(n-done, pagemapChunk)
		b := buf[:8*cnt]
		off := int64((start/PageSize + done) * 8)
		got, err := pagemap.ReadAt(b, off)
		if got != len(b) {
			if err == nil {
				err = fmt.Errorf("short read")
			}
			return nil, fmt.Errorf("read %s at offset %#x (address %#x): %w", pagemap.Name(), off, start+done*PageSize, err)
		}
		for i := uint64(0); i < cnt; i++ {
			out[done+i] = PagemapEntry(binary.LittleEndian.Uint64(b[8*i:]))
		}
		done += cnt
	}
	return out, nil
}
