//go:build linux && amd64

package restore

import (
	"strings"
	"testing"

	vmaimg "github.com/checkpoint-restore/go-criu/v8/crit/images/vma"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/image"
	"github.com/ckpt/ckpt/internal/uapi"
)

func hugeVMA(size uint64) *vmaimg.VmaEntry {
	return &vmaimg.VmaEntry{Start: proto.Uint64(0x40000000), End: proto.Uint64(0x40000000 + size),
		Flags: proto.Uint32(unix.MAP_PRIVATE | unix.MAP_ANONYMOUS | unix.MAP_HUGETLB | uapi.MapHugeFlag(size))}
}

// A page size no x86 kernel has (16 GiB) is refused naming it; 2 MiB,
// which every x86_64 kernel with hugetlb offers, is not.
func TestCheckHugetlb(t *testing.T) {
	err := checkHugetlb(hugeVMA(16 << 30))
	if err == nil || !strings.Contains(err.Error(), "16777216 kB pages") || !strings.Contains(err.Error(), "does not offer") {
		t.Errorf("16 GiB pages: %v", err)
	}
	if !isHugetlb(hugeVMA(2<<20)) || isHugetlb(&vmaimg.VmaEntry{Flags: proto.Uint32(unix.MAP_PRIVATE)}) {
		t.Error("isHugetlb")
	}
	if err := checkHugetlb(hugeVMA(2 << 20)); err != nil {
		t.Logf("2 MiB pages (this kernel may have no hugetlb): %v", err)
	}
	// CRIU's shared MAP_HUGETLB area, a hugetlb memfd's mapping, is
	// restored as one; a hugetlbfs file's is refused by name.
	memfd := hugeVMA(2 << 20)
	memfd.Status = proto.Uint32(image.VMAAreaRegular | image.VMAFileShared | image.VMAAreaMemfd)
	if err := checkHugetlb(memfd); err != nil {
		t.Errorf("a hugetlb memfd area: %v", err)
	}
	file := hugeVMA(2 << 20)
	file.Status = proto.Uint32(image.VMAAreaRegular | image.VMAFileShared)
	if err := checkHugetlb(file); err == nil || !strings.Contains(err.Error(), "hugetlbfs") {
		t.Errorf("a hugetlbfs file area: %v", err)
	}
	err = hugetlbMapError(hugeVMA(2<<20), unix.ENOMEM)
	if err == nil || !strings.Contains(err.Error(), "hugepages-2048kB/nr_hugepages") {
		t.Errorf("ENOMEM: %v", err)
	}
}
