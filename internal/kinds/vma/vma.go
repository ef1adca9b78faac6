//go:build linux && amd64

// Package vma is the table of the memory areas (VMAs) ckpt knows: each
// kind by the path /proc/PID/smaps shows for it, and each VmFlags token,
// with how the dump saves it or why it is refused. An area that no kind
// matches, or that has a VmFlags token the table does not list, is
// refused: a kernel newer than the table may add a kind of memory whose
// restore would silently differ.
package vma

import (
	"fmt"
	"slices"
	"strings"

	"github.com/ckpt/ckpt/internal/ckerr"
	"github.com/ckpt/ckpt/internal/procfs"
)

// Class is what the dump does with an area of a kind it supports.
type Class int

const (
	// Skip areas are not dumped: the kernel gives every task one.
	Skip Class = iota
	// VDSO is the vDSO's code, saved whole.
	VDSO
	// VVAR is the vDSO's data, made anew by the kernel.
	VVAR
	// AnonPrivate is private anonymous memory, its pages saved.
	AnonPrivate
	// AnonShared is MAP_SHARED|MAP_ANONYMOUS memory (a shmem object),
	// its content saved once per object.
	AnonShared
	// File maps a file, private (pages written since saved) or shared.
	File
	// Memfd maps a memfd: its contents are saved once per memfd, and
	// for a private mapping the pages written since.
	Memfd
	// SysVShm is a SysV shared memory segment attached with shmat: the
	// segment is saved with its IPC namespace, the area attaches it
	// again at restore.
	SysVShm
	// Hugetlb is anonymous hugetlb memory (MAP_HUGETLB, /anon_hugepage):
	// private, its pages saved; shared, its content saved once per
	// object. It is mapped again with the same page size.
	Hugetlb
	// AIORing is the ring of an AIO context (io_setup): its pages are
	// saved, and the restore makes a context anew and moves its ring
	// to the dumped address, which is the context's id.
	AIORing
)

// Kind is one kind of memory area.
type Kind struct {
	// Name says what the area is, in refusals and in tests.
	Name string
	// Class is how the dump saves it; unused when Refuse is set.
	Class Class
	// Refuse, if set, is why the dump refuses the area and what to do.
	Refuse string
	// Owns lists VmFlags tokens that the flag table refuses but that
	// are part of this kind (the vDSO data is device-like memory).
	Owns  []string
	match func(v procfs.VMA) bool
}

// deleted is d_path's mark of an unlinked file (fs/d_path.c).
const deleted = " (deleted)"

func path(p string) func(procfs.VMA) bool {
	return func(v procfs.VMA) bool { return v.Path == p }
}

func deletedWithPrefix(prefix string) func(procfs.VMA) bool {
	return func(v procfs.VMA) bool {
		return strings.HasPrefix(v.Path, prefix) && strings.HasSuffix(v.Path, deleted)
	}
}

