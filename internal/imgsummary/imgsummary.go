//go:build linux && amd64

// Package imgsummary prints a human summary of a dump directory, for
// `ckpt show`: the tasks and threads with their ABI and CPU mode, memory
// areas and how much of each was saved, the vDSO layout, files, creds,
// limits, signal handlers and image sizes.
//
// A dump is read with model.Load, as a restore reads it. A dump that a
// restore here would refuse (an executable that is gone, an x32 program,
// ...) is still summarized, with the reason for the refusal; an image
// that is missing or corrupt is an error that names the file.
package imgsummary

import (
	"debug/elf"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"

	criucore "github.com/checkpoint-restore/go-criu/v8/crit/images/criu-core"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/fdinfo"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/pagemap"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/timens"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/tty"
	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/image"
	"github.com/ckpt/ckpt/internal/kinds/ns"
	"github.com/ckpt/ckpt/internal/model"
	"github.com/ckpt/ckpt/internal/uapi"
	"github.com/ckpt/ckpt/internal/vdso"
)

// summary is a dump as read for printing.
type summary struct {
	*model.Dump
	dir     string
	tasks   []*task
	refused error // why a restore here would refuse the dump, nil if none
	// broken says why no restore can work (a pages image missing or
	// shorter than its pagemap); Write returns it after the summary.
	broken error
	stats  model.Stats // stats-dump and stats-restore, if there
}

// task is a process of the dump with its threads listed leader first.
type task struct {
	*model.Process
	threads []thread
}

type thread struct {
	tid  int
	core *criucore.CoreEntry
}

// Write prints a summary of the dump in dir to w. A missing or corrupt
// image is returned as an error naming the file; so is a pages image
// missing or shorter than its pagemap, after the summary.
func Write(w io.Writer, dir string) error {
	s, err := load(dir)
	if err != nil {
		return err
	}
	return s.print(w)
}

func load(dir string) (*summary, error) {
	d, err := model.Load(dir)
	if err != nil {
		return nil, err
	}
	s := &summary{Dump: d, dir: dir, refused: d.Refused(), broken: d.CheckPages()}
	if s.stats, err = model.LoadStats(dir); err != nil {
		return nil, err
	}
	for _, p := range d.Procs {
		s.tasks = append(s.tasks, &task{Process: p, threads: loadedThreads(p)})
	}
	return s, nil
}

// errWriter remembers the first write error so that printing code can
// go on without checking each call.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(b []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(b)
	e.err = err
	return n, err
}

func (s *summary) print(out io.Writer) error {
	ew := &errWriter{w: out}
	p := func(format string, args ...any) { fmt.Fprintf(ew, format, args...) }

	inv := s.Inventory
	p("dump %s\n", s.dir)
	p("inventory: image version %d", inv.GetImgVersion())
	if inv.GetImgVersion() != image.ImgVersion {
		p(" (ckpt reads version %d)", image.ImgVersion)
	}
	if inv.DumpUptime != nil {
		p(", dumped at uptime %.1f s", float64(inv.GetDumpUptime())/1e6)
	}
	p("\n")
	if c := s.Clocks; c != nil {
		sec := func(ts *timens.Timespec) float64 { return float64(ts.GetTvSec()) + float64(ts.GetTvNsec())/1e9 }
		p("clocks: the tree saw CLOCK_MONOTONIC %.3f s and CLOCK_BOOTTIME %.3f s (a restore where this machine's clocks are behind these gives the tree a time namespace)\n",
			sec(c.GetMonotonic()), sec(c.GetBoottime()))
	}
	if s.broken != nil {
		p("restore: cannot work: %v\n", s.broken)
	} else if s.refused != nil {
		p("restore: refused: %v\n", s.refused)
	} else {
		p("restore: the images load\n")
	}
	for _, t := range s.tasks {
		s.printTask(ew, t)
	}
	printStats(ew, s.stats)
	total, pages, nfiles := s.sizes()
	p("sizes: %d image files, %s in all; pages images %s\n", nfiles, bytesStr(total), bytesStr(pages))
	if ew.err != nil {
		return ew.err
	}
	if s.broken != nil {
		return fmt.Errorf("the dump in %s cannot be restored: %w", s.dir, s.broken)
	}
	return nil
}

