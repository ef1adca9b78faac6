//go:build linux && amd64

package model

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/cpuinfo"
	criucore "github.com/checkpoint-restore/go-criu/v8/crit/images/criu-core"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/fdinfo"
	filelock "github.com/checkpoint-restore/go-criu/v8/crit/images/file-lock"
	fsimg "github.com/checkpoint-restore/go-criu/v8/crit/images/fs"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/inventory"
	ipcvar "github.com/checkpoint-restore/go-criu/v8/crit/images/ipc-var"
	memfdimg "github.com/checkpoint-restore/go-criu/v8/crit/images/memfd"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/mm"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/mnt"
	pipedata "github.com/checkpoint-restore/go-criu/v8/crit/images/pipe-data"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/pstree"
	remap "github.com/checkpoint-restore/go-criu/v8/crit/images/remap-file-path"
	skpacket "github.com/checkpoint-restore/go-criu/v8/crit/images/sk-packet"
	tcpstream "github.com/checkpoint-restore/go-criu/v8/crit/images/tcp-stream"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/timens"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/tty"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/utsns"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/image"
)

// Load reads and checks every image of the dump in dir. A missing or
// corrupt image is an error that names it; a dump that loads but cannot
// be restored on this machine says why in Process.Refused.
func Load(dir string) (*Dump, error) {
	d := &Dump{Dir: image.Dir{Path: dir}}
	if st, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("images directory: %w", err)
	} else if !st.IsDir() {
		return nil, fmt.Errorf("images directory %s: not a directory", dir)
	}
	if _, err := os.Stat(filepath.Join(dir, image.InventoryName())); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s holds no dump: no %s (an unfinished or failed dump leaves none)", dir, image.InventoryName())
	}
	d.Inventory = &inventory.InventoryEntry{}
	if err := d.Dir.ReadOne(image.InventoryName(), image.MagicInventory, d.Inventory); err != nil {
		return nil, err
	}
	if v := d.Inventory.GetImgVersion(); v != image.ImgVersion {
		return nil, fmt.Errorf("inventory.img: image version %d, ckpt reads version %d", v, image.ImgVersion)
	}
	ps, err := image.ReadAll(d.Dir, image.PstreeName(), image.MagicPstree, func() *pstree.PstreeEntry { return &pstree.PstreeEntry{} })
	if err != nil {
		return nil, err
	}
	if len(ps) == 0 {
		return nil, fmt.Errorf("pstree.img has no task")
	}
	if d.exists(image.CpuinfoName()) {
		d.CPU = &cpuinfo.CpuinfoEntry{}
		if err := d.Dir.ReadOne(image.CpuinfoName(), image.MagicCpuinfo, d.CPU); err != nil {
			return nil, err
		}
	}
	if d.exists(image.TimensName(TimensID)) {
		d.Clocks = &timens.TimensEntry{}
		if err := d.Dir.ReadOne(image.TimensName(TimensID), image.MagicTimens, d.Clocks); err != nil {
			return nil, err
		}
	}
	d.TtyInfos = map[uint32]*tty.TtyInfoEntry{}
	if d.exists(image.TtyInfoName()) {
		infos, err := image.ReadAll(d.Dir, image.TtyInfoName(), image.MagicTtyInfo, func() *tty.TtyInfoEntry { return &tty.TtyInfoEntry{} })
		if err != nil {
			return nil, err
		}
		for _, ti := range infos {
			d.TtyInfos[ti.GetId()] = ti
		}
	}
	d.TtyData = map[uint32][]byte{}
	if d.exists(image.TtyDataName()) {
		ents, err := image.ReadAll(d.Dir, image.TtyDataName(), image.MagicTtyData, func() *tty.TtyDataEntry { return &tty.TtyDataEntry{} })
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			d.TtyData[e.GetTtyId()] = e.GetData()
		}
	}
	for id, ti := range d.TtyInfos {
		if b := ttyInfoData(ti); b != nil && d.TtyData[id] == nil {
			d.TtyData[id] = b // an end no file opens (ttydata.go)
		}
	}
	if d.exists(image.FileLocksName()) {
		if d.FileLocks, err = image.ReadAll(d.Dir, image.FileLocksName(), image.MagicFileLocks, func() *filelock.FileLockEntry { return &filelock.FileLockEntry{} }); err != nil {
			return nil, err
		}
	}
	files, err := image.ReadAll(d.Dir, image.FilesName(), image.MagicFiles, func() *fdinfo.FileEntry { return &fdinfo.FileEntry{} })
	if err != nil {
		return nil, err
	}
	d.Files = map[uint32]*fdinfo.FileEntry{}
	for _, f := range files {
		tcpKeepaliveFromOpts(f.GetIsk())
		d.Files[f.GetId()] = f
		if r := f.GetReg(); r != nil {
			at, err := RegLinkedAt(r)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", image.FilesName(), err)
			}
			if at != "" {
				d.SetLinkedAt(f.GetId(), at)
			}
		}
	}
	if d.Pipes, err = d.loadPipeData(image.PipesDataName(), image.MagicPipesData); err != nil {
		return nil, err
	}
	if d.Fifos, err = d.loadPipeData(image.FifoDataName(), image.MagicFifoData); err != nil {
		return nil, err
	}
	if err := d.loadPosixMQs(); err != nil {
		return nil, err
	}
	if err := d.loadGhosts(); err != nil {
		return nil, err
	}
	if d.exists(image.MemfdName()) {
		ms, err := image.ReadAll(d.Dir, image.MemfdName(), image.MagicMemfd, func() *memfdimg.MemfdInodeEntry { return &memfdimg.MemfdInodeEntry{} })
		if err != nil {
			return nil, err
		}
		d.Memfds = map[uint32]*memfdimg.MemfdInodeEntry{}
		for _, m := range ms {
			d.Memfds[uint32(m.GetInodeId())] = m
		}
	}
	d.SkQueues = map[uint32][][]byte{}
	if d.exists(image.SkQueuesName()) {
		ents, data, err := image.ReadWithData(d.Dir, image.SkQueuesName(), image.MagicSkQueues,
			func() *skpacket.SkPacketEntry { return &skpacket.SkPacketEntry{} },
			func(e *skpacket.SkPacketEntry) int { return int(e.GetLength()) })
		if err != nil {
			return nil, err
		}
		for i, e := range ents {
			id := e.GetIdFor()
			d.SkQueues[id] = append(d.SkQueues[id], data[i])
			for _, sc := range e.GetScm() {
				if sc.GetType() != scmRights {
					return nil, fmt.Errorf("%s: message %d of socket %d carries control data of type %d, which ckpt cannot restore", image.SkQueuesName(), i, id, sc.GetType())
				}
				if d.SkScm == nil {
					d.SkScm = map[uint32][][]uint32{}
				}
				for len(d.SkScm[id]) < len(d.SkQueues[id]) {
					d.SkScm[id] = append(d.SkScm[id], nil)
				}
				n := len(d.SkQueues[id]) - 1
				d.SkScm[id][n] = append(d.SkScm[id][n], sc.GetRights()...)
			}
			if a := skAddr(e.ProtoReflect().GetUnknown()); a != nil {
				if d.SkAddrs == nil {
					d.SkAddrs = map[uint32][][]byte{}
				}
				for len(d.SkAddrs[id]) < len(d.SkQueues[id])-1 {
					d.SkAddrs[id] = append(d.SkAddrs[id], nil)
				}
				d.SkAddrs[id] = append(d.SkAddrs[id], a)
			}
		}
	}
	if err := d.loadTcpStreams(); err != nil {
		return nil, err
	}
	seen := map[int]bool{}
	for i, e := range ps {
		p, err := d.loadProc(e)
		if err != nil {
			return nil, err
		}
		if seen[p.Pid] {
			return nil, fmt.Errorf("pstree.img: pid %d twice", p.Pid)
		}
		if i > 0 && !seen[int(e.GetPpid())] {
			return nil, fmt.Errorf("pstree.img: task %d comes before its parent %d", p.Pid, e.GetPpid())
		}
		seen[p.Pid] = true
		d.Procs = append(d.Procs, p)
	}
	if err := d.loadNamespaces(); err != nil {
		return nil, err
	}
	return d, nil
}

