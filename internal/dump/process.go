package dump

import (
	"fmt"

	criucore "github.com/checkpoint-restore/go-criu/v8/crit/images/criu-core"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/mm"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/pstree"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/model"
	"github.com/ckpt/ckpt/internal/procfs"
)

// collect dumps one frozen process into the model: threads, memory (its
// pages go straight to its pages image), fd table, fs and ids. Files go
// into the shared table ft.
func (t *task) collect(ft *fileTable, stats *Stats) (*model.Process, error) {
	pid := t.pid
	p := &model.Process{Tree: ft.d}
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

	vmaEntries, err := t.dumpMemory(p, vmas, ft, stats)
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

	if t.filesOf == 0 {
		if p.Fds, err = t.fdTable(ft); err != nil {
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
		ids.PidNsId = proto.Uint32(model.OwnPidNsID)
	}
	var tids []uint32
	for i, ts := range threads {
		c, err := t.coreEntry(ts, th, rlims, pers)
		if err != nil {
			return nil, fmt.Errorf("thread %d: %w", ts.tid, err)
		}
		c.Ids = ids
		tid := t.virt(ts.status.NSpid, ts.tid)
		tids = append(tids, uint32(tid))
		if i == 0 {
			p.Core = c
			continue
		}
		p.Threads = append(p.Threads, c)
		p.Tids = append(p.Tids, tid)
	}
	vpid, ppid, pgid, sid := t.treeIDs()
	p.Pid = vpid
	p.Pstree = &pstree.PstreeEntry{
		Pid: proto.Uint32(uint32(vpid)), Ppid: proto.Uint32(uint32(ppid)),
		Pgid: proto.Uint32(uint32(pgid)), Sid: proto.Uint32(uint32(sid)),
		Threads: tids,
	}
	p.IDs, p.MM, p.FS = ids, mmEntry, fsEntry
	return p, nil
}
