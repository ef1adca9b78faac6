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
	"github.com/checkpoint-restore/go-criu/v8/crit/images/mm"
	pipedata "github.com/checkpoint-restore/go-criu/v8/crit/images/pipe-data"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/pstree"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/timens"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/tty"

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
		d.Files[f.GetId()] = f
	}
	d.Pipes = map[uint32]PipeData{}
	if d.exists(image.PipesDataName()) {
		ents, data, err := image.ReadWithData(d.Dir, image.PipesDataName(), image.MagicPipesData,
			func() *pipedata.PipeDataEntry { return &pipedata.PipeDataEntry{} },
			func(e *pipedata.PipeDataEntry) int { return int(e.GetBytes()) })
		if err != nil {
			return nil, err
		}
		for i, e := range ents {
			d.Pipes[e.GetPipeId()] = PipeData{Data: data[i], Size: int(e.GetSize())}
		}
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
	return d, nil
}

func (d *Dump) exists(name string) bool {
	_, err := os.Stat(filepath.Join(d.Dir.Path, name))
	return err == nil
}

func (d *Dump) loadProc(pse *pstree.PstreeEntry) (*Process, error) {
	p := &Process{Tree: d, Pstree: pse, Pid: int(pse.GetPid())}
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
	// A PID namespace of its own: other than the dumping tool's
	// (root_ids; ckpt's dumps before RootIDs left it out there).
	p.OwnPidNS = p.IDs.GetPidNsId() != 0 && p.IDs.GetPidNsId() != d.Inventory.GetRootIds().GetPidNsId()
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
	var err error
	if p.PagesID, p.Pagemap, err = d.readPagemap(image.PagemapName(p.Pid)); err != nil {
		return nil, err
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