// loadNamespaces reads the image of every UTS and IPC namespace that a
// task's ids name.
func (d *Dump) loadNamespaces() error {
	d.UTS = map[uint32]*utsns.UtsnsEntry{}
	d.IPC = map[uint32]*ipcvar.IpcVarEntry{}
	d.Mounts = map[uint32][]*mnt.MntEntry{}
	for _, p := range d.Procs {
		if id := p.IDs.GetMntNsId(); id != 0 && d.Mounts[id] == nil {
			ms, err := image.ReadAll(d.Dir, image.MountpointsName(id), image.MagicMnts, func() *mnt.MntEntry { return &mnt.MntEntry{} })
			if err != nil {
				return fmt.Errorf("task %d's mount namespace %d: %w", p.Pid, id, err)
			}
			if len(ms) == 0 {
				return fmt.Errorf("%s: %w: no mounts", image.MountpointsName(id), image.ErrCorrupt)
			}
			d.Mounts[id] = ms
		}
		if id := p.IDs.GetUtsNsId(); id != 0 && d.UTS[id] == nil {
			e := &utsns.UtsnsEntry{}
			if err := d.Dir.ReadOne(image.UtsnsName(id), image.MagicUtsns, e); err != nil {
				return fmt.Errorf("task %d's UTS namespace %d: %w", p.Pid, id, err)
			}
			d.UTS[id] = e
		}
		if id := p.IDs.GetIpcNsId(); id != 0 && d.IPC[id] == nil {
			e := &ipcvar.IpcVarEntry{}
			if err := d.Dir.ReadOne(image.IpcVarName(id), image.MagicIpcVar, e); err != nil {
				return fmt.Errorf("task %d's IPC namespace %d: %w", p.Pid, id, err)
			}
			if n := len(e.GetSemCtls()); n != 4 {
				return fmt.Errorf("%s: %w: %d sem_ctls, want 4", image.IpcVarName(id), image.ErrCorrupt, n)
			}
			d.IPC[id] = e
			sv, err := d.loadSysV(id)
			if err != nil {
				return fmt.Errorf("task %d's IPC namespace %d: %w", p.Pid, id, err)
			}
			if d.SysV == nil {
				d.SysV = map[uint32]*SysV{}
			}
			d.SysV[id] = sv
		}
	}
	if d.exists(image.IpcShmName(HostIPC)) {
		sv, err := d.loadSysV(HostIPC)
		if err != nil {
			return fmt.Errorf("the SysV objects of the host's IPC namespace: %w", err)
		}
		if d.SysV == nil {
			d.SysV = map[uint32]*SysV{}
		}
		d.SysV[HostIPC] = sv
	}
	return nil
}

