package restore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/pagemap"
	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/image"
	"github.com/ckpt/ckpt/internal/inject"
	"github.com/ckpt/ckpt/internal/procfs"
	"github.com/ckpt/ckpt/internal/ptrace"
	"github.com/ckpt/ckpt/internal/vdso"
)

// cloneArgsSize is CLONE_ARGS_SIZE_VER2 (include/uapi/linux/sched.h):
// flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size,
// tls, set_tid, set_tid_size, cgroup; all u64.
const cloneArgsSize = 88

// cloneTask makes the helper clone3 a child with the dumped PID. The child
// is created with CLONE_PARENT, so it is a child of ckpt, not of the
// helper, and it is traced from its first instruction (PTRACE_O_TRACECLONE).
func (r *restorer) cloneTask() error {
	h := r.helper
	regs, err := ptrace.GetRegs(h)
	if err != nil {
		return fmt.Errorf("helper registers: %w", err)
	}
	args := make([]byte, cloneArgsSize+8)
	le := binary.LittleEndian
	argsAddr := (regs.Rsp - 1024) &^ 15
	setTidAddr := argsAddr + cloneArgsSize
	flags := uint64(unix.CLONE_PARENT)
	if r.im.OwnPidNS {
		// set_tid[0] is then the PID inside the new namespace (1).
		flags |= unix.CLONE_NEWPID
	}
	le.PutUint64(args[0:], flags)
	le.PutUint64(args[64:], setTidAddr) // set_tid
	le.PutUint64(args[72:], 1)          // set_tid_size
	le.PutUint32(args[cloneArgsSize:], uint32(r.im.Pid))
	if err := ptrace.WriteBytes(h, argsAddr, args); err != nil {
		return fmt.Errorf("helper: write clone_args: %w", err)
	}
	inj, err := inject.Begin(h, regs.Rip)
	if err != nil {
		return fmt.Errorf("helper: %w", err)
	}
	got, err := inj.Syscall(x86.SysClone3, argsAddr, cloneArgsSize)
	if err != nil {
		if errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("pid %d is in use by %s: %w", r.im.Pid, describePid(r.im.Pid), errPidTaken)
		}
		return fmt.Errorf("clone3 with pid %d: %w", r.im.Pid, err)
	}
	if int(got) != r.im.Pid && !r.im.OwnPidNS {
		return fmt.Errorf("clone3 gave pid %d, want %d", got, r.im.Pid)
	}
	r.pid = int(got)
	st, err := ptrace.Wait(r.pid)
	if err != nil {
		return err
	}
	if st.Signal() != unix.SIGSTOP {
		return fmt.Errorf("new task %d: %v instead of its first stop", r.pid, st)
	}
	// The helper has served its purpose.
	_ = unix.Kill(h, unix.SIGKILL)
	for {
		st, err := ptrace.Wait(h)
		if err != nil || st.Exited() {
			break
		}
	}
	r.helper = 0
	if r.inj, err = inject.Begin(r.pid, regs.Rip); err != nil {
		return fmt.Errorf("new task %d: %w", r.pid, err)
	}
	r.threads = []*thread{{tid: r.pid, vtid: r.im.Pid, core: r.im.Core, inj: r.inj}}
	return nil
}

type span struct{ start, end uint64 }

func overlaps(a, b span) bool { return a.start < b.end && b.start < a.end }

// mmapMinAddr is the default vm.mmap_min_addr; lower addresses are refused.
const mmapMinAddr = 0x10000

