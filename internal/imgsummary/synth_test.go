package imgsummary

import (
	"os"
	"path/filepath"
	"sort"
	"testing"

	core "github.com/checkpoint-restore/go-criu/v8/crit/images/core-x86"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/creds"
	criucore "github.com/checkpoint-restore/go-criu/v8/crit/images/criu-core"
	criusa "github.com/checkpoint-restore/go-criu/v8/crit/images/criu-sa"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/fdinfo"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/fown"
	fsimg "github.com/checkpoint-restore/go-criu/v8/crit/images/fs"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/inventory"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/mm"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/pagemap"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/pstree"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/regfile"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/rlimit"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/siginfo"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/vma"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/image"
	"github.com/ckpt/ckpt/internal/model/x86img"
)

// oLargefile is the kernel's O_LARGEFILE on x86_64, which the kernel
// shows for every file opened by a 64-bit task (x/sys has 0 for it).
const oLargefile = 0o100000

// synthPid is the pid of the synthetic dump.
const synthPid = 4242

// synthDump returns the files of a small but complete single-task dump,
// built from go-criu messages, whose executable is exe. It needs no root
// and no live process.
func synthDump(t testing.TB, exe string) map[string][]byte {
	t.Helper()
	u32, u64 := proto.Uint32, proto.Uint64
	noOwner := &fown.FownEntry{Uid: u32(0), Euid: u32(0), Signum: u32(0), PidType: u32(0), Pid: u32(0)}
	reg := func(id uint32, name string, flags uint32, pos uint64) *fdinfo.FileEntry {
		return &fdinfo.FileEntry{Type: fdinfo.FdTypes_REG.Enum(), Id: u32(id), Reg: &regfile.RegFileEntry{
			Id: u32(id), Flags: u32(flags), Pos: u64(pos), Fown: noOwner, Name: proto.String(name),
		}}
	}
	ids := &criucore.TaskKobjIdsEntry{VmId: u32(1), FilesId: u32(1), FsId: u32(1), SighandId: u32(1)}
	regs := x86.Regs{Rip: 0x401000, Rsp: 0x7ffd0000f000, Cs: x86.UserCS, Ss: x86.UserDS, Orig_rax: 34}
	nohand := int64(x86.ERESTARTNOHAND)
	regs.Rax = uint64(-nohand)
	xs := make([]byte, 2696)
	fp, err := x86img.XstateToImage(xs)
	if err != nil {
		t.Fatal(err)
	}
	var sas []*criusa.SaEntry
	for sig := 1; sig <= x86.NSig; sig++ {
		if sig == x86.SigKill || sig == x86.SigStop {
			continue
		}
		h := uint64(0)
		switch sig {
		case int(unix.SIGUSR1):
			h = 0x401200
		case int(unix.SIGPIPE):
			h = 1
		}
		sas = append(sas, &criusa.SaEntry{Sigaction: u64(h), Flags: u64(x86.SaRestorer | 0x10000000), Restorer: u64(0x401300), Mask: u64(0)})
	}
	var rl []*rlimit.RlimitEntry
	for r := 0; r < 16; r++ {
		v := ^uint64(0)
		if r == unix.RLIMIT_NOFILE {
			v = 1024
		}
		rl = append(rl, &rlimit.RlimitEntry{Cur: u64(v), Max: u64(v)})
	}
	coreEntry := &criucore.CoreEntry{
		Mtype: criucore.CoreEntry_X86_64.Enum(),
		ThreadInfo: &core.ThreadInfoX86{
			ClearTidAddr: u64(0), Gpregs: x86img.RegsToImage(&regs), Fpregs: fp,
		},
		Tc: &criucore.TaskCoreEntry{
			TaskState: u32(image.TaskAlive), ExitCode: u32(0), Personality: u32(0), Flags: u32(0),
			BlkSigset: u64(0), Comm: proto.String("synth"),
			Rlimits:    &criucore.TaskRlimitsEntry{Rlimits: rl},
			Sigactions: sas,
			SignalsS:   &siginfo.SignalQueueEntry{},
		},
		Ids: ids,
		ThreadCore: &criucore.ThreadCoreEntry{
			FutexRla: u64(0), FutexRlaLen: u32(0),
			Creds: &creds.CredsEntry{
				Uid: u32(1000), Gid: u32(1000), Euid: u32(1000), Egid: u32(1000), Suid: u32(1000), Sgid: u32(1000),
				Fsuid: u32(1000), Fsgid: u32(1000), Secbits: u32(0), Groups: []uint32{27, 100},
				CapEff: []uint32{0, 0},
			},
			SignalsP: &siginfo.SignalQueueEntry{Signals: []*siginfo.SiginfoEntry{{Siginfo: make([]byte, 128)}}},
		},
	}
	vm := func(start, end uint64, prot, flags, status uint32, shmid uint64) *vma.VmaEntry {
		return &vma.VmaEntry{Start: u64(start), End: u64(end), Pgoff: u64(0), Shmid: u64(shmid),
			Prot: u32(prot), Flags: u32(flags), Status: u32(status), Fd: proto.Int64(-1)}
	}
	priv := uint32(unix.MAP_PRIVATE)
	anon := priv | unix.MAP_ANONYMOUS
	mmEntry := &mm.MmEntry{
		MmStartCode: u64(0x400000), MmEndCode: u64(0x401000), MmStartData: u64(0), MmEndData: u64(0),
		MmStartStack: u64(0x7ffd0000f000), MmStartBrk: u64(0x600000), MmBrk: u64(0x602000),
		MmArgStart: u64(0), MmArgEnd: u64(0), MmEnvStart: u64(0), MmEnvEnd: u64(0),
		ExeFileId: u32(1),
		Vmas: []*vma.VmaEntry{
			vm(0x400000, 0x402000, unix.PROT_READ|unix.PROT_EXEC, priv, image.VMAAreaRegular|image.VMAFilePrivate, 1),
			vm(0x600000, 0x602000, unix.PROT_READ|unix.PROT_WRITE, anon, image.VMAAreaRegular|image.VMAAnonPrivate|image.VMAAreaHeap, 0),
			vm(0x7f0000000000, 0x7f0000004000, unix.PROT_READ, anon, image.VMAAreaRegular|image.VMAAreaVVAR, 0),
			vm(0x7f0000004000, 0x7f0000006000, unix.PROT_READ|unix.PROT_EXEC, anon, image.VMAAreaRegular|image.VMAAreaVDSO, 0),
			vm(0x7ffd00000000, 0x7ffd00010000, unix.PROT_READ|unix.PROT_WRITE, anon|unix.MAP_GROWSDOWN, image.VMAAreaRegular|image.VMAAnonPrivate|image.VMAAreaStack, 0),
		},
	}
	pm := []proto.Message{
		&pagemap.PagemapHead{PagesId: u32(1)},
		&pagemap.PagemapEntry{Vaddr: u64(0x600000), NrPages: u64(2), CompatNrPages: u32(2), Flags: u32(image.PEPresent)},
		&pagemap.PagemapEntry{Vaddr: u64(0x7ffd0000e000), NrPages: u64(2), CompatNrPages: u32(2), Flags: u32(image.PEPresent)},
	}
	files := []proto.Message{
		reg(1, exe, unix.O_RDONLY, 0),
		reg(2, "/dev/null", unix.O_RDWR|oLargefile, 0),
		reg(3, "/", unix.O_RDONLY|unix.O_DIRECTORY, 0),
		reg(4, "/etc/hostname", unix.O_RDONLY, 3),
	}
	fds := []proto.Message{
		&fdinfo.FdinfoEntry{Id: u32(2), Flags: u32(0), Type: fdinfo.FdTypes_REG.Enum(), Fd: u32(0)},
		&fdinfo.FdinfoEntry{Id: u32(4), Flags: u32(1), Type: fdinfo.FdTypes_REG.Enum(), Fd: u32(3)},
	}
	out := map[string][]byte{}
	enc := func(name, kind string, msgs ...proto.Message) {
		b, err := image.Encode(kind, msgs...)
		if err != nil {
			t.Fatalf("encode %s: %v", name, err)
		}
		out[name] = b
	}
	enc(image.InventoryName(), image.MagicInventory, &inventory.InventoryEntry{
		ImgVersion: u32(image.ImgVersion), FdinfoPerId: proto.Bool(true), RootIds: ids,
		NsPerId: proto.Bool(false), Lsmtype: inventory.Lsmtype_NO_LSM.Enum(), DumpUptime: u64(12345678),
	})
	enc(image.PstreeName(), image.MagicPstree, &pstree.PstreeEntry{
		Pid: u32(synthPid), Ppid: u32(1), Pgid: u32(synthPid), Sid: u32(synthPid), Threads: []uint32{synthPid},
	})
	enc(image.CoreName(synthPid), image.MagicCore, coreEntry)
	enc(image.IDsName(synthPid), image.MagicIDs, ids)
	enc(image.MMName(synthPid), image.MagicMM, mmEntry)
	enc(image.PagemapName(synthPid), image.MagicPagemap, pm...)
	enc(image.FilesName(), image.MagicFiles, files...)
	enc(image.FdinfoName(1), image.MagicFdinfo, fds...)
	enc(image.FSName(synthPid), image.MagicFS, &fsimg.FsEntry{CwdId: u32(3), RootId: u32(3), Umask: u32(0o22)})
	out[image.PagesName(1)] = make([]byte, 4*x86.PageSize)
	return out
}

// writeDump writes files into dir.
func writeDump(t testing.TB, dir string, files map[string][]byte) {
	t.Helper()
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// readDump reads every file of dir.
func readDump(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = b
	}
	return out
}

func sortedNames(files map[string][]byte) []string {
	var names []string
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func testExe(t testing.TB) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}
