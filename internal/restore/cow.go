//go:build linux && amd64

package restore

import (
	"bytes"
	"fmt"
	"os"
	"sort"

	vma "github.com/checkpoint-restore/go-criu/v8/crit/images/vma"
	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/image"
	"github.com/ckpt/ckpt/internal/model"
	"github.com/ckpt/ckpt/internal/procfs"
)

// Copy-on-write sharing between a parent and its children. A page that
// a parent and its child have shared since fork (private memory that
// neither wrote since) is one page in the kernel; restored as two
// copies it would double the tree's memory. So every process rebuilds
// its memory before it forks its children (rebuildMemory), and a child
// keeps each private VMA that it inherits from its parent when its own
// dumped VMA is the same (address, size, protection, flags, backing,
// madvise bits): it then writes only the pages whose dumped content
// differs from its parent's and drops (MADV_DONTNEED) those its parent
// has and it had not, so that the others stay shared, as they were. No
// image field is needed: the two images say it all.

// inheritedVMAs returns the dumped VMAs of r that it keeps from its
// parent, as spans, sorted. cur are r's mappings now (a copy of the
// parent's, made by fork).
func (r *restorer) inheritedVMAs(cur []procfs.VMA) ([]span, error) {
	p := r.parent
	if p == nil || r.im.Compat != p.im.Compat {
		return nil, nil
	}
	pv := map[[2]uint64]*vma.VmaEntry{}
	for _, v := range p.im.MM.GetVmas() {
		pv[[2]uint64{v.GetStart(), v.GetEnd()}] = v
	}
	var keep []span
	for _, v := range r.im.MM.GetVmas() {
		s := span{v.GetStart(), v.GetEnd()}
		if w := pv[[2]uint64{s.start, s.end}]; w == nil || !inherits(r.im.Tree, v, w) {
			continue
		}
		if !covered(s, cur) {
			continue // not inherited after all
		}
		keep = append(keep, s)
	}
	return keep, nil
}

// inherits tells whether a child whose dumped VMA is v keeps the VMA w of
// its parent, at the same place, as fork gave it.
func inherits(d *model.Dump, v, w *vma.VmaEntry) bool {
	if !inheritable(v) || !inheritable(w) ||
		v.GetStatus() != w.GetStatus() || v.GetProt() != w.GetProt() || v.GetFlags() != w.GetFlags() ||
		v.GetPgoff() != w.GetPgoff() || v.GetMadv() != w.GetMadv() || v.GetFdflags() != w.GetFdflags() {
		return false
	}
	return v.GetStatus()&image.VMAFilePrivate == 0 || sameFile(d, v.GetShmid(), w.GetShmid())
}

// sameFile tells whether files a and b of the dump are one file: the
// same entry, or regular files of one path that is not an unlinked one
// (each ghost or memfd entry is a file of its own).
func sameFile(d *model.Dump, a, b uint64) bool {
	if a == b {
		return true
	}
	fa, fb := d.Files[uint32(a)], d.Files[uint32(b)]
	if fa.GetReg() == nil || fb.GetReg() == nil {
		return false
	}
	if _, g := d.GhostOf(uint32(a)); g != nil {
		return false
	}
	if _, g := d.GhostOf(uint32(b)); g != nil {
		return false
	}
	return fa.GetReg().GetName() == fb.GetReg().GetName()
}

// inheritable tells whether a dumped VMA is private memory that fork
// passes on as it is: not the vDSO, not shared (mapped again from its
// object), not locked (fork clears VM_LOCKED) and without MADV_DONTFORK
// or MADV_WIPEONFORK.
func inheritable(v *vma.VmaEntry) bool {
	st := v.GetStatus()
	if st&(image.VMAAnonPrivate|image.VMAFilePrivate) == 0 || st&(image.VMAAreaVDSO|image.VMAAreaVVAR|image.VMAAnonShared|image.VMAFileShared) != 0 {
		return false
	}
	if v.GetFlags()&unix.MAP_LOCKED != 0 {
		return false
	}
	return v.GetMadv()&(1<<unix.MADV_DONTFORK|1<<unix.MADV_WIPEONFORK) == 0
}

// covered tells whether s lies within the mappings cur (adjacent ones
// may have been merged).
func covered(s span, cur []procfs.VMA) bool {
	at := s.start
	for _, v := range cur {
		if v.Start <= at && at < v.End {
			at = v.End
			if at >= s.end {
				return true
			}
		}
	}
	return false
}

// pageIndex finds the dumped pages of a process by address.
type pageIndex struct {
	runs []model.PageRun // sorted by Vaddr
	f    *os.File
}

