//go:build linux && amd64

package restore

import (
	"encoding/binary"
	"fmt"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	criucore "github.com/checkpoint-restore/go-criu/v8/crit/images/criu-core"
	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/fault"
	"github.com/ckpt/ckpt/internal/image"
	"github.com/ckpt/ckpt/internal/model"
	"github.com/ckpt/ckpt/internal/procfs"
	"github.com/ckpt/ckpt/internal/vdso"
)

// mapVDSO maps this kernel's vDSO for the task's ABI where the dumped one
// was, and checks that the layout (vvar pages and vdso) is the same.
func (r *restorer) mapVDSO() error {
	var want []span
	var vdsoSpan span
	for _, v := range r.im.MM.GetVmas() {
		st := v.GetStatus()
		if st&(image.VMAAreaVDSO|image.VMAAreaVVAR) == 0 {
			continue
		}
		want = append(want, span{v.GetStart(), v.GetEnd()})
		if st&image.VMAAreaVDSO != 0 {
			vdsoSpan = span{v.GetStart(), v.GetEnd()}
		}
	}
	if len(want) == 0 {
		return nil
	}
	sort.Slice(want, func(i, j int) bool { return want[i].start < want[j].start })
	code := uint64(x86.ArchMapVDSO64)
	if r.im.Compat {
		code = x86.ArchMapVDSO32
	}
	if _, err := r.inj.Syscall(x86.SysArchPrctl, code, want[0].start); err != nil {
		return fmt.Errorf("arch_prctl(ARCH_MAP_VDSO, %#x): %w", want[0].start, err)
	}
	cur, err := procfs.ReadMaps(r.pid)
	if err != nil {
		return err
	}
	var got []span
	var gotVDSO span
	var names []string
	for _, v := range cur {
		switch v.Path {
		case "[vdso]":
			gotVDSO = span{v.Start, v.End}
			fallthrough
		case "[vvar]", "[vvar_vclock]":
			got = append(got, span{v.Start, v.End})
			names = append(names, fmt.Sprintf("%s %#x-%#x", v.Path, v.Start, v.End))
		}
	}
	same := len(got) == len(want) && gotVDSO == vdsoSpan
	for i := 0; same && i < len(got); i++ {
		same = got[i] == want[i]
	}
	var w []string
	for _, s := range want {
		w = append(w, fmt.Sprintf("%#x-%#x", s.start, s.end))
	}
	layout := fmt.Sprintf("dumped %s with vdso %#x-%#x; this kernel mapped %s", strings.Join(w, " "), vdsoSpan.start, vdsoSpan.end, strings.Join(names, " "))
	dumped, err := r.im.DumpedRange(vdsoSpan.start, vdsoSpan.end)
	if err != nil {
		if !same {
			return fmt.Errorf("the vDSO of this kernel does not fit the dumped layout (%s), and the dump holds no vDSO image to build trampolines from: %w", layout, err)
		}
		r.opts.logf("restore %d: vDSO: same layout (%s); no dumped image to compare (%v)", r.pid, layout, err)
		return nil
	}
	old, err := vdso.Parse(dumped)
	if err != nil {
		return fmt.Errorf("dumped vDSO: %w", err)
	}
	forced := fault.On(fault.VDSOTrampolines)
	if same && !forced {
		kb, err := r.readTask(gotVDSO.start, gotVDSO.end)
		if err != nil {
			return fmt.Errorf("read this kernel's vDSO: %w", err)
		}
		kern, err := vdso.Parse(kb)
		if err != nil {
			return fmt.Errorf("this kernel's vDSO: %w", err)
		}
		if vdso.Same(old, kern) {
			r.opts.logf("restore %d: vDSO: same as dumped (%d bytes, %d symbols), mapped at the dumped address", r.pid, old.Size, len(old.Symbols))
			return nil
		}
	}
	r.opts.logf("restore %d: vDSO: trampolines (%s; forced by CKPT_FAULT: %v)", r.pid, layout, forced)
	return r.vdsoTrampolines(old, dumped, vdsoSpan, got)
}

// readTask reads memory of the task being restored.
func (r *restorer) readTask(start, end uint64) ([]byte, error) {
	mem, err := r.memory()
	if err != nil {
		return nil, err
	}
	b := make([]byte, end-start)
	return b, mem.ReadAt(b, start)
}

