package model

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	core "github.com/checkpoint-restore/go-criu/v8/crit/images/core-x86"
	criucore "github.com/checkpoint-restore/go-criu/v8/crit/images/criu-core"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/fdinfo"
	filelock "github.com/checkpoint-restore/go-criu/v8/crit/images/file-lock"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/fown"
	fsimg "github.com/checkpoint-restore/go-criu/v8/crit/images/fs"
	ghostfile "github.com/checkpoint-restore/go-criu/v8/crit/images/ghost-file"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/inventory"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/mm"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/pstree"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/regfile"
	skopts "github.com/checkpoint-restore/go-criu/v8/crit/images/sk-opts"
	skunix "github.com/checkpoint-restore/go-criu/v8/crit/images/sk-unix"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/timens"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/vma"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/ckerr"
	"github.com/ckpt/ckpt/internal/image"
	"github.com/ckpt/ckpt/internal/model/x86img"
)

const page = x86.PageSize

// testDump builds a two-process dump (a live parent with one extra
// thread, a zombie child) whose parent's executable is exe, with pages
// at two runs, a pipe and a shared memory object, and writes it to dir.
func testDump(t *testing.T, dir, exe string) *Dump {
	t.Helper()
	u32, u64 := proto.Uint32, proto.Uint64
	d := &Dump{
		Inventory: &inventory.InventoryEntry{ImgVersion: u32(image.ImgVersion)},
		Pipes:     map[uint32]PipeData{77: {Data: []byte("queued"), Size: 65536}},
		Shmem:     []Shmem{{Ino: 99, Data: append(make([]byte, page), bytes.Repeat([]byte{7}, page)...)}},
		Clocks:    &timens.TimensEntry{Monotonic: &timens.Timespec{TvSec: u64(5), TvNsec: u64(6)}, Boottime: &timens.Timespec{TvSec: u64(7), TvNsec: u64(8)}},
	}
	d.Dir = image.Dir{Path: dir}
	reg := func(name string, pos uint64) *fdinfo.FileEntry {
		return &fdinfo.FileEntry{Type: fdinfo.FdTypes_REG.Enum(), Reg: &regfile.RegFileEntry{
			Id: u32(d.NextFileID()), Name: proto.String(name), Flags: u32(0), Pos: u64(pos),
			Fown: &fown.FownEntry{Uid: u32(0), Euid: u32(0), Signum: u32(0), PidType: u32(0), Pid: u32(0)}}}
	}
	exeID := d.AddFile(reg(exe, 0))
	fileID := d.AddFile(reg("/etc/hostname", 3))
	if exeID != 1 || fileID != 2 || d.NextFileID() != 3 {
		t.Fatalf("file ids %d %d, next %d", exeID, fileID, d.NextFileID())
	}
	// An unlinked file, opened twice: two files of one ghost.
	for i := 0; i < 2; i++ {
		d.SetRemap(d.AddFile(reg("/tmp/gone", 0)), 1)
	}
	// A file unlinked under one name and linked under another (ids 5, 6).
	d.SetLinked(d.AddFile(reg("/dev/shm/sem.tmp", 0)), d.AddFile(reg("/dev/shm/sem.x", 0)))
	if gid := d.AddGhost(&Ghost{Entry: &ghostfile.GhostFileEntry{Uid: u32(0), Gid: u32(0), Mode: u32(0o100640)}, Data: []byte("ghost data")}); gid != 1 {
		t.Fatalf("ghost id %d", gid)
	}
	ids := &criucore.TaskKobjIdsEntry{VmId: u32(1), FilesId: u32(1), FsId: u32(1), SighandId: u32(1)}
	core := func(state uint32) *criucore.CoreEntry {
		c := &criucore.CoreEntry{Mtype: criucore.CoreEntry_X86_64.Enum(), Ids: ids,
			Tc: &criucore.TaskCoreEntry{TaskState: u32(state), ExitCode: u32(3), Personality: u32(0), Flags: u32(0), BlkSigset: u64(0), Comm: proto.String("t")}}
		if state == TaskAlive {
			c.ThreadInfo = testThreadInfo()
			c.ThreadCore = &criucore.ThreadCoreEntry{FutexRla: u64(0), FutexRlaLen: u32(0)}
		}
		return c
	}
	pw, err := CreatePages(d.Dir, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Close()
	for _, run := range []struct {
		addr uint64
		n    int
		b    byte
	}{{0x10000, 2, 'a'}, {0x20000, 1, 'b'}} {
		pw.Add(run.addr, uint64(run.n))
		if _, err := pw.Writer().Write(bytes.Repeat([]byte{run.b}, run.n*page)); err != nil {
			t.Fatal(err)
		}
	}
	parent := &Process{Tree: d, Pid: 100, Core: core(TaskAlive), IDs: ids,
		Threads: []*criucore.CoreEntry{core(TaskAlive)}, Tids: []int{101},
		Pstree: &pstree.PstreeEntry{Pid: u32(100), Ppid: u32(0), Pgid: u32(100), Sid: u32(100), Threads: []uint32{100, 101}},
		MM: &mm.MmEntry{MmStartCode: u64(0), MmEndCode: u64(0), MmStartData: u64(0), MmEndData: u64(0), MmStartStack: u64(0),
			MmStartBrk: u64(0), MmBrk: u64(0), MmArgStart: u64(0), MmArgEnd: u64(0), MmEnvStart: u64(0), MmEnvEnd: u64(0), ExeFileId: u32(exeID),
			Vmas: []*vma.VmaEntry{
				{Start: u64(0x10000), End: u64(0x13000), Pgoff: u64(0), Shmid: u64(0), Prot: u32(3), Flags: u32(0x22), Status: u32(image.VMAAreaRegular | image.VMAAnonPrivate), Fd: proto.Int64(-1)},
				{Start: u64(0x20000), End: u64(0x21000), Pgoff: u64(0), Shmid: u64(0), Prot: u32(5), Flags: u32(0x22), Status: u32(image.VMAAreaRegular | image.VMAAreaVDSO), Fd: proto.Int64(-1)},
			}},
		Fds: []*fdinfo.FdinfoEntry{{Id: u32(fileID), Flags: u32(FdCloexec), Type: fdinfo.FdTypes_REG.Enum(), Fd: u32(5)}},
		FS:  &fsimg.FsEntry{CwdId: u32(fileID), RootId: u32(fileID), Umask: u32(0o22)},
	}
	if parent.PagesID, parent.Pagemap, err = pw.Finish(); err != nil {
		t.Fatal(err)
	}
	zombie := &Process{Tree: d, Pid: 102, Zombie: true, Core: core(TaskDead),
		Pstree: &pstree.PstreeEntry{Pid: u32(102), Ppid: u32(100), Pgid: u32(100), Sid: u32(100), Threads: []uint32{102}}}
	d.Procs = []*Process{parent, zombie}
	// A unix socket with two queued records, its file renamed, and an
	// external peer (no fd holds these).
	z := u32(0)
	usk := func(ino uint32, uflags uint32) *fdinfo.FileEntry {
		return &fdinfo.FileEntry{Type: fdinfo.FdTypes_UNIXSK.Enum(), Usk: &skunix.UnixSkEntry{
			Id: u32(d.NextFileID()), Ino: u32(ino), Type: u32(2), State: u32(1), Flags: z, Uflags: u32(uflags), Backlog: z, Peer: u32(0),
			Fown: &fown.FownEntry{Uid: z, Euid: z, Signum: z, PidType: z, Pid: z}, Name: []byte("/tmp/s.tmp\x00"),
			Opts: &skopts.SkOptsEntry{SoSndbuf: z, SoRcvbuf: z, SoSndTmoSec: u64(0), SoSndTmoUsec: u64(0), SoRcvTmoSec: u64(0), SoRcvTmoUsec: u64(0)}}}
	}
	skID := d.AddFile(usk(500, 0))
	d.SkQueues = map[uint32][][]byte{skID: {[]byte("ab"), {}}}
	d.SkMoved = map[uint32]string{skID: "/tmp/s"}
	d.Unlisted = []*fdinfo.FileEntry{usk(501, 1)}
	d.FileLocks = []*filelock.FileLockEntry{{Flag: u32(2), Type: u32(1), Pid: proto.Int32(100), Fd: proto.Int32(5), Start: proto.Int64(0), Len: proto.Int64(0)}}
	if err := d.Write(dir); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestWriteLoad(t *testing.T) {
	dir := t.TempDir()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	testDump(t, dir, exe)
	d, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if d.Refused() != nil {
		t.Fatalf("refused: %v", d.Refused())
	}
	if len(d.Procs) != 2 {
		t.Fatalf("%d processes", len(d.Procs))
	}
	p, z := d.Procs[0], d.Procs[1]
	if p.Pid != 100 || p.Zombie || p.ABI != x86.ABI64 || p.Compat || p.ExePath != exe || len(p.Tids) != 1 || p.Tids[0] != 101 {
		t.Errorf("parent loaded as pid %d zombie %v abi %v exe %s tids %v", p.Pid, p.Zombie, p.ABI, p.ExePath, p.Tids)
	}
	if !z.Zombie || z.Pid != 102 || z.Core.GetTc().GetExitCode() != 3 {
		t.Errorf("zombie loaded as %+v", z)
	}
	if p.FilesID() != 1 || len(p.Fds) != 1 || p.Fds[0].GetFd() != 5 || p.Fds[0].GetFlags() != FdCloexec {
		t.Errorf("fd table %v (files id %d)", p.Fds, p.FilesID())
	}
	if f, err := p.RegFile(2); err != nil || f.GetReg().GetPos() != 3 {
		t.Errorf("RegFile(2) = %v, %v", f, err)
	}
	if _, err := p.RegFile(9); err == nil {
		t.Error("RegFile(9): no error for a missing file")
	}
	if len(d.FileLocks) != 1 || d.FileLocks[0].GetFlag() != 2 || d.FileLocks[0].GetFd() != 5 || d.FileLocks[0].GetPid() != 100 {
		t.Errorf("file locks %v", d.FileLocks)
	}
	if pd := d.Pipes[77]; string(pd.Data) != "queued" || pd.Size != 65536 {
		t.Errorf("pipe 77: %+v", pd)
	}
	ext, skID := 0, uint32(0)
	for _, f := range d.Files {
		if u := f.GetUsk(); u != nil && u.GetUflags() == 1 && u.GetIno() == 501 && u.GetId() == f.GetId() {
			ext++
		}
		if u := f.GetUsk(); u != nil && u.GetIno() == 500 {
			skID = f.GetId()
		}
	}
	if q := d.SkQueues[skID]; len(q) != 2 || string(q[0]) != "ab" || len(q[1]) != 0 {
		t.Errorf("socket %d's queue %q", skID, q)
	}
	if d.SkMoved[skID] != "/tmp/s" {
		t.Errorf("socket %d moved to %q", skID, d.SkMoved[skID])
	}
	if _, g := d.GhostOf(4); g == nil {
		t.Error("the ghost's remap was lost beside the socket's")
	}
	if d.Linked[5] != 6 || len(d.Linked) != 1 {
		t.Errorf("linked files %v", d.Linked)
	}
	if ext != 1 {
		t.Errorf("%d external peers loaded", ext)
	}
	if d.Clocks.GetBoottime().GetTvSec() != 7 || d.CPU != nil {
		t.Errorf("clocks %v, cpu %v", d.Clocks, d.CPU)
	}
	var runs []PageRun
	end, err := p.PageRuns(func(r PageRun) error { runs = append(runs, r); return nil })
	if err != nil || end != 3*page || len(runs) != 2 || runs[1] != (PageRun{Index: 2, Vaddr: 0x20000, NrPages: 1, Off: 2 * page}) {
		t.Errorf("page runs %+v, end %d, %v", runs, end, err)
	}
	b, err := p.DumpedRange(0x11000, 0x12000)
	if err != nil || !bytes.Equal(b, bytes.Repeat([]byte{'a'}, page)) {
		t.Errorf("DumpedRange: %v", err)
	}
	if _, err := p.DumpedRange(0x12000, 0x14000); err == nil {
		t.Error("DumpedRange past the dumped pages: no error")
	}
	start, vend, vb, err := p.DumpedVDSO()
	if err != nil || start != 0x20000 || vend != 0x21000 || vb[0] != 'b' {
		t.Errorf("DumpedVDSO: %#x-%#x %v", start, vend, err)
	}
	for _, id := range []uint32{3, 4} {
		if gid, g := d.GhostOf(id); gid != 1 || g == nil || string(g.Data) != "ghost data" || g.Entry.GetMode() != 0o100640 {
			t.Errorf("GhostOf(%d) = %d, %+v", id, gid, g)
		}
	}
	if gid, _ := d.GhostOf(2); gid != 0 {
		t.Errorf("GhostOf(2) = %d, want none", gid)
	}
	sh, err := d.ShmemContent(99, 2*page)
	if err != nil || len(sh) != 2*page || sh[0] != 0 || sh[page] != 7 {
		t.Errorf("ShmemContent: %d bytes, %v", len(sh), err)
	}
}

// A dump whose executable is gone loads, and says why it cannot be
// restored here.
func TestLoadMissingExecutable(t *testing.T) {
	dir := t.TempDir()
	gone := filepath.Join(t.TempDir(), "gone")
	testDump(t, dir, gone)
	d, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Refused(); err == nil || !strings.Contains(err.Error(), "executable "+gone+" is missing") {
		t.Errorf("Refused() = %v", err)
	}
}

// Every image of the dump, cut short, is an error naming it; none panics.
func TestLoadTruncated(t *testing.T) {
	dir := t.TempDir()
	exe, _ := os.Executable()
	testDump(t, dir, exe)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "pages-") || strings.HasPrefix(e.Name(), "pagemap-shmem-") {
			continue // read at restore, not at Load: see below
		}
		path := filepath.Join(dir, e.Name())
		orig, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(orig) < 12 {
			continue
		}
		if err := os.WriteFile(path, orig[:len(orig)-3], 0o600); err != nil {
			t.Fatal(err)
		}
		_, err = Load(dir)
		if err == nil || !strings.Contains(err.Error(), e.Name()) {
			t.Errorf("%s cut short: Load error %v, want one naming it", e.Name(), err)
		}
		if e.Name() != "inventory.img" && err != nil && !errors.Is(err, image.ErrCorrupt) {
			t.Errorf("%s cut short: %v is not ErrCorrupt", e.Name(), err)
		}
		if err := os.WriteFile(path, orig, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	d, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	name := filepath.Join(dir, image.ShmemPagemapName(99))
	b, _ := os.ReadFile(name)
	if err := os.WriteFile(name, b[:len(b)-3], 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := d.ShmemContent(99, 2*page); err == nil || !errors.Is(err, image.ErrCorrupt) {
		t.Errorf("shared memory pagemap cut short: %v", err)
	}
}

func TestLoadNoDump(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "holds no dump") {
		t.Errorf("empty dir: %v", err)
	}
	if _, err := Load(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing dir: no error")
	}
}

// testThreadInfo is a thread's registers and FPU state, all zero but CS.
func testThreadInfo() *core.ThreadInfoX86 {
	fp, err := x86img.XstateToImage(make([]byte, 2696))
	if err != nil {
		panic(err)
	}
	return &core.ThreadInfoX86{
		ClearTidAddr: proto.Uint64(0),
		Gpregs:       x86img.RegsToImage(&x86.Regs{Cs: x86.UserCS, Ss: x86.UserDS}),
		Fpregs:       fp,
	}
}

// A pages image missing or shorter than its pagemap is a dump that cannot
// be restored: CheckPages names the image.
func TestCheckPages(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		change func(dir string) error
		want   string // "" for no error
	}{
		{"whole", func(string) error { return nil }, ""},
		{"pages short", func(dir string) error { return os.Truncate(filepath.Join(dir, "pages-1.img"), 2*page) }, "pages-1.img holds 8192 bytes, pagemap-100.img lists 12288"},
		{"pages missing", func(dir string) error { return os.Remove(filepath.Join(dir, "pages-1.img")) }, "pages-1.img is missing"},
		{"shmem pages short", func(dir string) error { return os.Truncate(filepath.Join(dir, "pages-3.img"), 0) }, "pages-3.img holds 0 bytes, pagemap-shmem-99.img lists 4096"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			d := testDump(t, dir, exe)
			// The shared memory object mapped by the parent.
			d.Procs[0].MM.Vmas = append(d.Procs[0].MM.Vmas, &vma.VmaEntry{Start: proto.Uint64(0x30000), End: proto.Uint64(0x32000), Pgoff: proto.Uint64(0), Shmid: proto.Uint64(99), Prot: proto.Uint32(3), Flags: proto.Uint32(0x21), Status: proto.Uint32(image.VMAAreaRegular | image.VMAAnonShared), Fd: proto.Int64(-1)})
			if err := d.Dir.Write(image.MMName(100), image.MagicMM, d.Procs[0].MM); err != nil {
				t.Fatal(err)
			}
			if err := c.change(dir); err != nil {
				t.Fatal(err)
			}
			l, err := Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			err = l.CheckPages()
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, ckerr.ErrCorruptImage) {
				t.Fatalf("CheckPages: %v; want an ErrCorruptImage naming %q", err, c.want)
			}
		})
	}
}
