//go:build linux && amd64

package dump

import (
	"fmt"

	criucore "github.com/checkpoint-restore/go-criu/v8/crit/images/criu-core"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/mm"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/pstree"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/arch/x86"
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
	p.MM = &mm.MmEntry{}
	var tids []uint32
	for _, th := range t.threads {
		c, vtid, err := t.collectThread(th, vmas, p)
		if err != nil {
			return nil, fmt.Errorf("thread %d: %w", th.Tid, err)
		}
		tids = append(tids, uint32(vtid))
		if th.Tid == pid {
			p.Core = c
			continue
		}
		p.Threads = append(p.Threads, c)
		p.Tids = append(p.Tids, vtid)
	}
	if t.stopSig != 0 {
		// Stopped (state T): it comes back stopped by the same signal.
		p.Core.Tc.TaskState = proto.Uint32(model.TaskStopped)
		p.Core.Tc.StopSigno = proto.Uint32(uint32(t.stopSig))
	}
	// The scratch data mapping is gone again; read the maps anew.
	if vmas, err = rereadVMAs(pid, vmas); err != nil {
		return nil, err
	}
	auxvRaw, err := procfs.ReadAuxvRaw(pid)
	if err != nil {
		return nil, err
	}
	word := 8
	if t.abi == x86.ABI32 {
		word = 4
	}
	// Checked, then kept as the kernel shows it (model.PutSavedAuxv).
	if _, err := procfs.ParseAuxv(auxvRaw, word); err != nil {
		return nil, fmt.Errorf("auxv: %w", err)
	}

	exeID := ft.reg(t.exe, unix.O_RDONLY, 0, &t.exeSt)

	vmaEntries, err := t.dumpMemory(p, vmas, ft, stats)
	if err != nil {
		return nil, err
	}

	s := t.stat
	m := p.MM
	m.MmStartCode, m.MmEndCode = proto.Uint64(s.StartCode), proto.Uint64(s.EndCode)
	m.MmStartData, m.MmEndData = proto.Uint64(s.StartData), proto.Uint64(s.EndData)
	m.MmStartStack, m.MmStartBrk = proto.Uint64(s.StartStack), proto.Uint64(s.StartBrk)
	m.MmArgStart, m.MmArgEnd = proto.Uint64(s.ArgStart), proto.Uint64(s.ArgEnd)
	m.MmEnvStart, m.MmEnvEnd = proto.Uint64(s.EnvStart), proto.Uint64(s.EnvEnd)
	m.ExeFileId = proto.Uint32(exeID)
	model.PutSavedAuxv(m, auxvRaw)
	m.Vmas = vmaEntries

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
	// In the leader's core only: CRIU refuses a thread core with ids
	// (or a task core), which are the process's.
	p.Core.Ids = ids
	vpid, ppid, pgid, sid := t.treeIDs()
	p.Pid = vpid
	p.Pstree = &pstree.PstreeEntry{
		Pid: proto.Uint32(uint32(vpid)), Ppid: proto.Uint32(uint32(ppid)),
		Pgid: proto.Uint32(uint32(pgid)), Sid: proto.Uint32(uint32(sid)),
		Threads: tids,
	}
	p.IDs, p.FS = ids, fsEntry
	return p, nil
}

// rereadVMAs returns the mappings of the frozen process pid once the
// injected calls are done, which map and unmap their scratch page and
// change nothing else: smaps read before them (old) if /proc/PID/maps
// shows the same mappings again, else smaps read anew. (smaps walks the
// page tables of every mapping, maps does not: 5-10 ms for 1 GiB of
// memory, while the tree is frozen.)
func rereadVMAs(pid int, old []procfs.SmapsEntry) ([]procfs.SmapsEntry, error) {
	maps, err := procfs.ReadMaps(pid)
	if err != nil {
		return nil, err
	}
	same := len(maps) == len(old)
	for i := 0; same && i < len(maps); i++ {
		same = maps[i] == old[i].VMA
	}
	if same {
		return old, nil
	}
	return procfs.ReadSmaps(pid)
}