// vdsoTrampolines maps this kernel's vDSO at a free address and puts, at
// the dumped vDSO's address, a copy of the dumped image whose exported
// entry points jump to the same symbols of the new one. The dumped vvar
// pages are left unmapped: only the old code could read them, and every
// entry point now leaves it at once.
func (r *restorer) vdsoTrampolines(old *vdso.Image, oldBytes []byte, oldVDSO span, mapped []span) error {
	for _, m := range mapped {
		if _, err := r.inj.Syscall(x86.SysMunmap, m.start, m.end-m.start); err != nil {
			return fmt.Errorf("munmap %#x-%#x: %w", m.start, m.end, err)
		}
	}
	size := mapped[len(mapped)-1].end - mapped[0].start
	addr, err := r.freeRange(size, oldVDSO.start)
	if err != nil {
		return err
	}
	code := uint64(x86.ArchMapVDSO64)
	if r.im.Compat {
		code = x86.ArchMapVDSO32
	}
	if _, err := r.inj.Syscall(x86.SysArchPrctl, code, addr); err != nil {
		return fmt.Errorf("arch_prctl(ARCH_MAP_VDSO, %#x): %w", addr, err)
	}
	cur, err := procfs.ReadMaps(r.pid)
	if err != nil {
		return err
	}
	var nv span
	for _, v := range cur {
		if v.Path == "[vdso]" {
			nv = span{v.Start, v.End}
		}
	}
	if nv.start == 0 {
		return fmt.Errorf("no [vdso] after arch_prctl(ARCH_MAP_VDSO)")
	}
	kb, err := r.readTask(nv.start, nv.end)
	if err != nil {
		return fmt.Errorf("read this kernel's vDSO: %w", err)
	}
	kern, err := vdso.Parse(kb)
	if err != nil {
		return fmt.Errorf("this kernel's vDSO: %w", err)
	}
	for _, n := range fault.Values(fault.VDSODrop) {
		// Pretend this kernel's vDSO lacks the symbol.
		delete(kern.Symbols, n)
	}
	patches, missing := vdso.Trampolines(old, kern, oldVDSO.start, nv.start)
	img := append([]byte(nil), oldBytes...)
	// Aliases share an entry: name them together.
	byEntry := map[uint64][]string{}
	var entries []uint64
	for _, name := range missing {
		off := old.Symbols[name]
		if byEntry[off] == nil {
			entries = append(entries, off)
		}
		byEntry[off] = append(byEntry[off], name)
	}
	for _, off := range entries {
		names := strings.Join(byEntry[off], "/")
		entry := oldVDSO.start + off
		where, err := referenceTo(r.im, entry, old, oldVDSO)
		if err != nil {
			return fmt.Errorf("look for references to the vDSO's %s: %w", names, err)
		}
		if where != "" {
			return fmt.Errorf("the vDSO of this kernel has no %s, which the dumped task's vDSO exported at %#x and the task refers to (%s): restore it on a kernel whose vDSO has it", names, entry, where)
		}
		copy(img[off:], vdso.Trap)
		r.opts.logf("restore %d: vDSO: this kernel's vDSO has no %s; nothing in the task refers to it, so its entry traps and the symbol is hidden", r.pid, names)
	}
	if len(missing) > 0 {
		if err := vdso.HideSymbols(img, missing); err != nil {
			return err
		}
	}
	n := oldVDSO.end - oldVDSO.start
	if _, err := r.inj.Syscall(x86.SysMmap, oldVDSO.start, n, unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_FIXED_NOREPLACE, ^uint64(0), 0); err != nil {
		return fmt.Errorf("map the vDSO proxy at %#x: %w", oldVDSO.start, err)
	}
	for _, p := range patches {
		copy(img[p.Off:], p.Code)
	}
	mem, err := r.memory()
	if err != nil {
		return err
	}
	if err := mem.WriteAt(img, oldVDSO.start); err != nil {
		return err
	}
	if _, err := r.inj.Syscall(x86.SysMprotect, oldVDSO.start, n, unix.PROT_READ|unix.PROT_EXEC); err != nil {
		return fmt.Errorf("mprotect the vDSO proxy: %w", err)
	}
	r.opts.logf("restore %d: vDSO proxy at %#x-%#x, %d entry points jump to the vDSO at %#x", r.pid, oldVDSO.start, oldVDSO.end, len(patches), nv.start)
	return nil
}