// Kinds is the table, tried in order: the first kind that matches an
// area is its kind. Paths are those of show_map_vma in fs/proc/task_mmu.c
// and of the special mappings' names (arch/x86/entry/vdso, mm/shmem.c,
// ipc/shm.c, fs/aio.c, kernel/events/uprobes.c).
var Kinds = []Kind{
	{Name: "[vsyscall]", Class: Skip, match: path("[vsyscall]")},
	{Name: "[vdso]", Class: VDSO, Owns: []string{"de"}, match: path("[vdso]")},
	{Name: "[vvar]", Class: VVAR, Owns: []string{"pf", "io", "de"}, match: func(v procfs.VMA) bool {
		return v.Path == "[vvar]" || v.Path == "[vvar_vclock]"
	}},
	{Name: "[uprobes]", match: path("[uprobes]"),
		Refuse: "the uprobes area of a probed program cannot be dumped: remove the uprobes (perf probe, bpftrace) first"},
	// The ring is a driver-like mapping (VM_DONTEXPAND) of fs/aio.c.
	{Name: "AIO ring", Class: AIORing, Owns: []string{"de"}, match: path("/[aio]" + deleted)},
	{Name: "io_uring rings", match: path("anon_inode:[io_uring]"),
		Refuse: "an io_uring cannot be dumped (no kernel interface restores its rings, registered files and buffers, or requests in flight): dump the task when it has closed the io_uring"},
	{Name: "SysV shared memory", Class: SysVShm, match: deletedWithPrefix("/SYSV")},
	// hugetlb_file_setup names the object of a MAP_HUGETLB mapping.
	// hugetlbfs sets VM_DONTEXPAND on its mappings.
	{Name: "hugetlb memory", Class: Hugetlb, Owns: []string{"ht", "de"}, match: func(v procfs.VMA) bool {
		return v.Path == "/anon_hugepage"+deleted
	}},
	// A memfd of huge pages (MFD_HUGETLB) is a hugetlbfs file: ht and
	// de as for anonymous hugetlb memory; a private mapping of one is
	// refused by Classify.
	{Name: "memfd mapping", Class: Memfd, Owns: []string{"ht", "de"}, match: deletedWithPrefix("/memfd:")},
	{Name: "shared anonymous memory", Class: AnonShared, match: func(v procfs.VMA) bool {
		return v.Shared && (v.Path == "/dev/zero"+deleted || strings.HasPrefix(v.Path, "[anon_shmem:"))
	}},
	{Name: "private anonymous memory", Class: AnonPrivate, match: func(v procfs.VMA) bool {
		// [anon:NAME] is a name given with PR_SET_VMA_ANON_NAME; the
		// image format has no field for it, so the restored area is
		// nameless.
		return !v.Shared && v.Inode == 0 && (v.Path == "" || v.Path == "[heap]" || v.Path == "[stack]" || strings.HasPrefix(v.Path, "[anon:"))
	}},
	// An unlinked file is saved whole by the dump (a ghost file) up to
	// --ghost-limit; the dump refuses a larger one.
	{Name: "deleted file", Class: File, match: func(v procfs.VMA) bool { return strings.HasPrefix(v.Path, "/") && v.Deleted() }},
	{Name: "file", Class: File, match: func(v procfs.VMA) bool { return strings.HasPrefix(v.Path, "/") && v.Inode != 0 }},
}

// Flag is one VmFlags token of smaps.
type Flag struct {
	// Meaning says what the kernel flag is.
	Meaning string
	// Refuse, if set, is why an area with this flag is refused.
	Refuse string
}