func (s *summary) printTask(w io.Writer, t *task) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	lead := t.threads[0].core
	tc := lead.GetTc()
	p("\ntask %d: comm %q, ppid %d, pgid %d, sid %d, state %s\n",
		t.Pstree.GetPid(), tc.GetComm(), t.Pstree.GetPpid(), t.Pstree.GetPgid(), t.Pstree.GetSid(), taskState(tc.GetTaskState()))
	if t.Refused != nil {
		p("  abi: unknown: %v\n", t.Refused)
	} else {
		p("  abi: %s (executable %s)\n", t.ABI, t.ExePath)
	}
	if pers := tc.GetPersonality(); pers != 0 {
		p("  personality: %#x\n", pers)
	}
	if d := ns.Describe(t.IDs); d != "" {
		p("  namespaces of the tree (not ckpt's): %s\n", d)
	}
	if len(t.NsPids) > 0 {
		p("  in a nested PID namespace: PIDs there %v (outermost first)\n", t.NsPids)
	}
	if id := model.PidForChildrenNsID(t.IDs); id != 0 {
		p("  its next children go into PID namespace %d\n", id)
	}
	if u := t.Tree.UTS[t.IDs.GetUtsNsId()]; u != nil {
		p("  UTS namespace %d: hostname %q, domainname %q\n", t.IDs.GetUtsNsId(), u.GetNodename(), u.GetDomainname())
	}
	if sv := t.Tree.SysV[t.IDs.GetIpcNsId()]; sv != nil && len(sv.Shm)+len(sv.Sem)+len(sv.Msg) > 0 {
		if t.IDs.GetIpcNsId() == model.HostIPC {
			p("  SysV objects of the host's IPC namespace that the tree uses: %s\n", sysvSummary(sv))
		} else {
			p("  IPC namespace %d: %s\n", t.IDs.GetIpcNsId(), sysvSummary(sv))
		}
	}
	if ms := t.Tree.Mounts[t.IDs.GetMntNsId()]; len(ms) > 0 {
		p("  mount namespace %d: %d mounts (mountpoints-%d.img)\n", t.IDs.GetMntNsId(), len(ms), t.IDs.GetMntNsId())
	}
	for _, th := range t.threads {
		s.printThread(w, t, th)
	}
	s.printMemory(w, t)
	s.printFiles(w, t)
	s.printCreds(w, lead)
	printRlimits(w, tc)
	printSigactions(w, tc)
	n := len(tc.GetSignalsS().GetSignals())
	np := 0
	for _, th := range t.threads {
		np += len(th.core.GetThreadCore().GetSignalsP().GetSignals())
	}
	p("  pending signals: %d (%d shared, %d per-thread)\n", n+np, n, np)
}

func taskState(st uint32) string {
	switch st {
	case image.TaskAlive:
		return "alive"
	case image.TaskDead:
		return "dead"
	case image.TaskStopped:
		return "stopped"
	}
	return fmt.Sprintf("unknown (%d)", st)
}