func (d *Dump) exists(name string) bool {
	_, err := os.Stat(filepath.Join(d.Dir.Path, name))
	return err == nil
}

func (d *Dump) loadProc(pse *pstree.PstreeEntry) (*Process, error) {
	p := &Process{Tree: d, Pstree: pse, Pid: int(pse.GetPid())}
	var err error
	if p.Pid <= 0 {
		return nil, fmt.Errorf("pstree.img: invalid pid %d", p.Pid)
	}
	p.Core = &criucore.CoreEntry{}
	if err := d.Dir.ReadOne(image.CoreName(p.Pid), image.MagicCore, p.Core); err != nil {
		return nil, err
	}
	if p.Core.GetMtype() != criucore.CoreEntry_X86_64 || p.Core.GetTc() == nil {
		return nil, fmt.Errorf("%s: not an x86_64 task core (mtype %v)", image.CoreName(p.Pid), p.Core.GetMtype())
	}
	// A zombie's thread list is not read (CRIU lists tid 0 for it).
	if th := pse.GetThreads(); p.Core.GetTc().GetTaskState() != TaskDead && (len(th) == 0 || int(th[0]) != p.Pid) {
		return nil, fmt.Errorf("pstree.img: task %d: the thread list does not start with the leader", p.Pid)
	}
	if d.FromCRIU() {
		criuPersonality(p.Core.GetTc())
	}
	if p.Core.GetThreadInfo() == nil && p.Core.GetTc().GetTaskState() != TaskDead {
		return nil, fmt.Errorf("%s: a live task's core without registers", image.CoreName(p.Pid))
	}
	// CRIU keeps a task's ids in ids-PID.img; older dumps only in the core.
	p.IDs = p.Core.GetIds()
	if d.exists(image.IDsName(p.Pid)) {
		p.IDs = &criucore.TaskKobjIdsEntry{}
		if err := d.Dir.ReadOne(image.IDsName(p.Pid), image.MagicIDs, p.IDs); err != nil {
			return nil, err
		}
	}
	// A CRIU dump names the namespaces the tree shares with the dumping
	// tool by root_ids' ids; ckpt's images leave those out (criu.go).
	shareDumpersNamespaces(p.IDs, d.Inventory.GetRootIds())
	if d.FromCRIU() {
		d.criuPidNS(p)
	}
	p.OwnPidNS = p.IDs.GetPidNsId() == OwnPidNsID
	if p.NsPids, err = NsPids(pse); err != nil {
		return nil, err
	}
	switch st := p.Core.GetTc().GetTaskState(); st {
	case TaskAlive:
	case TaskStopped:
		// A group-stopped task: restored, then stopped again by the
		// signal that stopped it (SIGSTOP where a dump did not say).
		p.StopSig = int(p.Core.GetTc().GetStopSigno())
		if !isStopSignal(p.StopSig) {
			if p.StopSig != 0 {
				return nil, fmt.Errorf("%s: stopped task with stop_signo %d, not a stop signal", image.CoreName(p.Pid), p.StopSig)
			}
			p.StopSig = int(x86.SigStop)
		}
	case TaskDead:
		// A zombie: only its place in the tree and its wait status.
		p.Zombie = true
		return p, nil
	default:
		p.Refused = fmt.Errorf("%s: task state %d: only live tasks and zombies can be restored yet", image.CoreName(p.Pid), st)
	}
	if p.NsTids, err = NsTids(pse, len(p.NsPids)); err != nil {
		return nil, err
	}
	if len(p.NsPids) > 0 && len(pse.GetThreads()) > 1 && p.NsTids == nil {
		return nil, fmt.Errorf("pstree.img: task %d: threads in a nested PID namespace without their ids there (ns_tid)", p.Pid)
	}
	for _, tid := range pse.GetThreads()[1:] {
		c := &criucore.CoreEntry{}
		if err := d.Dir.ReadOne(image.CoreName(int(tid)), image.MagicCore, c); err != nil {
			return nil, err
		}
		if c.GetThreadInfo() == nil || c.GetThreadCore() == nil {
			return nil, fmt.Errorf("%s: thread core without registers", image.CoreName(int(tid)))
		}
		p.Threads = append(p.Threads, c)
		p.Tids = append(p.Tids, int(tid))
	}
	p.MM = &mm.MmEntry{}
	if err := d.Dir.ReadOne(image.MMName(p.Pid), image.MagicMM, p.MM); err != nil {
		return nil, err
	}
	dropVsyscall(p.MM)
	if p.PagesID, p.Pagemap, err = d.readPagemap(image.PagemapName(p.Pid)); err != nil {
		return nil, err
	}
	// Pages left in the parent dumps of a pre-copy chain: a broken chain
	// refuses the restore before it begins.
	if p.FromParents, err = p.ParentRuns(); err != nil && p.Refused == nil {
		p.Refused = err
	}
	filesID := p.FilesID()
	if p.Fds, err = image.ReadAll(d.Dir, image.FdinfoName(filesID), image.MagicFdinfo, func() *fdinfo.FdinfoEntry { return &fdinfo.FdinfoEntry{} }); err != nil {
		return nil, err
	}
	for _, fd := range p.Fds {
		if _, ok := d.Files[fd.GetId()]; !ok {
			return nil, fmt.Errorf("%s: fd %d refers to file id %d, which files.img lacks", image.FdinfoName(filesID), fd.GetFd(), fd.GetId())
		}
	}
	p.FS = &fsimg.FsEntry{}
	if err := d.Dir.ReadOne(image.FSName(p.Pid), image.MagicFS, p.FS); err != nil {
		return nil, err
	}
	exe, ok := d.Files[p.MM.GetExeFileId()]
	if !ok || exe.GetReg() == nil {
		return nil, fmt.Errorf("%s: exe file id %d not in files.img", image.MMName(p.Pid), p.MM.GetExeFileId())
	}
	p.ExePath = exe.GetReg().GetName()
	for _, v := range p.MM.GetVmas() {
		if v.GetStart() >= v.GetEnd() || v.GetStart()%x86.PageSize != 0 || v.GetEnd()%x86.PageSize != 0 {
			return nil, fmt.Errorf("%s: bad vma %#x-%#x", image.MMName(p.Pid), v.GetStart(), v.GetEnd())
		}
	}
	if p.Refused == nil {
		p.Refused = d.criuRefusal(p)
	}
	if p.Refused == nil {
		p.readABI()
	}
	return p, nil
}

