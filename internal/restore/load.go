package restore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/cpuinfo"
	criucore "github.com/checkpoint-restore/go-criu/v8/crit/images/criu-core"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/fdinfo"
	fsimg "github.com/checkpoint-restore/go-criu/v8/crit/images/fs"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/inventory"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/mm"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/pagemap"
	pipedata "github.com/checkpoint-restore/go-criu/v8/crit/images/pipe-data"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/pstree"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/timens"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/image"
)

// Images is a loaded single-task dump.
type Images struct {
	Dir    image.Dir
	Inv    *inventory.InventoryEntry
	Pstree *pstree.PstreeEntry
	Core   *criucore.CoreEntry
	// Threads are the cores of the other threads, with their Tids.
	Threads []*criucore.CoreEntry
	Tids    []int
	MM      *mm.MmEntry
	PagesID uint32
	Pagemap []*pagemap.PagemapEntry
	Files   map[uint32]*fdinfo.FileEntry
	Fds     []*fdinfo.FdinfoEntry
	FS      *fsimg.FsEntry
	ExePath string
	ABI     x86.ABI
	Pid     int
	Compat  bool
	// Zombie is a child that had exited but was not reaped; Core.Tc holds
	// its wait status.
	Zombie bool
	// OwnPidNS is set when the dumped tree ran in a PID namespace of its
	// own: Pid, Tids and the pstree then name tasks inside it, and the
	// restore makes a new namespace for them.
	OwnPidNS bool
	// CPU describes the dumping machine's CPU (cpuinfo.img), nil for a
	// dump without it; shared by all processes of the dump.
	CPU *cpuinfo.CpuinfoEntry
	// Clocks are the tree's CLOCK_MONOTONIC and CLOCK_BOOTTIME at the
	// dump (timens-1.img), nil for a dump without them; shared by all
	// processes of the dump.
	Clocks *timens.TimensEntry
	// Pipes are the buffered data and size of every dumped pipe, by pipe
	// id; shared by all processes of the dump.
	Pipes map[uint32]PipeData
}

// ownPidNsID is the pid_ns_id the dump gives tasks that run in a PID
// namespace of their own.
const ownPidNsID = 2

// PipeData is what a pipe held at dump time.
type PipeData struct {
	Data []byte
	Size int
}

// Load reads and checks every image of a dump in dir and returns the
// root process.
func Load(dir string) (*Images, error) {
	all, err := LoadTree(dir)
	if err != nil {
		return nil, err
	}
	return all[0], nil
}