// setupScratch maps the scratch pages at an address that neither the
// helper's nor the dumped task's mappings use, below 4 GiB so that ia32
// syscalls can point into it, and moves the injected code there.
func (r *restorer) setupScratch() error {
	cur, err := procfs.ReadMaps(r.pid)
	if err != nil {
		return err
	}
	var used []span
	for _, v := range cur {
		used = append(used, span{v.Start, v.End})
	}
	used = append(used, r.avoid...)
	sort.Slice(used, func(i, j int) bool { return used[i].start < used[j].start })
	size := uint64(scratchPages * x86.PageSize)
	addr := uint64(0)
	cand := uint64(0x100000)
	for _, u := range used {
		if overlaps(span{cand, cand + size}, u) {
			cand = (u.end + x86.PageSize - 1) &^ (x86.PageSize - 1)
			continue
		}
		if cand+size <= u.start {
			break
		}
	}
	if cand+size < 1<<32 || !r.im.Compat {
		addr = cand
	}
	if addr == 0 {
		return fmt.Errorf("no free %d-byte range below 4 GiB for the scratch area", size)
	}
	got, err := r.inj.Syscall(x86.SysMmap, addr, size, unix.PROT_READ|unix.PROT_WRITE|unix.PROT_EXEC,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_FIXED_NOREPLACE, ^uint64(0), 0)
	if err != nil {
		return err
	}
	if got != addr {
		return fmt.Errorf("scratch mapped at %#x, wanted %#x", got, addr)
	}
	if err := r.inj.MoveCode(addr); err != nil {
		return err
	}
	r.scratch = addr
	r.inj.Stack = addr + size - 256
	r.opts.logf("restore %d: scratch area at %#x", r.pid, addr)
	return nil
}

// data returns the address of the scratch data area, offset by off.
func (r *restorer) data(off uint64) uint64 { return r.scratch + x86.PageSize + off }

// dataSize is the room in the scratch data area.
const dataSize = (scratchPages - 1) * x86.PageSize

// put writes b into the scratch data area at off and returns its address.
func (r *restorer) put(off uint64, b []byte) (uint64, error) {
	if off+uint64(len(b)) > dataSize {
		return 0, fmt.Errorf("%d bytes do not fit the scratch data area", len(b))
	}
	mem, err := ptrace.OpenMem(r.pid)
	if err != nil {
		return 0, err
	}
	defer mem.Close()
	addr := r.data(off)
	return addr, mem.WriteAt(b, addr)
}

// putString writes a NUL-terminated string into the scratch data area.
func (r *restorer) putString(off uint64, s string) (uint64, error) {
	if len(s) >= x86.PageSize {
		return 0, fmt.Errorf("path too long: %.64s...", s)
	}
	return r.put(off, append([]byte(s), 0))
}

// unmapHelper removes every mapping the new task inherited from the
// helper except the scratch area.
func (r *restorer) unmapHelper() error {
	cur, err := procfs.ReadMaps(r.pid)
	if err != nil {
		return err
	}
	s := span{r.scratch, r.scratch + scratchPages*x86.PageSize}
	for _, v := range cur {
		if v.Path == "[vsyscall]" || overlaps(span{v.Start, v.End}, s) {
			continue
		}
		if _, err := r.inj.Syscall(x86.SysMunmap, v.Start, v.End-v.Start); err != nil {
			return fmt.Errorf("munmap %#x-%#x %s: %w", v.Start, v.End, v.Path, err)
		}
	}
	return nil
}

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
	forced := faultInjected("vdso-trampolines")
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

// DumpedRange reads the dumped bytes of [start,end) from the pages image;
// every page of the range must be there (the vDSO is dumped whole).
func (im *Images) DumpedRange(start, end uint64) ([]byte, error) {
	v := span{start, end}
	out := make([]byte, v.end-v.start)
	covered := uint64(0)
	pf, err := im.Dir.OpenPages(im.PagesID)
	if err != nil {
		return nil, err
	}
	defer pf.Close()
	var off int64
	for _, e := range im.Pagemap {
		n := e.GetNrPages()
		if n == 0 {
			n = uint64(e.GetCompatNrPages())
		}
		size := n * x86.PageSize
		if e.GetFlags()&image.PEPresent == 0 {
			continue
		}
		a, b := e.GetVaddr(), e.GetVaddr()+size
		if a < v.end && v.start < b {
			lo, hi := max(a, v.start), min(b, v.end)
			if err := image.ReadFullAt(pf, out[lo-v.start:hi-v.start], off+int64(lo-a)); err != nil {
				return nil, err
			}
			covered += hi - lo
		}
		off += int64(size)
	}
	if covered != v.end-v.start {
		return nil, fmt.Errorf("the pages image holds %d of the %d bytes of %#x-%#x", covered, v.end-v.start, v.start, v.end)
	}
	return out, nil
}

