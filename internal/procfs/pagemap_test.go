package procfs

import (
	"os"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

func TestPagemapEntryBits(t *testing.T) {
	tests := []struct {
		e                                       PagemapEntry
		present, swapped, file, excl, softDirty bool
		pfn                                     uint64
	}{
		{0, false, false, false, false, false, 0},
		{1<<63 | 1<<56 | 0x1234, true, false, false, true, false, 0x1234},
		{1<<63 | 1<<61 | 1<<55, true, false, true, false, true, 0},
		{1<<62 | 0x7fffffffffffff, false, true, false, false, false, 1<<55 - 1},
		{^PagemapEntry(0), true, true, true, true, true, 1<<55 - 1},
	}
	for _, tt := range tests {
		if tt.e.Present() != tt.present || tt.e.Swapped() != tt.swapped || tt.e.FileOrShared() != tt.file ||
			tt.e.Exclusive() != tt.excl || tt.e.SoftDirty() != tt.softDirty || tt.e.PFN() != tt.pfn {
			t.Errorf("%#x: present=%v swapped=%v file=%v excl=%v sd=%v pfn=%#x", uint64(tt.e),
				tt.e.Present(), tt.e.Swapped(), tt.e.FileOrShared(), tt.e.Exclusive(), tt.e.SoftDirty(), tt.e.PFN())
		}
	}
}

// TestPresentPagesSelf maps fresh anonymous memory, touches some pages and
// checks that exactly those read as present in our own pagemap.
func TestPresentPagesSelf(t *testing.T) {
	const npages = 3*pagemapChunk + 17 // spans several chunks
	mem, err := unix.Mmap(-1, 0, npages*PageSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mem)
	touched := map[int]bool{0: true, 1: true, pagemapChunk - 1: true, pagemapChunk: true, 2*pagemapChunk + 5: true, npages - 1: true}
	for p := range touched {
		mem[p*PageSize] = 1
	}
	f, err := OpenPagemap(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	start := uint64(uintptr(unsafe.Pointer(&mem[0])))
	got, err := PresentPages(f, start, start+npages*PageSize)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != npages {
		t.Fatalf("got %d pages, want %d", len(got), npages)
	}
	for i, p := range got {
		if p != touched[i] {
			t.Errorf("page %d: present=%v, want %v", i, p, touched[i])
		}
	}

	// A sub-range starting mid-mapping.
	sub, err := PresentPages(f, start+PageSize, start+3*PageSize)
	if err != nil {
		t.Fatal(err)
	}
	if len(sub) != 2 || !sub[0] || sub[1] {
		t.Errorf("sub-range: %v", sub)
	}

	// Empty range.
	if e, err := PresentPages(f, start, start); err != nil || len(e) != 0 {
		t.Errorf("empty range: %v, %v", e, err)
	}
}

func TestPresentPagesErrors(t *testing.T) {
	f, err := OpenPagemap(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := PresentPages(f, 0x1001, 0x3000); err == nil {
		t.Error("unaligned start accepted")
	}
	if _, err := PresentPages(f, 0x1000, 0x3001); err == nil {
		t.Error("unaligned end accepted")
	}
	if _, err := PresentPages(f, 0x3000, 0x1000); err == nil {
		t.Error("inverted range accepted")
	}
	// The vsyscall page lies above TASK_SIZE, where pagemap reads EOF.
	if _, err := PresentPages(f, 0xffffffffff600000, 0xffffffffff601000); err == nil {
		t.Error("read above TASK_SIZE succeeded")
	}
}