// Flags lists the VmFlags tokens of x86_64 kernels up to 6.18
// (show_smap_vma_flags in fs/proc/task_mmu.c, Documentation/filesystems/
// proc.rst). The ones not refused are either what the dumped prot, flags
// and madvise bits restore, or kernel bookkeeping that a fresh mapping
// gets again by itself.
var Flags = map[string]Flag{
	"rd": {Meaning: "readable"},
	"wr": {Meaning: "writable"},
	"ex": {Meaning: "executable"},
	"sh": {Meaning: "shared"},
	"mr": {Meaning: "may read"},
	"mw": {Meaning: "may write"},
	"me": {Meaning: "may execute"},
	"ms": {Meaning: "may share"},
	"gd": {Meaning: "stack segment grows down (MAP_GROWSDOWN)"},
	"pf": {Meaning: "pure PFN range", Refuse: "device memory (VM_PFNMAP) cannot be dumped"},
	"dw": {Meaning: "disabled write to the mapped file (kernels before 5.15)"},
	"lo": {Meaning: "pages locked in memory (MAP_LOCKED)"},
	"io": {Meaning: "memory-mapped I/O", Refuse: "memory-mapped I/O (VM_IO) cannot be dumped"},
	"sr": {Meaning: "sequential read advised (MADV_SEQUENTIAL)"},
	"rr": {Meaning: "random read advised (MADV_RANDOM)"},
	"dc": {Meaning: "not copied on fork (MADV_DONTFORK)"},
	"de": {Meaning: "not expanded on remap", Refuse: "a driver's mapping (VM_DONTEXPAND) cannot be dumped"},
	"ac": {Meaning: "accounted"},
	"nr": {Meaning: "swap space not reserved (MAP_NORESERVE)"},
	"ht": {Meaning: "hugetlb", Refuse: "a mapping of a hugetlbfs file cannot be dumped yet (anonymous MAP_HUGETLB memory and shared mappings of MFD_HUGETLB memfds can)"},
	"sf": {Meaning: "synchronous page faults (MAP_SYNC on DAX)", Refuse: "a MAP_SYNC mapping of a DAX file cannot be dumped yet"},
	"ar": {Meaning: "architecture-specific (x86: VM_PAT, device memory)", Refuse: "device memory with a page attribute (VM_PAT) cannot be dumped"},
	"wf": {Meaning: "wiped on fork (MADV_WIPEONFORK)"},
	"dd": {Meaning: "left out of core dumps (MADV_DONTDUMP)"},
	"sd": {Meaning: "soft-dirty (a restored area starts all dirty)"},
	"mm": {Meaning: "mixed map", Refuse: "device memory (VM_MIXEDMAP) cannot be dumped"},
	"hg": {Meaning: "huge pages advised (MADV_HUGEPAGE)"},
	"nh": {Meaning: "no huge pages advised (MADV_NOHUGEPAGE)"},
	"mg": {Meaning: "mergeable (MADV_MERGEABLE)"},
	"um": {Meaning: "userfaultfd missing-page tracking", Refuse: "memory registered with userfaultfd cannot be dumped yet"},
	"uw": {Meaning: "userfaultfd write-protect tracking", Refuse: "memory registered with userfaultfd cannot be dumped yet (if a ckpt pre-dump tracks the task's writes, dump it with --prev-images-dir and --track-mem, or stop that pre-dump's holder, ckpt __track-holder, first)"},
	"ui": {Meaning: "userfaultfd minor-fault tracking", Refuse: "memory registered with userfaultfd cannot be dumped yet"},
	"ur": {Meaning: "userfaultfd read-write-protect tracking", Refuse: "memory registered with userfaultfd cannot be dumped yet"},
	"ss": {Meaning: "shadow stack", Refuse: "a CET shadow stack cannot be dumped yet"},
	"sl": {Meaning: "sealed (mseal)", Refuse: "memory sealed with mseal cannot be dumped yet"},
	"lf": {Meaning: "locked on fault (MLOCK_ONFAULT)", Refuse: "the image format has no flag for memory locked on fault (mlock2 MLOCK_ONFAULT): not supported yet"},
	"dp": {Meaning: "droppable (MAP_DROPPABLE)"},
	"gu": {Meaning: "may hold guard regions (MADV_GUARD_INSTALL)", Refuse: "guard regions (MADV_GUARD_INSTALL) cannot be dumped yet: a restore would turn them into ordinary memory"},
}

// Classify returns the kind of the area se of task pid, or an
// *ckerr.UnsupportedError naming the area and the reason it is refused.
func Classify(pid int, se procfs.SmapsEntry) (*Kind, error) {
	v := se.VMA
	object := fmt.Sprintf("vma %#x-%#x", v.Start, v.End)
	if v.Path != "" {
		object += " " + v.Path
	}
	var k *Kind
	for i := range Kinds {
		if Kinds[i].match(v) {
			k = &Kinds[i]
			break
		}
	}
	if k == nil {
		what := "an area of a kind ckpt does not know"
		if v.Shared && v.Inode == 0 {
			what = "shared memory of a kind ckpt does not know"
		}
		return nil, ckerr.Unsupported(pid, object, what+": it cannot be dumped")
	}
	if k.Refuse != "" {
		return nil, ckerr.Unsupported(pid, object+" ("+k.Name+")", k.Refuse)
	}
	if k.Class == Skip {
		return k, nil
	}
	for _, tok := range se.Flags {
		f, ok := Flags[tok]
		if !ok {
			return nil, ckerr.Unsupported(pid, object, fmt.Sprintf("VmFlags %q is a kernel flag ckpt does not know: it cannot be dumped (a newer ckpt may)", tok))
		}
		if f.Refuse != "" && !slices.Contains(k.Owns, tok) {
			return nil, ckerr.Unsupported(pid, fmt.Sprintf("%s (%s, VmFlags %s)", object, f.Meaning, tok), f.Refuse)
		}
	}
	if k.Class == Memfd && !v.Shared && slices.Contains(se.Flags, "ht") {
		return nil, ckerr.Unsupported(pid, object+" ("+k.Name+")", "a private mapping of a memfd of huge pages (MFD_HUGETLB) cannot be dumped yet; a shared one can")
	}
	if se.ProtectionKey != 0 {
		return nil, ckerr.Unsupported(pid, object, fmt.Sprintf("memory protection key %d (pkey_mprotect) cannot be dumped yet", se.ProtectionKey))
	}
	return k, nil
}