// parentPages opens the parent's pages for the comparison, nil if r
// keeps nothing from it.
func (r *restorer) parentPages() (*pageIndex, error) {
	if len(r.keep) == 0 {
		return nil, nil
	}
	ix := &pageIndex{}
	if _, err := r.parent.im.PageRuns(func(run model.PageRun) error {
		ix.runs = append(ix.runs, run)
		return nil
	}); err != nil {
		return nil, err
	}
	sort.Slice(ix.runs, func(i, j int) bool { return ix.runs[i].Vaddr < ix.runs[j].Vaddr })
	f, err := r.parent.im.OpenPages()
	if err != nil {
		return nil, err
	}
	ix.f = f
	return ix, nil
}

func (ix *pageIndex) close() {
	if ix != nil && ix.f != nil {
		ix.f.Close()
	}
}

// read fills buf with the dumped bytes at addr (page aligned, whole
// pages) and tells for each page whether the image has it.
func (ix *pageIndex) read(addr uint64, buf []byte) ([]bool, error) {
	n := uint64(len(buf)) / x86.PageSize
	have := make([]bool, n)
	end := addr + uint64(len(buf))
	i := sort.Search(len(ix.runs), func(i int) bool {
		r := ix.runs[i]
		return r.Vaddr+r.NrPages*x86.PageSize > addr
	})
	for ; i < len(ix.runs) && ix.runs[i].Vaddr < end; i++ {
		run := ix.runs[i]
		s := max(run.Vaddr, addr)
		e := min(run.Vaddr+run.NrPages*x86.PageSize, end)
		if s >= e {
			continue
		}
		off := run.Off + int64(s-run.Vaddr)
		if err := image.ReadFullAt(ix.f, buf[s-addr:e-addr], off); err != nil {
			return nil, err
		}
		for p := s; p < e; p += x86.PageSize {
			have[(p-addr)/x86.PageSize] = true
		}
	}
	return have, nil
}

// present returns the page ranges within s that the image has.
func (ix *pageIndex) present(s span) []span {
	var out []span
	for _, run := range ix.runs {
		a := max(run.Vaddr, s.start)
		b := min(run.Vaddr+run.NrPages*x86.PageSize, s.end)
		if a < b {
			out = append(out, span{a, b})
		}
	}
	return out
}

// writeInherited writes the child's dumped pages data at addr (in a kept
// VMA) where they differ from the parent's, or where the parent has
// none; equal pages stay shared with the parent.
func (r *restorer) writeInherited(pix *pageIndex, mem interface {
	WriteAt([]byte, uint64) error
}, data []byte, addr uint64, pbuf []byte) (written uint64, err error) {
	pbuf = pbuf[:len(data)]
	have, err := pix.read(addr, pbuf)
	if err != nil {
		return 0, fmt.Errorf("parent's pages at %#x: %w", addr, err)
	}
	// Runs of pages that differ are written at once.
	flush := func(from, to int) error {
		if from == to {
			return nil
		}
		a, b := uint64(from)*x86.PageSize, uint64(to)*x86.PageSize
		written += b - a
		return mem.WriteAt(data[a:b], addr+a)
	}
	start := -1
	for i := range have {
		a := uint64(i) * x86.PageSize
		same := have[i] && bytes.Equal(data[a:a+x86.PageSize], pbuf[a:a+x86.PageSize])
		switch {
		case !same && start < 0:
			start = i
		case same && start >= 0:
			if err := flush(start, i); err != nil {
				return written, err
			}
			start = -1
		}
	}
	if start >= 0 {
		if err := flush(start, len(have)); err != nil {
			return written, err
		}
	}
	return written, nil
}

// dropParentOnly drops, in the kept VMAs, the pages the parent's image
// has and the child's has not: the child had none there (it reads zeros,
// or the file, as after MADV_DONTNEED), not the parent's.
func (r *restorer) dropParentOnly(pix *pageIndex, own []span) error {
	for _, k := range r.keep {
		for _, p := range pix.present(k) {
			for _, d := range subtract(p, own) {
				if _, err := r.inj.Syscall(x86.SysMadvise, d.start, d.end-d.start, unix.MADV_DONTNEED); err != nil {
					return fmt.Errorf("madvise(%#x-%#x, MADV_DONTNEED): %w", d.start, d.end, err)
				}
			}
		}
	}
	return nil
}

// subtract returns the parts of s outside every span of out.
func subtract(s span, out []span) []span {
	parts := []span{s}
	for _, o := range out {
		var next []span
		for _, p := range parts {
			if !overlaps(p, o) {
				next = append(next, p)
				continue
			}
			if p.start < o.start {
				next = append(next, span{p.start, o.start})
			}
			if o.end < p.end {
				next = append(next, span{o.end, p.end})
			}
		}
		parts = next
	}
	return parts
}