// DumpedVDSO returns the range and image of the dumped [vdso].
func (im *Images) DumpedVDSO() (start, end uint64, b []byte, err error) {
	for _, v := range im.MM.GetVmas() {
		if v.GetStatus()&image.VMAAreaVDSO != 0 {
			b, err := im.DumpedRange(v.GetStart(), v.GetEnd())
			return v.GetStart(), v.GetEnd(), b, err
		}
	}
	return 0, 0, nil, fmt.Errorf("the dump has no [vdso]")
}

// readTask reads memory of the task being restored.
func (r *restorer) readTask(start, end uint64) ([]byte, error) {
	mem, err := ptrace.OpenMem(r.pid)
	if err != nil {
		return nil, err
	}
	defer mem.Close()
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
	patches, err := vdso.Trampolines(old, kern, oldVDSO.start, nv.start)
	if err != nil {
		return err
	}
	n := oldVDSO.end - oldVDSO.start
	if _, err := r.inj.Syscall(x86.SysMmap, oldVDSO.start, n, unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_FIXED_NOREPLACE, ^uint64(0), 0); err != nil {
		return fmt.Errorf("map the vDSO proxy at %#x: %w", oldVDSO.start, err)
	}
	img := append([]byte(nil), oldBytes...)
	for _, p := range patches {
		copy(img[p.Off:], p.Code)
	}
	mem, err := ptrace.OpenMem(r.pid)
	if err != nil {
		return err
	}
	defer mem.Close()
	if err := mem.WriteAt(img, oldVDSO.start); err != nil {
		return err
	}
	if _, err := r.inj.Syscall(x86.SysMprotect, oldVDSO.start, n, unix.PROT_READ|unix.PROT_EXEC); err != nil {
		return fmt.Errorf("mprotect the vDSO proxy: %w", err)
	}
	r.opts.logf("restore %d: vDSO proxy at %#x-%#x, %d entry points jump to the vDSO at %#x", r.pid, oldVDSO.start, oldVDSO.end, len(patches), nv.start)
	return nil
}

// freeRange finds size bytes that no dumped VMA, no current mapping and
// not the scratch area use, as close above near as possible (a rel32 jump
// reaches it), below 4 GiB for an ia32 task.
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
		limit = 1 << 32
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
	return 0, fmt.Errorf("no free %d bytes for this kernel's vDSO", size)
}

// faultInjected reports whether CKPT_FAULT names fault f (comma list).
func faultInjected(f string) bool {
	for _, v := range strings.Split(os.Getenv("CKPT_FAULT"), ",") {
		if strings.TrimSpace(v) == f {
			return true
		}
	}
	return false
}