// freeRange finds size bytes that no dumped VMA of the tree, no current
// mapping and not the scratch area use, as close above near as possible
// (for the vDSO: a rel32 jump reaches it), below 4 GiB for an ia32 task.
func (r *restorer) freeRange(size, near uint64) (uint64, error) {
	cur, err := procfs.ReadMaps(r.pid)
	if err != nil {
		return 0, err
	}
	used := append([]span(nil), r.avoid...)
	for _, v := range cur {
		used = append(used, span{v.Start, v.End})
	}
	used = append(used, span{r.scratch, r.scratch + scratchPages*x86.PageSize})
	sort.Slice(used, func(i, j int) bool { return used[i].start < used[j].start })
	limit := uint64(0x7ffffffff000)
	if r.im.Compat {
		limit = x86.IA32PageOffset // TASK_SIZE of an ia32 helper's mm
	}
	for _, base := range []uint64{near, mmapMinAddr} {
		cand := (base + x86.PageSize - 1) &^ (x86.PageSize - 1)
		for _, u := range used {
			if overlaps(span{cand, cand + size}, u) {
				cand = (u.end + x86.PageSize - 1) &^ (x86.PageSize - 1)
			}
		}
		if cand+size <= limit {
			return cand, nil
		}
	}
	return 0, fmt.Errorf("no free range of %d bytes", size)
}

// referenceTo tells whether the dumped task could still reach the vDSO
// entry at addr: a thread register holding it, a thread running in that
// function of the old vDSO, or a pointer to it (a word, 4 bytes for an
// ia32 task, 8 otherwise) in any dumped page outside the vDSO. Pages
// never written since they were mapped from a file are not in the dump,
// and cannot hold a pointer into a vDSO placed at random at exec. It
// returns where it found one, or "".
func referenceTo(im *model.Process, addr uint64, old *vdso.Image, v span) (string, error) {
	cores := append([]*criucore.CoreEntry{im.Core}, im.Threads...)
	tids := append([]int{im.Pid}, im.Tids...)
	// The function holding addr ends at the next exported entry.
	end := v.end
	for _, off := range old.Symbols {
		if e := v.start + off; e > addr && e < end {
			end = e
		}
	}
	for i, c := range cores {
		g := c.GetThreadInfo().GetGpregs()
		if g == nil {
			continue
		}
		if ip := g.GetIp(); ip >= addr && ip < end {
			return fmt.Sprintf("thread %d runs in it", tids[i]), nil
		}
		for _, r := range []uint64{g.GetAx(), g.GetBx(), g.GetCx(), g.GetDx(), g.GetSi(), g.GetDi(), g.GetBp(), g.GetSp(),
			g.GetR8(), g.GetR9(), g.GetR10(), g.GetR11(), g.GetR12(), g.GetR13(), g.GetR14(), g.GetR15()} {
			if r == addr {
				return fmt.Sprintf("a register of thread %d", tids[i]), nil
			}
		}
	}
	word := 8
	if im.Compat {
		word = 4
	}
	pf, err := im.OpenPages()
	if err != nil {
		return "", err
	}
	defer pf.Close()
	buf := make([]byte, 1<<20)
	found := ""
	_, err = im.PageRuns(func(run model.PageRun) error {
		start, n, off := run.Vaddr, run.NrPages, run.Off
		size := n * x86.PageSize
		for done := uint64(0); done < size && found == ""; {
			chunk := min(uint64(len(buf)), size-done)
			at := start + done
			if err := image.ReadFullAt(pf, buf[:chunk], off+int64(done)); err != nil {
				return err
			}
			for i := uint64(0); i+uint64(word) <= chunk; i += uint64(word) {
				var w uint64
				if word == 4 {
					w = uint64(binary.LittleEndian.Uint32(buf[i:]))
				} else {
					w = binary.LittleEndian.Uint64(buf[i:])
				}
				// The vDSO's own pages refer to themselves.
				if w == addr && (at+i < v.start || at+i >= v.end) {
					found = fmt.Sprintf("a pointer at %#x", at+i)
					break
				}
			}
			done += chunk
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return found, nil
}