// isStopSignal tells the signals whose default action stops a task
// (SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU).
func isStopSignal(sig int) bool {
	switch syscall.Signal(sig) {
	case syscall.SIGSTOP, syscall.SIGTSTP, syscall.SIGTTIN, syscall.SIGTTOU:
		return true
	}
	return false
}

// loadGhosts reads remap-fpath.img and the ghost files it names. Only
// ghosts are known, and the unix sockets whose file was renamed (a
// LINKED remap of a socket to a regular-file entry): a dump whose files
// were linked back elsewhere (CRIU's --link-remap) or that refers to
// /proc paths cannot be restored by ckpt.
func (d *Dump) loadGhosts() error {
	if !d.exists(image.RemapPathName()) {
		return nil
	}
	remaps, err := image.ReadAll(d.Dir, image.RemapPathName(), image.MagicRemapPath, func() *remap.RemapFilePathEntry { return &remap.RemapFilePathEntry{} })
	if err != nil {
		return err
	}
	for _, r := range remaps {
		if r.GetRemapType() == remap.RemapType_LINKED {
			// A unix socket whose bound file was renamed: the remap is a
			// regular-file entry naming where the file is (see SkMoved).
			orig, to := d.Files[r.GetOrigId()], d.Files[r.GetRemapId()]
			if orig.GetUsk() != nil && to.GetReg() != nil {
				if d.SkMoved == nil {
					d.SkMoved = map[uint32]string{}
				}
				d.SkMoved[r.GetOrigId()] = to.GetReg().GetName()
				continue
			}
			// A regular file unlinked under one name and linked under
			// another (see Linked).
			if orig.GetReg() != nil && to.GetReg() != nil && r.GetOrigId() != r.GetRemapId() {
				d.SetLinked(r.GetOrigId(), r.GetRemapId())
				continue
			}
		}
		if r.GetRemapType() != remap.RemapType_GHOST {
			return fmt.Errorf("%s: file %d is remapped as %v: only ghost files can be restored", image.RemapPathName(), r.GetOrigId(), r.GetRemapType())
		}
		if f, ok := d.Files[r.GetOrigId()]; !ok || f.GetReg() == nil {
			return fmt.Errorf("%s: file %d is not a regular file of files.img", image.RemapPathName(), r.GetOrigId())
		}
		gid := r.GetRemapId()
		if _, ok := d.Ghosts[gid]; !ok {
			g, err := readGhost(d.Dir, gid)
			if err != nil {
				return err
			}
			if d.Ghosts == nil {
				d.Ghosts = map[uint32]*Ghost{}
			}
			d.Ghosts[gid] = g
		}
		d.SetRemap(r.GetOrigId(), gid)
	}
	return nil
}