func (s *summary) printThread(w io.Writer, t *task, th thread) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	c := th.core
	if c.GetMtype() != criucore.CoreEntry_X86_64 || c.GetThreadInfo().GetGpregs() == nil {
		p("  thread %d: not an x86_64 core (mtype %v)\n", th.tid, c.GetMtype())
		return
	}
	g := c.GetThreadInfo().GetGpregs()
	mode := x86.Mode(g.GetMode())
	p("  thread %d: caught in %s mode (cs %#x), ip %#x, sp %#x", th.tid, mode, g.GetCs(), g.GetIp(), g.GetSp())
	orig, ax := int64(g.GetOrigAx()), int64(g.GetAx())
	if mode == x86.ModeCompat {
		orig, ax = int64(int32(g.GetOrigAx())), int64(int32(g.GetAx()))
	}
	if orig >= 0 {
		p(", in syscall %d", orig)
		if name := restartName(-ax); name != "" {
			p(" (ax %d, %s)", ax, name)
		} else if ax == orig {
			p(" (interrupted, runs again)")
		} else {
			p(" (ax %d)", ax)
		}
	} else {
		p(", not in a syscall")
	}
	p("\n")
	switch {
	case t.ABI == x86.ABI32 && mode == x86.ModeNative:
		p("    note: an ia32 program caught running 64-bit code\n")
	case t.ABI == x86.ABI64 && mode == x86.ModeCompat:
		p("    note: an x86_64 program caught running 32-bit code\n")
	}
}

func restartName(code int64) string {
	switch code {
	case x86.ERESTARTSYS:
		return "ERESTARTSYS"
	case x86.ERESTARTNOINTR:
		return "ERESTARTNOINTR"
	case x86.ERESTARTNOHAND:
		return "ERESTARTNOHAND"
	case x86.ERESTART_RESTARTBLOCK:
		return "ERESTART_RESTARTBLOCK"
	}
	return ""
}

// vmaPages counts the pages of the pagemap inside [start, end).
func vmaPages(pm []*pagemap.PagemapEntry, start, end uint64) uint64 {
	var n uint64
	for _, e := range pm {
		a := e.GetVaddr()
		b := a + model.EntryPages(e)*x86.PageSize
		lo, hi := max(a, start), min(b, end)
		if lo < hi {
			n += (hi - lo) / x86.PageSize
		}
	}
	return n
}

func protStr(prot uint32) string {
	b := []byte("---")
	if prot&0x1 != 0 {
		b[0] = 'r'
	}
	if prot&0x2 != 0 {
		b[1] = 'w'
	}
	if prot&0x4 != 0 {
		b[2] = 'x'
	}
	return string(b)
}

func (s *summary) vmaKind(status uint32, shmid uint64) string {
	switch {
	case status&image.VMAAreaVDSO != 0:
		return "vdso"
	case status&image.VMAAreaVVAR != 0:
		return "vvar"
	case status&image.VMAAreaVsyscall != 0:
		return "vsyscall"
	case status&image.VMAAreaStack != 0:
		return "stack"
	case status&image.VMAAreaHeap != 0:
		return "heap"
	case status&(image.VMAFilePrivate|image.VMAFileShared) != 0:
		if f, ok := s.Files[uint32(shmid)]; ok && f.GetReg() != nil {
			return "file " + f.GetReg().GetName() + s.ghostMark(uint32(shmid))
		}
		if f, ok := s.Files[uint32(shmid)]; ok && f.GetMemfd() != nil {
			return "memfd " + s.memfdName(f.GetMemfd().GetInodeId())
		}
		return fmt.Sprintf("file id %d (not in files.img)", shmid)
	case status&image.VMAAreaSysVIPC != 0: // CRIU marks it VMA_ANON_SHARED too
		return fmt.Sprintf("SysV shared memory %d", shmid)
	case status&(image.VMAAnonPrivate|image.VMAAnonShared) != 0:
		return "anon"
	case status&image.VMAAreaAIORing != 0:
		return "AIO ring"
	}
	return fmt.Sprintf("status %#x", status)
}

