//go:build linux && amd64

package restore

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/inject"
	"github.com/ckpt/ckpt/internal/kinds/ns"
	"github.com/ckpt/ckpt/internal/procfs"
	"github.com/ckpt/ckpt/internal/ptrace"
	"github.com/ckpt/ckpt/internal/uapi"
)

// cloneTask makes the helper clone3 a child with the dumped PID. The child
// is created with CLONE_PARENT, so it is a child of ckpt, not of the
// helper, and it is traced from its first instruction (PTRACE_O_TRACECLONE).
func (r *restorer) cloneTask(inTree map[int]*restorer) error {
	defer r.timeForking()()
	h := r.helperTh
	regs, err := h.GetRegs()
	if err != nil {
		return fmt.Errorf("helper registers: %w", err)
	}
	argsAddr := (regs.Rsp - 1024) &^ 15
	flags := uint64(unix.CLONE_PARENT)
	if r.im.OwnPidNS {
		// set_tid[0] is then the PID inside the new namespace (1).
		flags |= unix.CLONE_NEWPID
	}
	flags |= ns.CloneFlags(r.im.IDs, nil)
	args := uapi.CloneArgs{Flags: flags}.WithSetTid(argsAddr, int32(r.im.Pid))
	if err := h.WriteBytes(argsAddr, args); err != nil {
		return fmt.Errorf("helper: write clone_args: %w", err)
	}
	inj, err := inject.Begin(h, regs.Rip)
	if err != nil {
		return fmt.Errorf("helper: %w", err)
	}
	if r.timens != nil {
		// The helper makes the namespace its children will be in; its
		// offsets are set before the task enters it.
		_, err := inj.Syscall(x86.SysUnshare, unix.CLONE_NEWTIME)
		switch {
		case errors.Is(err, unix.EINVAL):
			// A kernel without time namespaces (CONFIG_TIME_NS): the
			// tree runs, but its clocks go back.
			r.opts.logf("restore: warning: this kernel has no time namespaces; the tree's CLOCK_MONOTONIC and CLOCK_BOOTTIME go back by %v and %v", time.Duration(r.timens.Monotonic).Round(time.Millisecond), time.Duration(r.timens.Boottime).Round(time.Millisecond))
		case err != nil:
			return fmt.Errorf("helper: unshare(CLONE_NEWTIME): %w", err)
		default:
			if err := writeTimensOffsets(r.helper, r.timens); err != nil {
				return fmt.Errorf("helper: %w", err)
			}
		}
	}
	// A session (and group) whose leader is gone is made first, and the
	// task is cloned from its temporary leader (see leaders.go).
	src := inj
	leaders, err := r.rootLeaders(inj, argsAddr-512, inTree)
	if err != nil {
		return err
	}
	if l := leaders.from(); l != nil {
		src = l
		if err := src.T.WriteBytes(argsAddr, args); err != nil {
			return fmt.Errorf("temporary leader: write clone_args: %w", err)
		}
	}
	got, err := src.Syscall(x86.SysClone3, argsAddr, uapi.SizeofCloneArgs)
	if err != nil {
		if errors.Is(err, unix.EEXIST) {
			return pidInUse(r.im.Pid)
		}
		return fmt.Errorf("clone3 with pid %d: %w", r.im.Pid, err)
	}
	if int(got) != r.im.Pid && !r.im.OwnPidNS {
		return fmt.Errorf("clone3 gave pid %d, want %d", got, r.im.Pid)
	}
	r.pid = int(got)
	r.th = h.Child(r.pid)
	r.killStep("task", r.pid, r.im.Pid, nil)
	st, err := r.th.Wait()
	if err != nil {
		return err
	}
	if st.Signal() != unix.SIGSTOP {
		return fmt.Errorf("new task %d: %v instead of its first stop", r.pid, st)
	}
	if err := leaders.end(); err != nil {
		return err
	}
	// The helper has served its purpose.
	_ = r.helperUndo.Run()
	r.helper = 0
	if r.inj, err = inject.Begin(r.th, regs.Rip); err != nil {
		return fmt.Errorf("new task %d: %w", r.pid, err)
	}
	r.threads = []*thread{{h: r.th, vtid: r.im.Pid, core: r.im.Core, inj: r.inj}}
	return nil
}

type span struct{ start, end uint64 }

func overlaps(a, b span) bool { return a.start < b.end && b.start < a.end }

// mmapMinAddr is the default vm.mmap_min_addr; lower addresses are refused.
const mmapMinAddr = 0x10000

