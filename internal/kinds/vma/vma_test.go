//go:build linux && amd64

package vma

import (
	"errors"
	"strings"
	"testing"

	"github.com/ckpt/ckpt/internal/ckerr"
	"github.com/ckpt/ckpt/internal/procfs"
)

func area(path string, shared bool, inode uint64, flags ...string) procfs.SmapsEntry {
	return procfs.SmapsEntry{
		VMA:   procfs.VMA{Start: 0x10000, End: 0x20000, Read: true, Shared: shared, Inode: inode, Path: path},
		Flags: append([]string{"rd", "mr", "mw", "me"}, flags...),
	}
}

func TestClassifySupported(t *testing.T) {
	for _, c := range []struct {
		se    procfs.SmapsEntry
		class Class
	}{
		{area("[vsyscall]", false, 0, "pf", "zz"), Skip},
		{area("[vdso]", false, 0, "de"), VDSO},
		{area("[vvar]", false, 0, "pf", "io", "de", "dd"), VVAR},
		{area("[vvar_vclock]", false, 0, "pf", "io", "de"), VVAR},
		{area("", false, 0, "ac"), AnonPrivate},
		{area("[heap]", false, 0, "ac"), AnonPrivate},
		{area("[stack]", false, 0, "gd", "ac"), AnonPrivate},
		{area("[anon:buffers]", false, 0), AnonPrivate},
		{area("", false, 0, "dp", "lo", "wf", "dd", "hg", "mg", "sd"), AnonPrivate},
		{area("/dev/zero (deleted)", true, 7, "sh", "ms"), AnonShared},
		{area("[anon_shmem:ring]", true, 7, "sh", "ms"), AnonShared},
		{area("/usr/lib/libc.so.6", false, 99), File},
		{area("/srv/data file", true, 99, "sh", "ms", "wr"), File},
		{area("/tmp/gone (deleted)", false, 4), File},
		{area("/memfd:pool (deleted)", true, 4, "sh", "ms"), Memfd},
		{area("/memfd:huge (deleted)", true, 4, "sh", "ms", "ht", "de"), Memfd},
		{area("/SYSV00001234 (deleted)", true, 4, "sh", "ms"), SysVShm},
		{area("/anon_hugepage (deleted)", false, 4, "ht", "de"), Hugetlb},
		{area("/anon_hugepage (deleted)", true, 4, "sh", "ms", "ht"), Hugetlb},
		{area("/[aio] (deleted)", true, 4, "sh", "ms", "de"), AIORing},
	} {
		k, err := Classify(1, c.se)
		if err != nil {
			t.Errorf("%q %v: %v", c.se.VMA.Path, c.se.Flags, err)
			continue
		}
		if k.Class != c.class {
			t.Errorf("%q: class %d, want %d", c.se.VMA.Path, k.Class, c.class)
		}
	}
}

func TestClassifyRefused(t *testing.T) {
	for _, c := range []struct {
		se   procfs.SmapsEntry
		want string
	}{
		// Kinds ckpt does not know: a new special mapping, shared memory
		// without a shmem path, a path that is not absolute, a flag.
		{area("[newthing]", false, 0), "kind ckpt does not know"},
		{area("", true, 0, "sh"), "shared memory of a kind ckpt does not know"},
		{area("anon_inode:[newring]", true, 5), "kind ckpt does not know"},
		{area("", false, 0, "zz"), `VmFlags "zz"`},
		// Kinds the table refuses by name.
		{area("[uprobes]", false, 0), "uprobes"},
		{area("anon_inode:[io_uring]", true, 5), "io_uring"},
		// hugetlb memory other than MAP_HUGETLB's and a shared mapping
		// of a MFD_HUGETLB memfd: a hugetlbfs file, a private mapping of
		// such a memfd.
		{area("/dev/hugepages/buf", true, 4, "sh", "ht"), "hugetlbfs file"},
		{area("/memfd:huge (deleted)", false, 4, "ht"), "private mapping of a memfd of huge pages"},
		// Flags the table refuses, on an area of a supported kind.
		{area("", false, 0, "um"), "userfaultfd"},
		{area("", false, 0, "ss"), "shadow stack"},
		{area("", false, 0, "sl"), "mseal"},
		{area("", false, 0, "lf"), "locked on fault"},
		{area("", false, 0, "gu"), "guard regions"},
		{area("/dev/fb0", true, 4, "pf", "io"), "VM_PFNMAP"},
		{area("", false, 0, "de"), "VM_DONTEXPAND"},
	} {
		_, err := Classify(42, c.se)
		if err == nil {
			t.Errorf("%q %v: not refused", c.se.VMA.Path, c.se.Flags)
			continue
		}
		var ue *ckerr.UnsupportedError
		if !errors.As(err, &ue) || ue.Task != 42 {
			t.Errorf("%q: %v is not an UnsupportedError of task 42", c.se.VMA.Path, err)
		}
		if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "0x10000-0x20000") {
			t.Errorf("%q: %q does not name the area and %q", c.se.VMA.Path, err, c.want)
		}
	}
}

func TestClassifyProtectionKey(t *testing.T) {
	se := area("", false, 0)
	se.ProtectionKey = 3
	if _, err := Classify(1, se); err == nil || !strings.Contains(err.Error(), "protection key 3") {
		t.Fatalf("area with pkey 3: %v", err)
	}
}

// Every flag the table refuses is refused on an ordinary area, and every
// other flag is accepted: the table and Classify agree.
func TestFlagTable(t *testing.T) {
	for tok, f := range Flags {
		_, err := Classify(1, area("", false, 0, tok))
		if (err != nil) != (f.Refuse != "") {
			t.Errorf("flag %s (%s): err %v, refuse %q", tok, f.Meaning, err, f.Refuse)
		}
	}
}