// LoadTree reads and checks every image of a dump in dir and returns its
// processes in pstree order: the root first, every parent before its
// children.
func LoadTree(dir string) ([]*Images, error) {
	d := image.Dir{Path: dir}
	if st, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("images directory: %w", err)
	} else if !st.IsDir() {
		return nil, fmt.Errorf("images directory %s: not a directory", dir)
	}
	if _, err := os.Stat(filepath.Join(dir, image.InventoryName())); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s holds no dump: no %s (an unfinished or failed dump leaves none)", dir, image.InventoryName())
	}
	inv := &inventory.InventoryEntry{}
	if err := d.ReadOne(image.InventoryName(), image.MagicInventory, inv); err != nil {
		return nil, err
	}
	if v := inv.GetImgVersion(); v != image.ImgVersion {
		return nil, fmt.Errorf("inventory.img: image version %d, ckpt reads version %d", v, image.ImgVersion)
	}
	ps, err := image.ReadAll(d, image.PstreeName(), image.MagicPstree, func() *pstree.PstreeEntry { return &pstree.PstreeEntry{} })
	if err != nil {
		return nil, err
	}
	if len(ps) == 0 {
		return nil, fmt.Errorf("pstree.img has no task")
	}
	var cpu *cpuinfo.CpuinfoEntry
	if _, err := os.Stat(filepath.Join(dir, image.CpuinfoName())); err == nil {
		cpu = &cpuinfo.CpuinfoEntry{}
		if err := d.ReadOne(image.CpuinfoName(), image.MagicCpuinfo, cpu); err != nil {
			return nil, err
		}
	}
	var clocks *timens.TimensEntry
	if _, err := os.Stat(filepath.Join(dir, image.TimensName(1))); err == nil {
		clocks = &timens.TimensEntry{}
		if err := d.ReadOne(image.TimensName(1), image.MagicTimens, clocks); err != nil {
			return nil, err
		}
	}
	files, err := image.ReadAll(d, image.FilesName(), image.MagicFiles, func() *fdinfo.FileEntry { return &fdinfo.FileEntry{} })
	if err != nil {
		return nil, err
	}
	byID := map[uint32]*fdinfo.FileEntry{}
	for _, f := range files {
		byID[f.GetId()] = f
	}
	pipes := map[uint32]PipeData{}
	if _, err := os.Stat(filepath.Join(dir, image.PipesDataName())); err == nil {
		ents, data, err := image.ReadWithData(d, image.PipesDataName(), image.MagicPipesData,
			func() *pipedata.PipeDataEntry { return &pipedata.PipeDataEntry{} },
			func(e *pipedata.PipeDataEntry) int { return int(e.GetBytes()) })
		if err != nil {
			return nil, err
		}
		for i, e := range ents {
			pipes[e.GetPipeId()] = PipeData{Data: data[i], Size: int(e.GetSize())}
		}
	}
	var out []*Images
	seen := map[int]bool{}
	for i, e := range ps {
		im, err := loadProc(d, inv, byID, pipes, e)
		if err != nil {
			return nil, err
		}
		if seen[im.Pid] {
			return nil, fmt.Errorf("pstree.img: pid %d twice", im.Pid)
		}
		if i > 0 && !seen[int(e.GetPpid())] {
			return nil, fmt.Errorf("pstree.img: task %d comes before its parent %d", im.Pid, e.GetPpid())
		}
		seen[im.Pid] = true
		im.Clocks = clocks
		im.CPU = cpu
		out = append(out, im)
	}
	return out, nil
}