// setupScratch maps the scratch pages at an address that neither the
// helper's nor the dumped task's mappings use, below 4 GiB so that ia32
// syscalls can point into it (below IA32_PAGE_OFFSET, the TASK_SIZE of
// an mm from an ia32 exec), and moves the injected code there.
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
	if cand+size <= x86.IA32PageOffset || !r.im.Compat {
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
	mem, err := r.memory()
	if err != nil {
		return 0, err
	}
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
// helper, or from its restored parent, except the scratch area and the
// private VMAs it keeps from its parent (r.keep, see cow.go).
func (r *restorer) unmapHelper() error {
	cur, err := procfs.ReadMaps(r.pid)
	if err != nil {
		return err
	}
	if r.keep, err = r.inheritedVMAs(cur); err != nil {
		return err
	}
	s := span{r.scratch, r.scratch + scratchPages*x86.PageSize}
	for _, v := range cur {
		if v.Path == "[vsyscall]" || overlaps(span{v.Start, v.End}, s) {
			continue
		}
		for _, u := range subtract(span{v.Start, v.End}, r.keep) {
			if _, err := r.inj.Syscall(x86.SysMunmap, u.start, u.end-u.start); err != nil {
				return fmt.Errorf("munmap %#x-%#x %s: %w", u.start, u.end, v.Path, err)
			}
		}
	}
	if len(r.keep) > 0 {
		r.opts.logf("restore %d: keeps %d private memory areas of its parent %d (copy-on-write)", r.pid, len(r.keep), r.parent.pid)
	}
	return nil
}

// forkChild has this (restored) process clone3 the child c with its PID;
// the child inherits the scratch area and is traced from its first stop.
func (r *restorer) forkChild(c *restorer) error {
	defer r.timeForking()()
	var flags uint64
	src := r.inj
	if c.via != nil {
		// Born in a session whose leader is gone (memberLeaders): from
		// its temporary leader, as r's child all the same.
		src, flags = c.via, unix.CLONE_PARENT
	}
	if c.via != nil && (c.sharesFiles(r) || c.sharesFS(r)) {
		return fmt.Errorf("task %d shares its files or fs with its parent %d but is in another session, whose leader is gone: not supported", c.im.Pid, r.im.Pid)
	}
	if c.sharesFiles(r) {
		flags |= unix.CLONE_FILES
	}
	if c.sharesFS(r) {
		flags |= unix.CLONE_FS
	}
	flags |= ns.CloneFlags(c.im.IDs, r.im.IDs)
	ca := uapi.CloneArgs{Flags: flags, ExitSignal: uint64(unix.SIGCHLD)}
	if c.via != nil {
		ca.ExitSignal = 0 // CLONE_PARENT: the leader's, SIGCHLD
	}
	args := ca.WithSetTid(r.data(0), setTids(c.im)...)
	p, err := r.put(0, args)
	if err != nil {
		return err
	}
	if c.via != nil {
		// The leader's memory is a copy of r's from before the put.
		if err := src.T.WriteBytes(p, args); err != nil {
			return fmt.Errorf("temporary leader: write clone_args: %w", err)
		}
	}
	got, err := src.Syscall(x86.SysClone3, p, uapi.SizeofCloneArgs)
	if err != nil {
		if errors.Is(err, unix.EEXIST) {
			return pidInUse(c.im.Pid)
		}
		return fmt.Errorf("clone3 with pid %d: %w", c.im.Pid, err)
	}
	if want := pidSeenBy(c.im, r.im); int(got) != want {
		return fmt.Errorf("clone3 gave pid %d, want %d", got, want)
	}
	// clone3 answers in the parent's PID namespace; ptrace and /proc need
	// the PID in ckpt's, which the fork event gives.
	c.th = src.Children[len(src.Children)-1]
	c.pid = c.th.Tid
	c.killStep("task", c.pid, c.im.Pid, r)
	st, err := c.th.Wait()
	if err != nil {
		return err
	}
	if st.Signal() != unix.SIGSTOP {
		return fmt.Errorf("new task %d: %v instead of its first stop", c.pid, st)
	}
	if c.inj, err = inject.Begin(c.th, r.scratch); err != nil {
		return fmt.Errorf("new task %d: %w", c.pid, err)
	}
	c.inj.Stack = r.inj.Stack
	c.scratch = r.scratch
	c.inherited = map[uint32]int{}
	for id, fd := range r.fdIDs {
		c.inherited[id] = fd
	}
	c.threads = []*thread{{h: c.th, vtid: c.im.VPid(), core: c.im.Core, inj: c.inj}}
	return c.restoreNamespaces(r)
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
	case len(r.im.NsPids) > 0 && nsView(r.im, pgid) == 0:
		// In a nested PID namespace, a group whose leader is outside
		// it: it cannot be named from inside, it was inherited.
	default:
		if len(r.im.NsPids) > 0 {
			pgid = nsView(r.im, pgid)
		}
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

// sharesFiles reports a child whose fd table was its parent's (CLONE_FILES).
func (r *restorer) sharesFiles(parent *restorer) bool {
	return !r.im.Zombie && r.im.IDs.GetFilesId() == parent.im.IDs.GetFilesId()
}

// sharesFS reports a child whose cwd, root and umask were its parent's
// (CLONE_FS).
func (r *restorer) sharesFS(parent *restorer) bool {
	return !r.im.Zombie && r.im.IDs.GetFsId() == parent.im.IDs.GetFsId()
}

// memory returns the task's /proc/PID/mem, opened once per restorer
// (every injected call with arguments in the scratch area writes there).
func (r *restorer) memory() (*ptrace.Mem, error) {
	if r.mem == nil {
		m, err := ptrace.OpenMem(r.pid)
		if err != nil {
			return nil, err
		}
		r.mem = m
	}
	return r.mem, nil
}

// closeMemory releases what memory opened.
func (r *restorer) closeMemory() {
	if r.mem != nil {
		r.mem.Close()
		r.mem = nil
	}
}

// tempLeader is a process made only to be the leader of a process group
// that a restored task must join but whose leader was not dumped (it had
// exited): in the same session, it creates the group with setpgid, the
// task joins it, and it goes away, as the original leader did.
type tempLeader struct {
	step *ptrace.Step // its kill, run by end or by the restore's undo
}

// needsGroupLeader tells whether task c joins a process group whose
// leader is neither c nor any task of the dump, and which no live process
// leads here either: the group must be made.
func (c *restorer) needsGroupLeader(inTree map[int]*restorer) bool {
	pgid := int(c.im.Pstree.GetPgid())
	if pgid == 0 || pgid == c.im.Pid || c.im.Pstree.GetSid() == c.im.Pstree.GetPid() {
		return false
	}
	if len(c.im.NsPids) > 0 {
		return false // nested: see joinSession
	}
	if _, ok := inTree[pgid]; ok {
		return false
	}
	return true
}

// groupLeader forks, from r, a process with PID pgid that makes process
// group pgid in r's session. It has no exit signal, so that r gets no
// SIGCHLD of it; end kills it and has r reap it.
func (r *restorer) groupLeader(pgid int) (*tempLeader, error) {
	args := uapi.CloneArgs{}.WithSetTid(r.data(0), int32(pgid))
	p, err := r.put(0, args)
	if err != nil {
		return nil, err
	}
	got, err := r.inj.Syscall(x86.SysClone3, p, uapi.SizeofCloneArgs)
	if err != nil {
		if errors.Is(err, unix.EEXIST) {
			return nil, fmt.Errorf("make process group %d, whose leader is gone: %w", pgid, pidInUse(pgid))
		}
		return nil, fmt.Errorf("make process group %d, whose leader is gone: clone3: %w", pgid, err)
	}
	if int(got) != pgid {
		return nil, fmt.Errorf("clone3 gave pid %d for group leader %d", got, pgid)
	}
	th := r.inj.Children[len(r.inj.Children)-1]
	l := &tempLeader{}
	l.step = r.killStep(fmt.Sprintf("the temporary leader of group %d", pgid), th.Tid, pgid, r)
	st, err := th.Wait()
	if err != nil {
		return nil, err
	}
	if st.Signal() != unix.SIGSTOP {
		return nil, fmt.Errorf("group leader %d: %v instead of its first stop", pgid, st)
	}
	inj, err := inject.Begin(th, r.scratch)
	if err != nil {
		return nil, fmt.Errorf("group leader %d: %w", pgid, err)
	}
	inj.Stack = r.inj.Stack
	if _, err := inj.Syscall(x86.SysSetpgid, 0, 0); err != nil {
		return nil, fmt.Errorf("group leader %d: setpgid: %w", pgid, err)
	}
	return l, nil
}

// end kills the temporary leader and has its parent reap it; the group
// lives on in its members.
func (l *tempLeader) end() error { return l.step.Run() }
