//go:build linux && amd64

package uapi

import (
	"testing"
	"unsafe"
)

// The PAGEMAP_SCAN and UFFDIO_WRITEPROTECT numbers, from their struct
// sizes (_IOWR: dir 3, size, type, nr).
func TestPagemapScanIoctls(t *testing.T) {
	if n := unsafe.Sizeof(PmScanArg{}); n != 96 {
		t.Errorf("struct pm_scan_arg: %d bytes, want 96", n)
	}
	if n := unsafe.Sizeof(PageRegion{}); n != 24 {
		t.Errorf("struct page_region: %d bytes, want 24", n)
	}
	if want := uint32(3<<30 | 96<<16 | 'f'<<8 | 16); PAGEMAP_SCAN != want {
		t.Errorf("PAGEMAP_SCAN %#x, want %#x", PAGEMAP_SCAN, want)
	}
	if UFFDIO_WRITEPROTECT != 0xC018AA06 {
		t.Errorf("UFFDIO_WRITEPROTECT %#x", UFFDIO_WRITEPROTECT)
	}
}