func (s *summary) printMemory(w io.Writer, t *task) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	vmas := t.MM.GetVmas()
	var inPagemap, inParent uint64
	for _, e := range t.Pagemap {
		if model.InParent(e) {
			inParent += model.EntryPages(e) // no bytes in this pages image
			continue
		}
		inPagemap += model.EntryPages(e)
	}
	p("  memory: %d vmas, %d pages (%s) in pagemap-%d.img, pages-%d.img\n",
		len(vmas), inPagemap, bytesStr(int64(inPagemap*x86.PageSize)), t.Pstree.GetPid(), t.PagesID)
	if inParent > 0 {
		parent, _ := model.ParentDir(s.dir)
		p("  pre-copy: %d more pages (%s) left in the parent dump %s (in_parent)\n", inParent, bytesStr(int64(inParent*x86.PageSize)), parent)
	}
	pagesName := image.PagesName(t.PagesID)
	if fi, err := os.Stat(filepath.Join(s.dir, pagesName)); err != nil {
		p("  warning: %v\n", err)
	} else if want := int64(inPagemap * x86.PageSize); fi.Size() != want {
		p("  warning: %s holds %d bytes, the pagemap lists %d\n", pagesName, fi.Size(), want)
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "    start-end\tprot\tshare\tpages\tkind\n")
	var special []string
	for _, v := range vmas {
		share := "private"
		if v.GetFlags()&0x1 != 0 { // MAP_SHARED
			share = "shared"
		}
		kind := s.vmaKind(v.GetStatus(), v.GetShmid())
		fmt.Fprintf(tw, "    %x-%x\t%s\t%s\t%d\t%s\n", v.GetStart(), v.GetEnd(), protStr(v.GetProt()), share,
			vmaPages(t.Pagemap, v.GetStart(), v.GetEnd()), kind)
		if kind == "vdso" || kind == "vvar" {
			special = append(special, fmt.Sprintf("%s %#x-%#x (%s)", kind, v.GetStart(), v.GetEnd(), bytesStr(int64(v.GetEnd()-v.GetStart()))))
		}
	}
	tw.Flush()
	if len(special) == 0 {
		p("  vdso: none\n")
	} else {
		// The names [vvar] and [vvar_vclock] are not kept in the image:
		// both are vvar areas.
		p("  vdso layout: %s\n", strings.Join(special, ", "))
		p("  vdso: %s\n", t.vdsoImage())
	}
}

// Open flags (include/uapi/asm-generic/fcntl.h, x86_64 values).
var openFlags = []struct {
	bit  uint32
	name string
}{
	{0o100, "O_CREAT"}, {0o200, "O_EXCL"}, {0o400, "O_NOCTTY"}, {0o1000, "O_TRUNC"},
	{0o2000, "O_APPEND"}, {0o4000, "O_NONBLOCK"}, {0o10000, "O_DSYNC"}, {0o20000, "FASYNC"},
	{0o40000, "O_DIRECT"}, {0o100000, "O_LARGEFILE"}, {0o200000, "O_DIRECTORY"},
	{0o400000, "O_NOFOLLOW"}, {0o1000000, "O_NOATIME"}, {0o2000000, "O_CLOEXEC"},
	{0o4000000, "__O_SYNC"}, {0o10000000, "O_PATH"}, {0o20000000, "__O_TMPFILE"},
}

func openFlagsStr(f uint32) string {
	parts := []string{[...]string{"O_RDONLY", "O_WRONLY", "O_RDWR", "O_ACCMODE"}[f&3]}
	f &^= 3
	for _, o := range openFlags {
		if f&o.bit != 0 {
			parts = append(parts, o.name)
			f &^= o.bit
		}
	}
	if f != 0 {
		parts = append(parts, fmt.Sprintf("%#o", f))
	}
	return strings.Join(parts, "|")
}

// ghostMark marks a file whose path was unlinked, saved in the dump.
func (s *summary) ghostMark(id uint32) string {
	gid, g := s.GhostOf(id)
	if at, ok := s.LinkedAt[id]; ok && gid == 0 {
		return fmt.Sprintf(" (unlinked; linked at %s)", at)
	}
	if to, ok := s.Linked[id]; ok && gid == 0 {
		return fmt.Sprintf(" (unlinked; linked at %s)", s.Files[to].GetReg().GetName())
	}
	if gid == 0 {
		return ""
	}
	if g == nil {
		return fmt.Sprintf(" (unlinked; ghost %d missing)", gid)
	}
	return fmt.Sprintf(" (unlinked; %d bytes in %s)", len(g.Data), image.GhostFileName(gid))
}

