package dump

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	criucore "github.com/checkpoint-restore/go-criu/v8/crit/images/criu-core"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/eventfd"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/eventpoll"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/fdinfo"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/fown"
	fsimg "github.com/checkpoint-restore/go-criu/v8/crit/images/fs"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/mm"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/pagemap"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/pipe"
	pipedata "github.com/checkpoint-restore/go-criu/v8/crit/images/pipe-data"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/pstree"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/regfile"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/signalfd"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/timerfd"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/tty"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/vma"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/image"
	"github.com/ckpt/ckpt/internal/procfs"
	"github.com/ckpt/ckpt/internal/ptrace"
)

// fileTable assigns ids to the files of files.img.
type fileTable struct {
	entries []*fdinfo.FileEntry
	byKey   map[string]uint32
	// open are the fds dumped so far, of every process: an fd that shares
	// its open file description with one of them gets the same id.
	open []openFD
	// shmem holds the content of every shared anonymous memory object.
	shmem     []shmemObject
	shmemSeen map[uint64]bool
	// pipes holds the buffered data and size of every pipe, by inode.
	pipes     []*pipedata.PipeDataEntry
	pipeBytes [][]byte
	pipeSeen  map[uint32]bool
}

// shmemObject is the content of a shared anonymous memory object.
type shmemObject struct {
	ino  uint64
	data []byte
}