// mapVMAs maps every dumped VMA except the vDSO ones at its address.
func (r *restorer) mapVMAs() error {
	s := span{r.scratch, r.scratch + scratchPages*x86.PageSize}
	for _, v := range r.im.MM.GetVmas() {
		st := v.GetStatus()
		if st&(image.VMAAreaVDSO|image.VMAAreaVVAR) != 0 {
			continue
		}
		start, end := v.GetStart(), v.GetEnd()
		if overlaps(span{start, end}, s) {
			return fmt.Errorf("vma %#x-%#x overlaps the scratch area", start, end)
		}
		flags := uint64(v.GetFlags()) | unix.MAP_FIXED
		fd := ^uint64(0)
		created := uint64(0)
		var path string
		if st&(image.VMAFilePrivate|image.VMAFileShared) != 0 {
			f, err := r.im.RegFile(uint32(v.GetShmid()))
			if err != nil {
				return fmt.Errorf("vma %#x-%#x: %w", start, end, err)
			}
			path = f.GetReg().GetName()
			p, err := r.putString(0, path)
			if err != nil {
				return err
			}
			oflags := uint64(v.GetFdflags()) | unix.O_CLOEXEC
			got, err := r.inj.Syscall(x86.SysOpenat, atFdcwd, p, oflags, 0)
			if err != nil {
				return fmt.Errorf("vma %#x-%#x: open %s: %w", start, end, path, err)
			}
			fd = got
		} else if st&image.VMAAnonShared != 0 {
			ino := v.GetShmid()
			if path, ok := r.shmem[ino]; ok {
				// Another process of the tree has the object already.
				p, err := r.putString(0, path)
				if err != nil {
					return err
				}
				got, err := r.inj.Syscall(x86.SysOpenat, atFdcwd, p, unix.O_RDWR|unix.O_CLOEXEC, 0)
				if err != nil {
					return fmt.Errorf("vma %#x-%#x: open shared memory %s: %w", start, end, path, err)
				}
				fd = got
				flags &^= unix.MAP_ANONYMOUS
			} else {
				if v.GetPgoff() != 0 {
					return fmt.Errorf("vma %#x-%#x: shared memory mapped from offset %#x: not supported yet", start, end, v.GetPgoff())
				}
				created = ino
			}
		} else if st&image.VMAAnonPrivate == 0 {
			return fmt.Errorf("vma %#x-%#x: status %#x is not supported", start, end, st)
		}
		got, err := r.inj.Syscall(x86.SysMmap, start, end-start, uint64(v.GetProt()), flags, fd, v.GetPgoff())
		if fd != ^uint64(0) {
			if _, cerr := r.inj.Syscall(x86.SysClose, fd); cerr != nil && err == nil {
				err = cerr
			}
		}
		if err != nil {
			return fmt.Errorf("mmap vma %#x-%#x %s: %w", start, end, path, err)
		}
		if got != start {
			return fmt.Errorf("vma %#x-%#x mapped at %#x", start, end, got)
		}
		if created != 0 {
			if err := r.fillShmem(created, start, end); err != nil {
				return fmt.Errorf("vma %#x-%#x: %w", start, end, err)
			}
		}
		for adv := 0; adv < 64; adv++ {
			if v.GetMadv()&(1<<uint(adv)) == 0 {
				continue
			}
			if _, err := r.inj.Syscall(x86.SysMadvise, start, end-start, uint64(adv)); err != nil {
				return fmt.Errorf("madvise(%#x-%#x, %d): %w", start, end, adv, err)
			}
		}
	}
	return nil
}

// atFdcwd is AT_FDCWD as a syscall argument.
var atFdcwd = ^uint64(99) // -100

// fillPages copies the dumped pages into the task.
func (r *restorer) fillPages() error {
	pf, err := r.im.Dir.OpenPages(r.im.PagesID)
	if err != nil {
		return err
	}
	defer pf.Close()
	mem, err := ptrace.OpenMem(r.pid)
	if err != nil {
		return err
	}
	defer mem.Close()
	var vmas, vdsoRanges []span
	for _, v := range r.im.MM.GetVmas() {
		vmas = append(vmas, span{v.GetStart(), v.GetEnd()})
		if v.GetStatus()&image.VMAAreaVDSO != 0 {
			vdsoRanges = append(vdsoRanges, span{v.GetStart(), v.GetEnd()})
		}
	}
	inVMA := func(s span) bool {
		for _, v := range vmas {
			if s.start >= v.start && s.end <= v.end {
				return true
			}
		}
		return false
	}
	buf := make([]byte, 4<<20)
	var off int64
	for i, e := range r.im.Pagemap {
		n := e.GetNrPages()
		if n == 0 {
			n = uint64(e.GetCompatNrPages())
		}
		addr := e.GetVaddr()
		size := n * x86.PageSize
		if e.GetFlags()&image.PEPresent == 0 {
			continue
		}
		if inSpans(span{addr, addr + size}, vdsoRanges) {
			// The vDSO image was used by mapVDSO, not written here.
			off += int64(size)
			continue
		}
		if n == 0 || n > 1<<36 || addr%x86.PageSize != 0 || !inVMA(span{addr, addr + size}) {
			return fmt.Errorf("%s: entry %d (%#x, %d pages) lies outside every vma", image.PagemapName(r.im.Pid), i+1, addr, n)
		}
		for size > 0 {
			c := min(size, uint64(len(buf)))
			if err := image.ReadFullAt(pf, buf[:c], off); err != nil {
				return err
			}
			if err := mem.WriteAt(buf[:c], addr); err != nil {
				return err
			}
			off += int64(c)
			addr += c
			size -= c
		}
	}
	if fi, err := pf.Stat(); err == nil && fi.Size() != off {
		return fmt.Errorf("%s: %d bytes, pagemap accounts for %d", pf.Name(), fi.Size(), off)
	}
	return nil
}