// memfdName names memfd ino of the dump with its seals.
func (s *summary) memfdName(ino uint32) string {
	m, ok := s.Memfds[ino]
	if !ok {
		return fmt.Sprintf("%d (not in memfd.img)", ino)
	}
	return fmt.Sprintf("%q (%d bytes, seals %#x)", m.GetName(), m.GetSize(), m.GetSeals())
}

func (s *summary) fileName(id uint32) string {
	f, ok := s.Files[id]
	if !ok {
		return fmt.Sprintf("file id %d (not in files.img)", id)
	}
	if f.GetReg() != nil {
		return f.GetReg().GetName()
	}
	return fmt.Sprintf("file id %d (%v)", id, f.GetType())
}

func (s *summary) printFiles(w io.Writer, t *task) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("  fds: %d (%s)\n", len(t.Fds), image.FdinfoName(t.FilesID()))
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fds := append([]*fdinfo.FdinfoEntry(nil), t.Fds...)
	sort.Slice(fds, func(i, j int) bool { return fds[i].GetFd() < fds[j].GetFd() })
	for _, fd := range fds {
		f := s.Files[fd.GetId()]
		path, flags, pos := "?", "?", "-"
		switch {
		case f == nil:
			path = fmt.Sprintf("file id %d (not in files.img)", fd.GetId())
		case f.GetReg() != nil:
			r := f.GetReg()
			path, flags, pos = r.GetName()+s.ghostMark(fd.GetId()), openFlagsStr(r.GetFlags()), fmt.Sprint(r.GetPos())
		case f.GetMemfd() != nil:
			m := f.GetMemfd()
			path, flags, pos = "memfd "+s.memfdName(m.GetInodeId()), openFlagsStr(m.GetFlags()), fmt.Sprint(m.GetPos())
		case f.GetFifo() != nil:
			fe := f.GetFifo()
			path = fmt.Sprintf("FIFO %s", s.fileName(fe.GetRegfId()))
			if r, ok := s.Files[fe.GetRegfId()]; ok && r.GetReg() != nil {
				path += s.ghostMark(fe.GetRegfId())
				flags = openFlagsStr(r.GetReg().GetFlags())
			}
			if pd, ok := s.Fifos[fe.GetPipeId()]; ok {
				path += fmt.Sprintf(", %d bytes queued", len(pd.Data))
			} else {
				path += ", held outside the tree: its bytes stayed in it"
			}
		case f.GetPipe() != nil:
			path, flags = fmt.Sprintf("pipe:[%d] (inherited)", f.GetPipe().GetPipeId()), openFlagsStr(f.GetPipe().GetFlags())
		case f.GetTty() != nil:
			path, flags = s.ttyName(f.GetTty().GetTtyInfoId()), openFlagsStr(f.GetTty().GetFlags())
		case f.GetIfy() != nil:
			var ws []string
			for _, w := range f.GetIfy().GetWd() {
				ws = append(ws, fmt.Sprintf("wd %d %s (mask %#x)", w.GetWd(), w.GetFHandle().GetPath(), w.GetMask()))
			}
			path, flags = "inotify, no watches", openFlagsStr(f.GetIfy().GetFlags())
			if len(ws) > 0 {
				path = "inotify: " + strings.Join(ws, ", ")
			}
		case f.GetUsk() != nil:
			u := f.GetUsk()
			path, flags = fmt.Sprintf("unix socket:[%d] type %d state %d peer %d name %q", u.GetIno(), u.GetType(), u.GetState(), u.GetPeer(), u.GetName()), openFlagsStr(u.GetFlags())
		case f.GetIsk() != nil:
			i := f.GetIsk()
			path, flags = fmt.Sprintf("inet socket:[%d] family %d proto %d state %d port %d -> %d, %d datagrams queued", i.GetIno(), i.GetFamily(), i.GetProto(), i.GetState(), i.GetSrcPort(), i.GetDstPort(), len(s.SkQueues[fd.GetId()])), openFlagsStr(i.GetFlags())
			if ts, ok := s.TcpStreams[i.GetIno()]; ok {
				path += fmt.Sprintf(", TCP stream: %d bytes to read, %d to send", len(ts.In), len(ts.Out))
			}
		case f.GetExt() != nil:
			path = fmt.Sprintf("external file %d", f.GetExt().GetId())
			if q, mf, ok := s.PosixMQFile(fd.GetId()); ok {
				path, flags = posixMQSummary(q), openFlagsStr(mf.Flags)
			}
		case f.GetNlsk() != nil:
			n := f.GetNlsk()
			path, flags = fmt.Sprintf("netlink socket:[%d] protocol %d port id %d groups %v", n.GetIno(), n.GetProtocol(), n.GetPortid(), n.GetGroups()), openFlagsStr(n.GetFlags())
		}
		if fd.GetFlags()&1 != 0 { // FD_CLOEXEC
			flags += " cloexec"
		}
		fmt.Fprintf(tw, "    %d\t%v\t%s\tflags %s\tpos %s\n", fd.GetFd(), fd.GetType(), path, flags, pos)
	}
	tw.Flush()
	for _, l := range s.FileLocks {
		if int(l.GetPid()) == t.Pid {
			p("  file lock: fd %d, %s\n", l.GetFd(), model.DescribeLock(l))
		}
	}
	if t.FS != nil {
		p("  cwd %s, root %s", s.fileName(t.FS.GetCwdId()), s.fileName(t.FS.GetRootId()))
		if t.FS.Umask != nil {
			p(", umask %#04o", t.FS.GetUmask())
		}
		p("\n")
	}
}