func loadProc(d image.Dir, inv *inventory.InventoryEntry, files map[uint32]*fdinfo.FileEntry, pipes map[uint32]PipeData, pse *pstree.PstreeEntry) (*Images, error) {
	im := &Images{Dir: d, Inv: inv, Files: files, Pipes: pipes}
	var err error
	im.Pstree = pse
	im.Pid = int(im.Pstree.GetPid())
	if im.Pid <= 0 {
		return nil, fmt.Errorf("pstree.img: invalid pid %d", im.Pid)
	}
	if th := im.Pstree.GetThreads(); len(th) == 0 || int(th[0]) != im.Pid {
		return nil, fmt.Errorf("pstree.img: task %d: the thread list does not start with the leader", im.Pid)
	}
	im.Core = &criucore.CoreEntry{}
	if err := d.ReadOne(image.CoreName(im.Pid), image.MagicCore, im.Core); err != nil {
		return nil, err
	}
	if im.Core.GetMtype() != criucore.CoreEntry_X86_64 || im.Core.GetTc() == nil {
		return nil, fmt.Errorf("%s: not an x86_64 task core (mtype %v)", image.CoreName(im.Pid), im.Core.GetMtype())
	}
	if im.Core.GetThreadInfo() == nil && im.Core.GetTc().GetTaskState() != image.TaskDead {
		return nil, fmt.Errorf("%s: a live task's core without registers", image.CoreName(im.Pid))
	}
	im.OwnPidNS = im.Core.GetIds().GetPidNsId() == ownPidNsID
	switch st := im.Core.GetTc().GetTaskState(); st {
	case image.TaskAlive:
	case image.TaskDead:
		// A zombie: only its place in the tree and its wait status.
		im.Zombie = true
		return im, nil
	default:
		return nil, fmt.Errorf("%s: task state %d: only live tasks and zombies can be restored yet", image.CoreName(im.Pid), st)
	}
	for _, tid := range im.Pstree.GetThreads()[1:] {
		c := &criucore.CoreEntry{}
		if err := d.ReadOne(image.CoreName(int(tid)), image.MagicCore, c); err != nil {
			return nil, err
		}
		if c.GetThreadInfo() == nil || c.GetThreadCore() == nil {
			return nil, fmt.Errorf("%s: thread core without registers", image.CoreName(int(tid)))
		}
		im.Threads = append(im.Threads, c)
		im.Tids = append(im.Tids, int(tid))
	}
	im.MM = &mm.MmEntry{}
	if err := d.ReadOne(image.MMName(im.Pid), image.MagicMM, im.MM); err != nil {
		return nil, err
	}
	raw, err := d.ReadRaw(image.PagemapName(im.Pid), image.MagicPagemap)
	if err != nil {
		return nil, err
	}
	if len(raw) == 0 {
		return nil, fmt.Errorf("%s: no pagemap head", image.PagemapName(im.Pid))
	}
	head := &pagemap.PagemapHead{}
	if err := d.Unmarshal(image.PagemapName(im.Pid), 0, raw[0], head); err != nil {
		return nil, err
	}
	im.PagesID = head.GetPagesId()
	for i, r := range raw[1:] {
		e := &pagemap.PagemapEntry{}
		if err := d.Unmarshal(image.PagemapName(im.Pid), i+1, r, e); err != nil {
			return nil, err
		}
		im.Pagemap = append(im.Pagemap, e)
	}
	filesID := im.Core.GetIds().GetFilesId()
	if filesID == 0 {
		filesID = 1
	}
	if im.Fds, err = image.ReadAll(d, image.FdinfoName(filesID), image.MagicFdinfo, func() *fdinfo.FdinfoEntry { return &fdinfo.FdinfoEntry{} }); err != nil {
		return nil, err
	}
	for _, fd := range im.Fds {
		if _, ok := im.Files[fd.GetId()]; !ok {
			return nil, fmt.Errorf("%s: fd %d refers to file id %d, which files.img lacks", image.FdinfoName(filesID), fd.GetFd(), fd.GetId())
		}
	}
	im.FS = &fsimg.FsEntry{}
	if err := d.ReadOne(image.FSName(im.Pid), image.MagicFS, im.FS); err != nil {
		return nil, err
	}
	exe, ok := im.Files[im.MM.GetExeFileId()]
	if !ok || exe.GetReg() == nil {
		return nil, fmt.Errorf("%s: exe file id %d not in files.img", image.MMName(im.Pid), im.MM.GetExeFileId())
	}
	im.ExePath = exe.GetReg().GetName()
	f, err := os.Open(im.ExePath)
	if err != nil {
		return nil, fmt.Errorf("executable of task %d: %w", im.Pid, err)
	}
	defer f.Close()
	if im.ABI, err = x86.ExecutableABI(f); err != nil {
		return nil, fmt.Errorf("executable %s: %w", im.ExePath, err)
	}
	if im.ABI == x86.ABIX32 {
		return nil, fmt.Errorf("executable %s: %w", im.ExePath, x86.ErrX32)
	}
	im.Compat = im.ABI == x86.ABI32
	for _, v := range im.MM.GetVmas() {
		if v.GetStart() >= v.GetEnd() || v.GetStart()%x86.PageSize != 0 || v.GetEnd()%x86.PageSize != 0 {
			return nil, fmt.Errorf("%s: bad vma %#x-%#x", image.MMName(im.Pid), v.GetStart(), v.GetEnd())
		}
	}
	return im, nil
}

// RegFile returns the regular-file entry with the given id.
func (im *Images) RegFile(id uint32) (*fdinfo.FileEntry, error) {
	f, ok := im.Files[id]
	if !ok || f.GetReg() == nil {
		return nil, fmt.Errorf("files.img: no regular file with id %d", id)
	}
	return f, nil
}