// forkChild has this (restored) process clone3 the child c with its PID;
// the child inherits the scratch area and is traced from its first stop.
func (r *restorer) forkChild(c *restorer) error {
	args := make([]byte, cloneArgsSize+8)
	le := binary.LittleEndian
	p, err := r.put(0, args)
	if err != nil {
		return err
	}
	var flags uint64
	if c.sharesFiles(r) {
		flags |= unix.CLONE_FILES
	}
	if c.sharesFS(r) {
		flags |= unix.CLONE_FS
	}
	le.PutUint64(args[0:], flags)
	le.PutUint64(args[32:], uint64(unix.SIGCHLD)) // exit_signal
	le.PutUint64(args[64:], p+cloneArgsSize)      // set_tid
	le.PutUint64(args[72:], 1)                    // set_tid_size
	le.PutUint32(args[cloneArgsSize:], uint32(c.im.Pid))
	if _, err := r.put(0, args); err != nil {
		return err
	}
	got, err := r.inj.Syscall(x86.SysClone3, p, cloneArgsSize)
	if err != nil {
		if errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("pid %d is in use by %s: %w", c.im.Pid, describePid(c.im.Pid), errPidTaken)
		}
		return fmt.Errorf("clone3 with pid %d: %w", c.im.Pid, err)
	}
	if int(got) != c.im.Pid {
		return fmt.Errorf("clone3 gave pid %d, want %d", got, c.im.Pid)
	}
	// clone3 answers in the parent's PID namespace; ptrace and /proc need
	// the PID in ckpt's, which the fork event gives.
	c.pid = r.inj.Children[len(r.inj.Children)-1]
	st, err := ptrace.Wait(c.pid)
	if err != nil {
		return err
	}
	if st.Signal() != unix.SIGSTOP {
		return fmt.Errorf("new task %d: %v instead of its first stop", c.pid, st)
	}
	if c.inj, err = inject.Begin(c.pid, r.scratch); err != nil {
		return fmt.Errorf("new task %d: %w", c.pid, err)
	}
	c.inj.Stack = r.inj.Stack
	c.scratch = r.scratch
	c.inherited = map[uint32]int{}
	for id, fd := range r.fdIDs {
		c.inherited[id] = fd
	}
	c.threads = []*thread{{tid: c.pid, vtid: c.im.Pid, core: c.im.Core, inj: c.inj}}
	return nil
}