func capStr(words []uint32) string {
	var v uint64
	for i, w := range words {
		if i < 2 {
			v |= uint64(w) << (32 * i)
		}
	}
	return fmt.Sprintf("%#x", v)
}

func (s *summary) printCreds(w io.Writer, c *criucore.CoreEntry) {
	cr := c.GetThreadCore().GetCreds()
	if cr == nil {
		fmt.Fprintf(w, "  creds: none in the image\n")
		return
	}
	fmt.Fprintf(w, "  creds: uid %d/%d/%d/%d, gid %d/%d/%d/%d (real/effective/saved/fs), groups %v, effective caps %s\n",
		cr.GetUid(), cr.GetEuid(), cr.GetSuid(), cr.GetFsuid(), cr.GetGid(), cr.GetEgid(), cr.GetSgid(), cr.GetFsgid(),
		cr.GetGroups(), capStr(cr.GetCapEff()))
}

var rlimitNames = [...]string{
	"CPU", "FSIZE", "DATA", "STACK", "CORE", "RSS", "NPROC", "NOFILE",
	"MEMLOCK", "AS", "LOCKS", "SIGPENDING", "MSGQUEUE", "NICE", "RTPRIO", "RTTIME",
}

const rlimInfinity = ^uint64(0)

func limStr(v uint64) string {
	if v == rlimInfinity {
		return "unlimited"
	}
	return fmt.Sprint(v)
}

func printRlimits(w io.Writer, tc *criucore.TaskCoreEntry) {
	var parts []string
	for i, r := range tc.GetRlimits().GetRlimits() {
		if r.GetCur() == rlimInfinity && r.GetMax() == rlimInfinity {
			continue
		}
		name := fmt.Sprintf("rlimit %d", i)
		if i < len(rlimitNames) {
			name = rlimitNames[i]
		}
		parts = append(parts, fmt.Sprintf("%s %s/%s", name, limStr(r.GetCur()), limStr(r.GetMax())))
	}
	if len(parts) == 0 {
		fmt.Fprintf(w, "  rlimits: all unlimited\n")
		return
	}
	fmt.Fprintf(w, "  rlimits (soft/hard, those not unlimited): %s\n", strings.Join(parts, ", "))
}