// loadPipeData reads pipes-data.img or fifo-data.img, if there.
func (d *Dump) loadPipeData(name, magic string) (map[uint32]PipeData, error) {
	out := map[uint32]PipeData{}
	if !d.exists(name) {
		return out, nil
	}
	ents, data, err := image.ReadWithData(d.Dir, name, magic,
		func() *pipedata.PipeDataEntry { return &pipedata.PipeDataEntry{} },
		func(e *pipedata.PipeDataEntry) int { return int(e.GetBytes()) })
	if err != nil {
		return nil, err
	}
	for i, e := range ents {
		out[e.GetPipeId()] = PipeData{Data: data[i], Size: int(e.GetSize())}
	}
	return out, nil
}

// skAddr finds field 3 (the message address) in the unknown fields of a
// sk_packet_entry; nil if absent or malformed.
func skAddr(b []byte) []byte {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil
		}
		b = b[n:]
		if num == skAddrField && typ == protowire.BytesType {
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return nil
			}
			return append([]byte{}, v...)
		}
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return nil
		}
		b = b[m:]
	}
	return nil
}

// loadTcpStreams reads the tcp-stream image of every established TCP
// socket of files.img.
func (d *Dump) loadTcpStreams() error {
	for _, f := range d.Files {
		isk := f.GetIsk()
		if isk == nil || isk.GetProto() != syscall.IPPROTO_TCP || isk.GetState() != 1 { // TCP_ESTABLISHED
			continue
		}
		name := image.TcpStreamName(isk.GetIno())
		if !d.exists(name) {
			continue // dumped with --tcp-close: restored closed
		}
		ents, data, err := image.ReadWithData(d.Dir, name, image.MagicTcpStream,
			func() *tcpstream.TcpStreamEntry { return &tcpstream.TcpStreamEntry{} },
			func(e *tcpstream.TcpStreamEntry) int { return int(e.GetInqLen()) + int(e.GetOutqLen()) })
		if err != nil {
			return err
		}
		if len(ents) != 1 {
			return fmt.Errorf("%s: %d entries: %w", name, len(ents), image.ErrCorrupt)
		}
		e := ents[0]
		if e.GetUnsqLen() > e.GetOutqLen() {
			return fmt.Errorf("%s: %d unsent bytes of %d in the send queue: %w", name, e.GetUnsqLen(), e.GetOutqLen(), image.ErrCorrupt)
		}
		if d.TcpStreams == nil {
			d.TcpStreams = map[uint32]*TcpStream{}
		}
		in := int(e.GetInqLen())
		d.TcpStreams[isk.GetIno()] = &TcpStream{Entry: e, In: data[0][:in], Out: data[0][in:]}
		if isk.TcpOpts == nil && (e.Cork != nil || e.Nodelay != nil) {
			// A CRIU 3.17 dump keeps them in the stream's entry only.
			isk.TcpOpts = &tcpstream.TcpOptsEntry{Cork: e.Cork, Nodelay: e.Nodelay}
		}
	}
	return nil
}