// joinSession puts a new process into its dumped session and process
// group; it runs before the process forks its children, which inherit both.
func (r *restorer) joinSession() error {
	ps := r.im.Pstree
	sid, pgid := int(ps.GetSid()), int(ps.GetPgid())
	switch {
	case sid == r.im.Pid:
		if _, err := r.inj.Syscall(x86.SysSetsid); err != nil {
			return fmt.Errorf("setsid: %w", err)
		}
	case pgid == r.im.Pid:
		if _, err := r.inj.Syscall(x86.SysSetpgid, 0, 0); err != nil {
			return fmt.Errorf("setpgid: %w", err)
		}
	case r.im.OwnPidNS && pgid == 0:
		// The group lies outside the tree's PID namespace: keep it.
	default:
		// Asked inside the task: its PID namespace's view.
		c, err := r.inj.Syscall(x86.SysGetpgid, 0)
		if err != nil {
			return fmt.Errorf("getpgid: %w", err)
		}
		cur := int(c)
		if cur != pgid {
			if _, err := r.inj.Syscall(x86.SysSetpgid, 0, uint64(pgid)); err != nil {
				return fmt.Errorf("cannot join its process group %d (%w): the group is gone or in another session; its leader was not part of the dump", pgid, err)
			}
		}
	}
	return nil
}

func inSpans(s span, in []span) bool {
	for _, v := range in {
		if s.start >= v.start && s.end <= v.end {
			return true
		}
	}
	return false
}

// fillShmem writes the dumped content of shared memory object ino into the
// object just mapped at start-end, through /proc/PID/map_files (whatever
// the mapping's protection), and records where other processes find it.
func (r *restorer) fillShmem(ino, start, end uint64) error {
	data, err := r.im.ShmemContent(ino)
	if err != nil {
		return err
	}
	path := fmt.Sprintf("/proc/%d/map_files/%x-%x", r.pid, start, end)
	if len(data) > 0 {
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			return fmt.Errorf("open shared memory: %w", err)
		}
		_, err = f.WriteAt(data, 0)
		f.Close()
		if err != nil {
			return fmt.Errorf("fill shared memory: %w", err)
		}
	}
	r.shmem[ino] = path
	return nil
}

// ShmemContent reads the dumped content of shared memory object ino.
func (im *Images) ShmemContent(ino uint64) ([]byte, error) {
	name := image.ShmemPagemapName(ino)
	raw, err := im.Dir.ReadRaw(name, image.MagicPagemap)
	if err != nil {
		return nil, err
	}
	if len(raw) == 0 {
		return nil, fmt.Errorf("%s: no pagemap head", name)
	}
	head := &pagemap.PagemapHead{}
	if err := im.Dir.Unmarshal(name, 0, raw[0], head); err != nil {
		return nil, err
	}
	pf, err := im.Dir.OpenPages(head.GetPagesId())
	if err != nil {
		return nil, err
	}
	defer pf.Close()
	var data []byte
	var off int64
	for i, r := range raw[1:] {
		e := &pagemap.PagemapEntry{}
		if err := im.Dir.Unmarshal(name, i+1, r, e); err != nil {
			return nil, err
		}
		n := e.GetNrPages()
		if n == 0 {
			n = uint64(e.GetCompatNrPages())
		}
		size := n * x86.PageSize
		end := e.GetVaddr() + size
		if n > 1<<24 || end > 1<<40 {
			return nil, fmt.Errorf("%s: entry %d (%#x, %d pages) out of range", name, i+1, e.GetVaddr(), n)
		}
		if uint64(len(data)) < end {
			data = append(data, make([]byte, end-uint64(len(data)))...)
		}
		if err := image.ReadFullAt(pf, data[e.GetVaddr():end], off); err != nil {
			return nil, err
		}
		off += int64(size)
	}
	return data, nil
}

// sharesFiles reports a child whose fd table was its parent's (CLONE_FILES).
func (r *restorer) sharesFiles(parent *restorer) bool {
	return !r.im.Zombie && r.im.Core.GetIds().GetFilesId() == parent.im.Core.GetIds().GetFilesId()
}

// sharesFS reports a child whose cwd, root and umask were its parent's
// (CLONE_FS).
func (r *restorer) sharesFS(parent *restorer) bool {
	return !r.im.Zombie && r.im.Core.GetIds().GetFsId() == parent.im.Core.GetIds().GetFsId()
}