// sigactionSignals lists the signals in the order of
// task_core_entry.sigactions: 1..64 without SIGKILL and SIGSTOP.
func sigactionSignals() []int {
	var out []int
	for s := 1; s <= x86.NSig; s++ {
		if s != x86.SigKill && s != x86.SigStop {
			out = append(out, s)
		}
	}
	return out
}

var sigNames = [...]string{
	1: "SIGHUP", "SIGINT", "SIGQUIT", "SIGILL", "SIGTRAP", "SIGABRT", "SIGBUS", "SIGFPE",
	"SIGKILL", "SIGUSR1", "SIGSEGV", "SIGUSR2", "SIGPIPE", "SIGALRM", "SIGTERM", "SIGSTKFLT",
	"SIGCHLD", "SIGCONT", "SIGSTOP", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGURG", "SIGXCPU",
	"SIGXFSZ", "SIGVTALRM", "SIGPROF", "SIGWINCH", "SIGIO", "SIGPWR", "SIGSYS",
}

func sigName(sig int) string {
	if sig > 0 && sig < len(sigNames) {
		return sigNames[sig]
	}
	if sig >= 32 && sig <= x86.NSig {
		return fmt.Sprintf("SIGRTMIN+%d", sig-32)
	}
	return fmt.Sprintf("signal %d", sig)
}

// sigaction flags (arch/x86/include/uapi/asm/signal.h).
var saFlags = []struct {
	bit  uint64
	name string
}{
	{0x1, "SA_NOCLDSTOP"}, {0x2, "SA_NOCLDWAIT"}, {0x4, "SA_SIGINFO"},
	{0x400, "SA_UNSUPPORTED"}, {0x800, "SA_EXPOSE_TAGBITS"},
	{x86.SaIA32ABI, "SA_IA32_ABI"}, {x86.SaRestorer, "SA_RESTORER"}, {0x08000000, "SA_ONSTACK"},
	{0x10000000, "SA_RESTART"}, {0x40000000, "SA_NODEFER"}, {0x80000000, "SA_RESETHAND"},
}

func saFlagsStr(f uint64) string {
	var parts []string
	for _, o := range saFlags {
		if f&o.bit != 0 {
			parts = append(parts, o.name)
			f &^= o.bit
		}
	}
	if f != 0 {
		parts = append(parts, fmt.Sprintf("%#x", f))
	}
	if len(parts) == 0 {
		return "0"
	}
	return strings.Join(parts, "|")
}

func printSigactions(w io.Writer, tc *criucore.TaskCoreEntry) {
	sigs := sigactionSignals()
	var lines []string
	for i, sa := range tc.GetSigactions() {
		if sa.GetSigaction() == 0 { // SIG_DFL
			continue
		}
		sig := fmt.Sprintf("entry %d", i)
		if i < len(sigs) {
			sig = sigName(sigs[i])
		}
		h := fmt.Sprintf("handler %#x", sa.GetSigaction())
		if sa.GetSigaction() == 1 {
			h = "SIG_IGN"
		}
		l := fmt.Sprintf("    %s: %s, flags %s", sig, h, saFlagsStr(sa.GetFlags()))
		if sa.GetMask() != 0 {
			l += fmt.Sprintf(", mask %#x", sa.GetMask())
		}
		if sa.GetCompatSigaction() {
			l += ", ia32"
		}
		lines = append(lines, l)
	}
	fmt.Fprintf(w, "  sigactions other than SIG_DFL: %d\n", len(lines))
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
}

// sizes returns the bytes of all image files, of the pages images and
// the number of image files.
func (s *summary) sizes() (total, pages int64, n int) {
	ents, _ := os.ReadDir(s.dir)
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".img") {
			continue
		}
		fi, err := e.Info()
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		n++
		total += fi.Size()
		if strings.HasPrefix(e.Name(), "pages-") {
			pages += fi.Size()
		}
	}
	return total, pages, n
}