// saveShmem reads, once per object, the whole content of the shmem object
// behind a MAP_SHARED|MAP_ANONYMOUS mapping, through /proc/PID/map_files
// (pages other processes touched included).
func (ft *fileTable) saveShmem(pid int, v procfs.VMA) error {
	if ft.shmemSeen == nil {
		ft.shmemSeen = map[uint64]bool{}
	}
	if ft.shmemSeen[v.Inode] {
		return nil
	}
	ft.shmemSeen[v.Inode] = true
	f, err := os.Open(fmt.Sprintf("/proc/%d/map_files/%x-%x", pid, v.Start, v.End))
	if err != nil {
		return fmt.Errorf("open shared memory: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	data := make([]byte, fi.Size())
	if _, err := f.ReadAt(data, 0); err != nil {
		return fmt.Errorf("read shared memory (%d bytes): %w", len(data), err)
	}
	ft.shmem = append(ft.shmem, shmemObject{v.Inode, data})
	return nil
}

// savePipeData copies, once per pipe, the bytes buffered in it without
// taking them out: tee(2) from the pipe (opened anew through /proc) into
// a pipe of ckpt's own, which is then read.
func (ft *fileTable) savePipeData(pid, fd int, pipeID uint32) error {
	if ft.pipeSeen == nil {
		ft.pipeSeen = map[uint32]bool{}
	}
	if ft.pipeSeen[pipeID] {
		return nil
	}
	ft.pipeSeen[pipeID] = true
	src, err := unix.Open(fmt.Sprintf("/proc/%d/fd/%d", pid, fd), unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open the pipe: %w", err)
	}
	defer unix.Close(src)
	size, err := unix.FcntlInt(uintptr(src), unix.F_GETPIPE_SZ, 0)
	if err != nil {
		return fmt.Errorf("pipe size: %w", err)
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		return err
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	if _, err := unix.FcntlInt(uintptr(p[1]), unix.F_SETPIPE_SZ, size); err != nil {
		return fmt.Errorf("size a pipe for %d bytes: %w", size, err)
	}
	n, err := unix.Tee(src, p[1], size, unix.SPLICE_F_NONBLOCK)
	if err == unix.EAGAIN {
		n, err = 0, nil // an empty pipe
	}
	if err != nil || n < 0 {
		return fmt.Errorf("tee: %v", err)
	}
	data := make([]byte, n)
	for got := 0; got < int(n); {
		k, err := unix.Read(p[0], data[got:])
		if err != nil || k == 0 {
			return fmt.Errorf("read the pipe's copy: %v", err)
		}
		got += k
	}
	ft.pipes = append(ft.pipes, &pipedata.PipeDataEntry{PipeId: proto.Uint32(pipeID), Bytes: proto.Uint32(uint32(n)), Size: proto.Uint32(uint32(size))})
	ft.pipeBytes = append(ft.pipeBytes, data)
	return nil
}

type openFD struct {
	pid int
	f   openFile
	id  uint32
}

func (ft *fileTable) reg(path string, flags uint32, pos uint64, st *unix.Stat_t) uint32 {
	key := fmt.Sprintf("%s\x00%d\x00%d", path, flags, pos)
	if id, ok := ft.byKey[key]; ok && pos == 0 {
		return id
	}
	id := uint32(len(ft.entries) + 1)
	ft.byKey[key] = id
	ft.entries = append(ft.entries, &fdinfo.FileEntry{
		Type: fdinfo.FdTypes_REG.Enum(),
		Id:   proto.Uint32(id),
		Reg: &regfile.RegFileEntry{
			Id:    proto.Uint32(id),
			Flags: proto.Uint32(flags),
			Pos:   proto.Uint64(pos),
			Fown:  noOwner(),
			Name:  proto.String(path),
			Size:  proto.Uint64(uint64(st.Size)),
			Mode:  proto.Uint32(st.Mode),
		},
	})
	return id
}

func noOwner() *fown.FownEntry {
	z := proto.Uint32(0)
	return &fown.FownEntry{Uid: z, Euid: z, Signum: z, PidType: z, Pid: z}
}

// collectAndWrite dumps one frozen process: its own images (core, mm,
// pagemap, pages, fdinfo, fs, ids). Files go into the shared table ft;
// the pstree entry is returned for pstree.img.
func (t *task) collectAndWrite(ft *fileTable, stats *Stats) (*pstree.PstreeEntry, error) {
	pid := t.pid
	dir := image.Dir{Path: t.opts.ImagesDir}
	vmas, err := procfs.ReadSmaps(pid)
	if err != nil {
		return nil, err
	}
	var threads []*threadState
	for _, tid := range t.tids {
		th, err := t.readThread(tid)
		if err != nil {
			return nil, fmt.Errorf("thread %d: %w", tid, err)
		}
		if err := t.queryTask(th, vmas); err != nil {
			return nil, fmt.Errorf("thread %d: %w", tid, err)
		}
		// Put each thread back as it was before the next one and before
		// memory is read, so the pages saved are the task's own.
		if err := t.inj.End(); err != nil {
			return nil, fmt.Errorf("thread %d: finish injection: %w", tid, err)
		}
		t.inj = nil
		threads = append(threads, th)
	}
	th := threads[0]
	// The scratch data mapping is gone again; read the maps anew.
	if vmas, err = procfs.ReadSmaps(pid); err != nil {
		return nil, err
	}
	rlims, err := procfs.ReadLimits(pid)
	if err != nil {
		return nil, err
	}
	pers, err := procfs.ReadPersonality(pid)
	if err != nil {
		return nil, err
	}
	auxvRaw, err := procfs.ReadAuxvRaw(pid)
	if err != nil {
		return nil, err
	}
	word := 8
	if th.compat {
		word = 4
	}
	auxv, err := procfs.ParseAuxv(auxvRaw, word)
	if err != nil {
		return nil, fmt.Errorf("auxv: %w", err)
	}

	exeID := ft.reg(t.exe, unix.O_RDONLY, 0, &t.exeSt)

	vmaEntries, err := t.dumpMemory(dir, vmas, ft, stats)
	if err != nil {
		return nil, err
	}

	var savedAuxv []uint64
	for _, a := range auxv {
		savedAuxv = append(savedAuxv, a.Type, a.Value)
	}
	savedAuxv = append(savedAuxv, 0, 0)
	s := t.stat
	mmEntry := &mm.MmEntry{
		MmStartCode: proto.Uint64(s.StartCode), MmEndCode: proto.Uint64(s.EndCode),
		MmStartData: proto.Uint64(s.StartData), MmEndData: proto.Uint64(s.EndData),
		MmStartStack: proto.Uint64(s.StartStack), MmStartBrk: proto.Uint64(s.StartBrk),
		MmBrk:      proto.Uint64(th.injected.brk),
		MmArgStart: proto.Uint64(s.ArgStart), MmArgEnd: proto.Uint64(s.ArgEnd),
		MmEnvStart: proto.Uint64(s.EnvStart), MmEnvEnd: proto.Uint64(s.EnvEnd),
		ExeFileId:   proto.Uint32(exeID),
		MmSavedAuxv: savedAuxv,
		Vmas:        vmaEntries,
		Dumpable:    proto.Int32(th.injected.dumpable),
	}

	var fdEntries []proto.Message
	if t.filesOf == 0 {
		if fdEntries, err = t.fileEntries(ft); err != nil {
			return nil, err
		}
	}
	fsEntry, err := t.fsEntry(ft)
	if err != nil {
		return nil, err
	}

	id := proto.Uint32(uint32(t.index))
	ids := &criucore.TaskKobjIdsEntry{VmId: id, FilesId: id, FsId: id, SighandId: id}
	if t.filesOf != 0 {
		ids.FilesId = proto.Uint32(uint32(t.filesOf))
	}
	if t.fsOf != 0 {
		ids.FsId = proto.Uint32(uint32(t.fsOf))
	}
	if t.ns {
		ids.PidNsId = proto.Uint32(ownPidNsID)
	}
	var cores []proto.Message
	var tids []uint32
	for _, ts := range threads {
		c, err := t.coreEntry(ts, th, rlims, pers)
		if err != nil {
			return nil, fmt.Errorf("thread %d: %w", ts.tid, err)
		}
		c.Ids = ids
		cores = append(cores, c)
		tids = append(tids, uint32(t.virt(ts.status.NSpid, ts.tid)))
	}
	vpid, ppid, pgid, sid := t.treeIDs()
	ps := &pstree.PstreeEntry{
		Pid: proto.Uint32(uint32(vpid)), Ppid: proto.Uint32(uint32(ppid)),
		Pgid: proto.Uint32(uint32(pgid)), Sid: proto.Uint32(uint32(sid)),
		Threads: tids,
	}
	writes := []struct {
		name, kind string
		msgs       []proto.Message
	}{
		{image.IDsName(vpid), image.MagicIDs, []proto.Message{ids}},
		{image.MMName(vpid), image.MagicMM, []proto.Message{mmEntry}},
		{image.FSName(vpid), image.MagicFS, []proto.Message{fsEntry}},
	}
	if t.filesOf == 0 {
		writes = append(writes, struct {
			name, kind string
			msgs       []proto.Message
		}{image.FdinfoName(uint32(t.index)), image.MagicFdinfo, fdEntries})
	}
	for i, c := range cores {
		if err := dir.Write(image.CoreName(int(tids[i])), image.MagicCore, c); err != nil {
			return nil, err
		}
	}
	for _, w := range writes {
		if err := dir.Write(w.name, w.kind, w.msgs...); err != nil {
			return nil, err
		}
	}
	return ps, nil
}

// vmaProt converts maps permissions to PROT_* bits.
func vmaProt(v procfs.VMA) uint32 {
	var p uint32
	if v.Read {
		p |= unix.PROT_READ
	}
	if v.Write {
		p |= unix.PROT_WRITE
	}
	if v.Exec {
		p |= unix.PROT_EXEC
	}
	return p
}

// dumpMemory classifies every VMA, writes the pages that hold data to
// pages-1.img and returns the vma entries for mm-PID.img.
func (t *task) dumpMemory(dir image.Dir, vmas []procfs.SmapsEntry, ft *fileTable, stats *Stats) ([]*vma.VmaEntry, error) {
	pid := t.pid
	pmf, err := procfs.OpenPagemap(pid)
	if err != nil {
		return nil, err
	}
	defer pmf.Close()
	mem, err := ptrace.OpenMem(pid)
	if err != nil {
		return nil, fmt.Errorf("open memory: %w", err)
	}
	defer mem.Close()
	pagesID := uint32(t.index)
	pf, err := dir.CreatePages(pagesID)
	if err != nil {
		return nil, err
	}
	defer pf.Close()
	pw := bufio.NewWriterSize(pf, 1<<20)
	pmEntries := []proto.Message{&pagemap.PagemapHead{PagesId: proto.Uint32(pagesID)}}

	var out []*vma.VmaEntry
	buf := make([]byte, 4<<20)
	for _, se := range vmas {
		v := se.VMA
		if v.Path == "[vsyscall]" {
			continue
		}
		e := &vma.VmaEntry{
			Start: proto.Uint64(v.Start), End: proto.Uint64(v.End),
			Pgoff: proto.Uint64(v.Offset), Shmid: proto.Uint64(0),
			Prot: proto.Uint32(vmaProt(v)), Fd: proto.Int64(-1),
		}
		var flags, status uint32
		status = image.VMAAreaRegular
		if v.Shared {
			flags = unix.MAP_SHARED
		} else {
			flags = unix.MAP_PRIVATE
		}
		if se.HasFlag("gd") {
			flags |= unix.MAP_GROWSDOWN
		}
		if se.HasFlag("nr") {
			flags |= unix.MAP_NORESERVE
		}
		dumpPages, anonOnly, wholeVMA := false, false, false
		switch {
		case v.Path == "[vdso]":
			status |= image.VMAAreaVDSO
			flags |= unix.MAP_ANONYMOUS
			// Saved whole: a restore on another kernel reads the dumped
			// vDSO's symbols from it to build trampolines.
			dumpPages, wholeVMA = true, true
		case v.Path == "[vvar]" || v.Path == "[vvar_vclock]":
			status |= image.VMAAreaVVAR
			flags |= unix.MAP_ANONYMOUS
		case v.IsSpecial():
			return nil, fmt.Errorf("vma %#x-%#x %s: special mapping not supported", v.Start, v.End, v.Path)
		case v.Shared && (v.Path == "/dev/zero (deleted)" || strings.HasPrefix(v.Path, "[anon_shmem:")):
			// MAP_SHARED|MAP_ANONYMOUS: a shmem object, maybe shared with
			// other processes of the tree; its content is saved once.
			flags |= unix.MAP_ANONYMOUS
			status |= image.VMAAnonShared
			e.Shmid = proto.Uint64(v.Inode)
			if err := ft.saveShmem(pid, v); err != nil {
				return nil, fmt.Errorf("vma %#x-%#x: %w", v.Start, v.End, err)
			}
		case v.Inode == 0 || v.Path == "" || strings.HasPrefix(v.Path, "[anon:") || v.Path == "[heap]" || v.Path == "[stack]":
			if v.Shared {
				return nil, fmt.Errorf("vma %#x-%#x: shared anonymous memory is not supported yet", v.Start, v.End)
			}
			flags |= unix.MAP_ANONYMOUS
			status |= image.VMAAnonPrivate
			if v.Path == "[heap]" {
				status |= image.VMAAreaHeap
			}
			if v.Path == "[stack]" {
				status |= image.VMAAreaStack
			}
			dumpPages = true
		default:
			if v.Deleted() {
				return nil, fmt.Errorf("vma %#x-%#x maps %s: deleted files are not supported yet", v.Start, v.End, v.Path)
			}
			if !strings.HasPrefix(v.Path, "/") {
				return nil, fmt.Errorf("vma %#x-%#x maps %s: not a file path", v.Start, v.End, v.Path)
			}
			var st unix.Stat_t
			mf := fmt.Sprintf("/proc/%d/map_files/%x-%x", pid, v.Start, v.End)
			if err := unix.Stat(mf, &st); err != nil {
				return nil, fmt.Errorf("vma %#x-%#x: stat %s: %w", v.Start, v.End, v.Path, err)
			}
			if st.Mode&unix.S_IFMT != unix.S_IFREG && st.Mode&unix.S_IFMT != unix.S_IFCHR {
				return nil, fmt.Errorf("vma %#x-%#x maps %s: not a regular file", v.Start, v.End, v.Path)
			}
			oflags := uint32(unix.O_RDONLY)
			if v.Shared {
				status |= image.VMAFileShared
				if v.Write {
					oflags = unix.O_RDWR
				}
			} else {
				status |= image.VMAFilePrivate
				dumpPages, anonOnly = true, true
			}
			e.Shmid = proto.Uint64(uint64(ft.reg(v.Path, oflags, 0, &st)))
			e.Fdflags = proto.Uint32(oflags)
		}
		e.Flags = proto.Uint32(flags)
		e.Status = proto.Uint32(status)
		if madv := madvBits(se); madv != 0 {
			e.Madv = proto.Uint64(madv)
		}
		out = append(out, e)
		if !dumpPages {
			continue
		}
		pm, err := procfs.PagemapEntries(pmf, v.Start, v.End)
		if err != nil {
			return nil, fmt.Errorf("vma %#x-%#x: %w", v.Start, v.End, err)
		}
		keep := func(p procfs.PagemapEntry) bool {
			if wholeVMA || p.Swapped() {
				return true
			}
			if !p.Present() {
				return false
			}
			// In a private file mapping only pages copied on write hold
			// data of the task's own; the rest comes from the file.
			return !anonOnly || !p.FileOrShared()
		}
		for i := 0; i < len(pm); {
			if !keep(pm[i]) {
				i++
				continue
			}
			j := i
			for j < len(pm) && keep(pm[j]) {
				j++
			}
			start := v.Start + uint64(i)*x86.PageSize
			n := uint64(j - i)
			if err := copyPages(mem, pw, buf, start, n*x86.PageSize); err != nil {
				return nil, fmt.Errorf("dump vma %#x-%#x: %w", v.Start, v.End, err)
			}
			pmEntries = append(pmEntries, &pagemap.PagemapEntry{
				Vaddr: proto.Uint64(start), NrPages: proto.Uint64(n),
				CompatNrPages: proto.Uint32(uint32(n)), Flags: proto.Uint32(image.PEPresent),
			})
			stats.PagesWritten += n
			i = j
		}
	}
	if err := pw.Flush(); err != nil {
		return nil, fmt.Errorf("write pages image: %w", err)
	}
	if err := pf.Sync(); err != nil {
		return nil, fmt.Errorf("sync pages image: %w", err)
	}
	if err := dir.Write(image.PagemapName(t.vpid()), image.MagicPagemap, pmEntries...); err != nil {
		return nil, err
	}
	return out, nil
}

// vmFlagAdvice maps VmFlags tokens of smaps (fs/proc/task_mmu.c) to the
// madvise(2) advice that sets them; vma_entry.madv is a bitmap of
// 1<<advice.
var vmFlagAdvice = map[string]int{
	"sr": unix.MADV_SEQUENTIAL,
	"rr": unix.MADV_RANDOM,
	"dc": unix.MADV_DONTFORK,
	"mg": unix.MADV_MERGEABLE,
	"hg": unix.MADV_HUGEPAGE,
	"nh": unix.MADV_NOHUGEPAGE,
	"dd": unix.MADV_DONTDUMP,
	"wf": unix.MADV_WIPEONFORK,
}

func madvBits(se procfs.SmapsEntry) uint64 {
	var m uint64
	for tok, adv := range vmFlagAdvice {
		if se.HasFlag(tok) {
			m |= 1 << uint(adv)
		}
	}
	return m
}

func copyPages(mem *ptrace.Mem, w *bufio.Writer, buf []byte, addr, size uint64) error {
	for size > 0 {
		n := min(size, uint64(len(buf)))
		if err := mem.ReadAt(buf[:n], addr); err != nil {
			return err
		}
		if _, err := w.Write(buf[:n]); err != nil {
			return fmt.Errorf("write pages image: %w", err)
		}
		addr += n
		size -= n
	}
	return nil
}

// efdSemaphore is EFD_SEMAPHORE (include/uapi/linux/eventfd.h); eventfd
// files are always O_RDWR, so the bit is free in the stored f_flags.
const efdSemaphore = 1

// epollTargets lists what an epoll fd watches. Each target is named by
// the fd number it was added with; that fd must still hold the same file,
// or the restore could not add it back.
func (t *task) epollTargets(f openFile) ([]*eventpoll.EventpollTfdEntry, error) {
	targets, err := procfs.ParseEpollTargets(f.info)
	if err != nil {
		return nil, err
	}
	var out []*eventpoll.EventpollTfdEntry
	for _, tg := range targets {
		var st unix.Stat_t
		if err := unix.Stat(fmt.Sprintf("/proc/%d/fd/%d", t.pid, tg.Fd), &st); err != nil || st.Ino != tg.Ino {
			return nil, fmt.Errorf("watched fd %d was closed or replaced since it was added: not supported yet", tg.Fd)
		}
		out = append(out, &eventpoll.EventpollTfdEntry{
			Tfd: proto.Uint32(uint32(tg.Fd)), Events: proto.Uint32(tg.Events), Data: proto.Uint64(tg.Data),
			Inode: proto.Uint64(tg.Ino), Pos: proto.Uint64(uint64(tg.Pos)),
		})
	}
	return out, nil
}

// ownPidNsID marks, in task_kobj_ids_entry.pid_ns_id, a task of a tree
// that runs in a PID namespace of its own.
const ownPidNsID = 2

// fdFlagCloexec is FD_CLOEXEC as fdinfo_entry.flags stores it.
const fdFlagCloexec = 1

// kcmpFile is KCMP_FILE (include/uapi/linux/kcmp.h).
const kcmpFile = 0

// sameFile reports whether fd1 of pid1 and fd2 of pid2 share one open
// file description (dup'ed or inherited fds share offset and flags), with
// kcmp(2).
func sameFile(pid1, fd1, pid2, fd2 int) bool {
	r, _, e := unix.Syscall6(unix.SYS_KCMP, uintptr(pid1), uintptr(pid2), kcmpFile, uintptr(fd1), uintptr(fd2), 0)
	return e == 0 && r == 0
}

func (t *task) fileEntries(ft *fileTable) ([]proto.Message, error) {
	var out []proto.Message
	for _, f := range t.files {
		shared := uint32(0)
		for _, p := range ft.open {
			if p.f.kind == f.kind && p.f.st.Dev == f.st.Dev && p.f.st.Ino == f.st.Ino && p.f.st.Rdev == f.st.Rdev && sameFile(p.pid, p.f.fd, t.pid, f.fd) {
				shared = p.id
				break
			}
		}
		flags := f.info.Flags
		fdFlags := uint32(0)
		if flags&unix.O_CLOEXEC != 0 {
			fdFlags = fdFlagCloexec
		}
		flags &^= unix.O_CLOEXEC
		var id uint32
		typ := fdinfo.FdTypes_REG
		switch {
		case shared != 0:
			id = shared
			switch f.kind {
			case fileEventfd:
				typ = fdinfo.FdTypes_EVENTFD
			case fileEpoll:
				typ = fdinfo.FdTypes_EVENTPOLL
			case filePipe:
				typ = fdinfo.FdTypes_PIPE
			case fileTimerfd:
				typ = fdinfo.FdTypes_TIMERFD
			case fileSignalfd:
				typ = fdinfo.FdTypes_SIGNALFD
			}
			if f.kind == fileInherit {
				typ = fdinfo.FdTypes_TTY
				if f.isPipe {
					typ = fdinfo.FdTypes_PIPE
				}
			}
		case f.kind == fileReg || f.kind == fileChr:
			id = uint32(len(ft.entries) + 1)
			st := f.st
			ft.entries = append(ft.entries, &fdinfo.FileEntry{
				Type: fdinfo.FdTypes_REG.Enum(), Id: proto.Uint32(id),
				Reg: &regfile.RegFileEntry{
					Id: proto.Uint32(id), Flags: proto.Uint32(flags), Pos: proto.Uint64(uint64(f.info.Pos)),
					Fown: noOwner(), Name: proto.String(f.path), Size: proto.Uint64(uint64(st.Size)),
					Mode: proto.Uint32(st.Mode),
				},
			})
		case f.kind == fileEventfd:
			typ = fdinfo.FdTypes_EVENTFD
			id = uint32(len(ft.entries) + 1)
			e, err := procfs.ParseEventfd(f.info)
			if err != nil {
				return nil, fmt.Errorf("fd %d (eventfd): %w", f.fd, err)
			}
			fl := flags
			if e.Semaphore {
				fl |= efdSemaphore
			}
			ft.entries = append(ft.entries, &fdinfo.FileEntry{
				Type: typ.Enum(), Id: proto.Uint32(id),
				Efd: &eventfd.EventfdFileEntry{Id: proto.Uint32(id), Flags: proto.Uint32(fl), Fown: noOwner(), Counter: proto.Uint64(e.Count)},
			})
		case f.kind == fileEpoll:
			typ = fdinfo.FdTypes_EVENTPOLL
			id = uint32(len(ft.entries) + 1)
			tfds, err := t.epollTargets(f)
			if err != nil {
				return nil, fmt.Errorf("fd %d (epoll): %w", f.fd, err)
			}
			for _, e := range tfds {
				e.Id = proto.Uint32(id)
			}
			ft.entries = append(ft.entries, &fdinfo.FileEntry{
				Type: typ.Enum(), Id: proto.Uint32(id),
				Epfd: &eventpoll.EventpollFileEntry{Id: proto.Uint32(id), Flags: proto.Uint32(flags), Fown: noOwner(), Tfd: tfds},
			})
		case f.kind == fileTimerfd:
			typ = fdinfo.FdTypes_TIMERFD
			id = uint32(len(ft.entries) + 1)
			tf, err := procfs.ParseTimerfd(f.info)
			if err != nil {
				return nil, fmt.Errorf("fd %d (timerfd): %w", f.fd, err)
			}
			ft.entries = append(ft.entries, &fdinfo.FileEntry{
				Type: typ.Enum(), Id: proto.Uint32(id),
				Tfd: &timerfd.TimerfdEntry{
					Id: proto.Uint32(id), Flags: proto.Uint32(flags), Fown: noOwner(),
					Clockid: proto.Uint32(uint32(tf.ClockID)), Ticks: proto.Uint64(tf.Ticks), SettimeFlags: proto.Uint32(tf.SettimeFlags),
					Vsec: proto.Uint64(tf.ValueSec), Vnsec: proto.Uint64(tf.ValueNsec), Isec: proto.Uint64(tf.IntervalSec), Insec: proto.Uint64(tf.IntvNsec),
				},
			})
		case f.kind == fileSignalfd:
			typ = fdinfo.FdTypes_SIGNALFD
			id = uint32(len(ft.entries) + 1)
			mask, err := procfs.ParseSignalfd(f.info)
			if err != nil {
				return nil, fmt.Errorf("fd %d (signalfd): %w", f.fd, err)
			}
			ft.entries = append(ft.entries, &fdinfo.FileEntry{
				Type: typ.Enum(), Id: proto.Uint32(id),
				Sgfd: &signalfd.SignalfdEntry{Id: proto.Uint32(id), Flags: proto.Uint32(flags), Fown: noOwner(), Sigmask: proto.Uint64(mask)},
			})
		case f.kind == filePipe:
			typ = fdinfo.FdTypes_PIPE
			id = uint32(len(ft.entries) + 1)
			pipeID := uint32(f.st.Ino)
			if err := ft.savePipeData(t.pid, f.fd, pipeID); err != nil {
				return nil, fmt.Errorf("fd %d (pipe): %w", f.fd, err)
			}
			ft.entries = append(ft.entries, &fdinfo.FileEntry{
				Type: typ.Enum(), Id: proto.Uint32(id),
				Pipe: &pipe.PipeEntry{Id: proto.Uint32(id), PipeId: proto.Uint32(pipeID), Flags: proto.Uint32(flags), Fown: noOwner()},
			})
		case f.kind == fileInherit:
			id = uint32(len(ft.entries) + 1)
			fe := &fdinfo.FileEntry{Id: proto.Uint32(id)}
			if f.isPipe {
				typ = fdinfo.FdTypes_PIPE
				fe.Pipe = &pipe.PipeEntry{Id: proto.Uint32(id), PipeId: proto.Uint32(uint32(f.st.Ino)), Flags: proto.Uint32(flags), Fown: noOwner()}
			} else {
				typ = fdinfo.FdTypes_TTY
				fe.Tty = &tty.TtyFileEntry{Id: proto.Uint32(id), TtyInfoId: proto.Uint32(0), Flags: proto.Uint32(flags), Fown: noOwner()}
			}
			fe.Type = typ.Enum()
			ft.entries = append(ft.entries, fe)
		}
		ft.open = append(ft.open, openFD{t.pid, f, id})
		out = append(out, &fdinfo.FdinfoEntry{
			Id: proto.Uint32(id), Flags: proto.Uint32(fdFlags), Type: typ.Enum(), Fd: proto.Uint32(uint32(f.fd)),
		})
	}
	return out, nil
}

func (t *task) fsEntry(ft *fileTable) (*fsimg.FsEntry, error) {
	pid := t.pid
	ids := [2]uint32{}
	for i, name := range []string{"cwd", "root"} {
		link := fmt.Sprintf("/proc/%d/%s", pid, name)
		path, err := os.Readlink(link)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		if strings.HasSuffix(path, " (deleted)") {
			return nil, fmt.Errorf("%s %s was deleted", name, path)
		}
		var st unix.Stat_t
		if err := unix.Stat(link, &st); err != nil {
			return nil, fmt.Errorf("stat %s: %w", name, err)
		}
		ids[i] = ft.reg(path, unix.O_RDONLY|unix.O_DIRECTORY, 0, &st)
	}
	if !t.status.HasUmask {
		return nil, fmt.Errorf("/proc/%d/status has no Umask line", pid)
	}
	return &fsimg.FsEntry{CwdId: proto.Uint32(ids[0]), RootId: proto.Uint32(ids[1]), Umask: proto.Uint32(t.status.Umask)}, nil
}