func bytesStr(n int64) string {
	switch {
	case n >= 10<<20 || (n >= 1<<20 && n%(1<<20) == 0):
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 10<<10 || (n >= 1<<10 && n%(1<<10) == 0):
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// loadedThreads lists the threads of a loaded dump, the leader first.
func loadedThreads(im *model.Process) []thread {
	out := []thread{{im.Pid, im.Core}}
	for i, c := range im.Threads {
		out = append(out, thread{im.Tids[i], c})
	}
	return out
}

// vdsoImage describes the dumped vDSO image: ABI, size and symbols.
func (t *task) vdsoImage() string {
	_, _, b, err := t.DumpedVDSO()
	if err != nil {
		return fmt.Sprintf("no image: %v", err)
	}
	v, err := vdso.Parse(b)
	if err != nil {
		return fmt.Sprintf("unreadable image: %v", err)
	}
	abi := "x86_64"
	if v.Class == elf.ELFCLASS32 {
		abi = "ia32"
	}
	return fmt.Sprintf("%s image, %d bytes, %d symbols: %s", abi, v.Size, len(v.Symbols), strings.Join(v.Names(), " "))
}

// ttyName names the terminal of tty-info id: a pty end of the tree's own
// with its dumped number and the bytes queued for its reader, or a
// terminal the restore gives.
func (s *summary) ttyName(id uint32) string {
	ti := s.TtyInfos[id]
	name := "tty (inherited)"
	switch {
	case ti.GetType() == tty.TtyType_PTY && unix.Major(uint64(ti.GetRdev())) == 5:
		name = fmt.Sprintf("pty master of /dev/pts/%d", ti.GetPty().GetIndex())
	case ti.GetType() == tty.TtyType_PTY:
		name = fmt.Sprintf("/dev/pts/%d (pty slave)", ti.GetPty().GetIndex())
	case ti.GetType() == tty.TtyType_CTTY:
		name = "/dev/tty (inherited)"
	}
	if n := len(s.TtyData[id]); n > 0 {
		name += fmt.Sprintf(", %d bytes queued", n)
	}
	return name
}

// posixMQSummary describes a POSIX message queue of posix-mq.img.
func posixMQSummary(q *model.PosixMQ) string {
	out := fmt.Sprintf("POSIX message queue /%s", q.Name)
	if q.Unlinked {
		out += " (unlinked)"
	}
	out += fmt.Sprintf(" mode %#o mq_maxmsg %d mq_msgsize %d", q.Mode, q.MaxMsg, q.MsgSize)
	if q.Outside {
		out += ", held outside the tree: its messages stayed in it"
	} else {
		out += fmt.Sprintf(", %d messages queued", len(q.Msgs))
	}
	if n := q.Notify; n != nil {
		out += fmt.Sprintf(", mq_notify for %d (sigev_notify %d, signal %d, value %#x)", n.Pid, n.Notify, n.Signo, n.Value)
	}
	return out
}

// sysvSummary names the SysV IPC objects of an IPC namespace: each by
// id and key, with its size, values or number of messages.
func sysvSummary(sv *model.SysV) string {
	var parts []string
	for _, o := range sv.Shm {
		e := o.Entry.GetDesc()
		mark := ""
		if e.GetMode()&uapi.SHM_DEST != 0 {
			mark = ", marked for removal"
		}
		parts = append(parts, fmt.Sprintf("shm %d key %#x mode %o %d bytes%s", e.GetId(), e.GetKey(), e.GetMode()&0o777, o.Entry.GetSize(), mark))
	}
	for _, o := range sv.Sem {
		e := o.Entry.GetDesc()
		parts = append(parts, fmt.Sprintf("sem %d key %#x mode %o values %v", e.GetId(), e.GetKey(), e.GetMode()&0o777, o.Values))
	}
	for _, o := range sv.Msg {
		e := o.Entry.GetDesc()
		parts = append(parts, fmt.Sprintf("msg %d key %#x mode %o %d messages", e.GetId(), e.GetKey(), e.GetMode()&0o777, len(o.Msgs)))
	}
	return strings.Join(parts, "; ")
}
