package image

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	core "github.com/checkpoint-restore/go-criu/v8/crit/images/core-x86"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/creds"
	criucore "github.com/checkpoint-restore/go-criu/v8/crit/images/criu-core"
	criusa "github.com/checkpoint-restore/go-criu/v8/crit/images/criu-sa"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/fdinfo"
	filelock "github.com/checkpoint-restore/go-criu/v8/crit/images/file-lock"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/fown"
	fsimg "github.com/checkpoint-restore/go-criu/v8/crit/images/fs"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/inventory"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/mm"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/pagemap"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/pstree"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/regfile"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/rlimit"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/vma"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/ckerr"
)

// Magic numbers of CRIU's criu/include/magic.h, checked independently of
// go-criu's table.
var wantMagic = map[string]uint32{
	"IMG_COMMON":   0x54564319,
	MagicInventory: 0x58313116,
	MagicPstree:    0x50273030,
	MagicCore:      0x55053847,
	MagicIDs:       0x54432030,
	MagicMM:        0x57492820,
	MagicPagemap:   0x56084025,
	MagicFiles:     0x56303138,
	MagicFdinfo:    0x56213732,
	MagicFS:        0x51403912,
	MagicUtsns:     0x54473203,
	MagicIpcVar:    0x53115007,
	MagicMnts:      0x55563928,
	MagicFileLocks: 0x54323616,
}

var (
	u32 = proto.Uint32
	u64 = proto.Uint64
)

func sampleIDs() *criucore.TaskKobjIdsEntry {
	return &criucore.TaskKobjIdsEntry{VmId: u32(1), FilesId: u32(1), FsId: u32(1), SighandId: u32(1)}
}

func sampleInventory() *inventory.InventoryEntry {
	return &inventory.InventoryEntry{
		ImgVersion: u32(ImgVersion), FdinfoPerId: proto.Bool(true), RootIds: sampleIDs(),
		NsPerId: proto.Bool(false), Lsmtype: inventory.Lsmtype_NO_LSM.Enum(), DumpUptime: u64(123456789),
	}
}

func samplePstree() *pstree.PstreeEntry {
	return &pstree.PstreeEntry{Pid: u32(4242), Ppid: u32(1), Pgid: u32(4242), Sid: u32(4242), Threads: []uint32{4242}}
}

func sampleCore() *criucore.CoreEntry {
	regs := &core.UserX86RegsEntry{
		R15: u64(15), R14: u64(14), R13: u64(13), R12: u64(12), Bp: u64(0xb0), Bx: u64(0xb1),
		R11: u64(11), R10: u64(10), R9: u64(9), R8: u64(8), Ax: u64(0xfffffffffffffdfe), Cx: u64(0xc),
		Dx: u64(0xd), Si: u64(0x51), Di: u64(0xd1), OrigAx: u64(34), Ip: u64(0x7f0000401000),
		Cs: u64(0x23), Flags: u64(0x246), Sp: u64(0xffffd000), Ss: u64(0x2b), FsBase: u64(0), GsBase: u64(0),
		Ds: u64(0x2b), Es: u64(0x2b), Fs: u64(0), Gs: u64(0x63), Mode: core.UserX86RegsMode_COMPAT.Enum(),
	}
	fp := &core.UserX86FpregsEntry{
		Cwd: u32(0x37f), Swd: u32(0), Twd: u32(0), Fop: u32(0), Rip: u64(0), Rdp: u64(0),
		Mxcsr: u32(0x1f80), MxcsrMask: u32(0xffff), StSpace: make([]uint32, 32), XmmSpace: make([]uint32, 64),
		Padding: make([]uint32, 24),
		Xsave:   &core.UserX86XsaveEntry{XstateBv: u64(7), YmmhSpace: make([]uint32, 64)},
	}
	tls := &core.UserDescT{
		EntryNumber: u32(12), BaseAddr: u32(0xf7d00000), Limit: u32(0xfffff), Seg_32Bit: proto.Bool(true),
		ContentsH: proto.Bool(false), ContentsL: proto.Bool(false), ReadExecOnly: proto.Bool(false),
		LimitInPages: proto.Bool(true), SegNotPresent: proto.Bool(false), Usable: proto.Bool(true),
	}
	return &criucore.CoreEntry{
		Mtype:      criucore.CoreEntry_X86_64.Enum(),
		ThreadInfo: &core.ThreadInfoX86{ClearTidAddr: u64(0xf7d00028), Gpregs: regs, Fpregs: fp, Tls: []*core.UserDescT{tls}},
		Tc: &criucore.TaskCoreEntry{
			TaskState: u32(TaskAlive), ExitCode: u32(0), Personality: u32(0), Flags: u32(0), BlkSigset: u64(0),
			Comm: proto.String("prog32"),
			Rlimits: &criucore.TaskRlimitsEntry{Rlimits: []*rlimit.RlimitEntry{
				{Cur: u64(1024), Max: u64(4096)}, {Cur: u64(^uint64(0)), Max: u64(^uint64(0))},
			}},
			Sigactions: []*criusa.SaEntry{{Sigaction: u64(0x8049000), Flags: u64(0x04000000), Restorer: u64(0xf7f00000), Mask: u64(0), CompatSigaction: proto.Bool(true)}},
		},
		Ids: sampleIDs(),
		ThreadCore: &criucore.ThreadCoreEntry{
			FutexRla: u64(0), FutexRlaLen: u32(0),
			Creds: &creds.CredsEntry{Uid: u32(0), Gid: u32(0), Euid: u32(0), Egid: u32(0), Suid: u32(0), Sgid: u32(0),
				Fsuid: u32(0), Fsgid: u32(0), Secbits: u32(0), Groups: []uint32{0, 27}},
		},
	}
}

func sampleMM() *mm.MmEntry {
	v := func(start, end uint64, status uint32) *vma.VmaEntry {
		return &vma.VmaEntry{Start: u64(start), End: u64(end), Pgoff: u64(0), Shmid: u64(0), Prot: u32(3),
			Flags: u32(0x22), Status: u32(status), Fd: proto.Int64(-1)}
	}
	return &mm.MmEntry{
		MmStartCode: u64(0x8048000), MmEndCode: u64(0x8049000), MmStartData: u64(0), MmEndData: u64(0),
		MmStartStack: u64(0xffffd000), MmStartBrk: u64(0x804a000), MmBrk: u64(0x806b000),
		MmArgStart: u64(0), MmArgEnd: u64(0), MmEnvStart: u64(0), MmEnvEnd: u64(0), ExeFileId: u32(1),
		MmSavedAuxv: []uint64{6, 4096, 0, 0},
		Vmas: []*vma.VmaEntry{
			v(0x804a000, 0x806b000, VMAAreaRegular|VMAAnonPrivate|VMAAreaHeap),
			v(0xf7f00000, 0xf7f04000, VMAAreaRegular|VMAAreaVVAR),
			v(0xf7f04000, 0xf7f06000, VMAAreaRegular|VMAAreaVDSO),
			v(0xfffdd000, 0xffffe000, VMAAreaRegular|VMAAnonPrivate|VMAAreaStack),
		},
		Dumpable: proto.Int32(1),
	}
}

func samplePagemap() []proto.Message {
	return []proto.Message{
		&pagemap.PagemapHead{PagesId: u32(1)},
		&pagemap.PagemapEntry{Vaddr: u64(0x804a000), NrPages: u64(3), CompatNrPages: u32(3), Flags: u32(PEPresent)},
		&pagemap.PagemapEntry{Vaddr: u64(0xffffb000), NrPages: u64(1), CompatNrPages: u32(1), Flags: u32(PEPresent)},
	}
}

func sampleFiles() []proto.Message {
	own := &fown.FownEntry{Uid: u32(0), Euid: u32(0), Signum: u32(0), PidType: u32(0), Pid: u32(0)}
	return []proto.Message{
		&fdinfo.FileEntry{Type: fdinfo.FdTypes_REG.Enum(), Id: u32(1), Reg: &regfile.RegFileEntry{
			Id: u32(1), Flags: u32(0), Pos: u64(0), Fown: own, Name: proto.String("/usr/bin/prog32")}},
		&fdinfo.FileEntry{Type: fdinfo.FdTypes_REG.Enum(), Id: u32(2), Reg: &regfile.RegFileEntry{
			Id: u32(2), Flags: u32(2), Pos: u64(77), Fown: own, Name: proto.String("/tmp/data")}},
	}
}

// sample is one image of each kind: its messages and a constructor for
// the message type of entry i.
type sample struct {
	kind   string
	msgs   []proto.Message
	newMsg func(i int) proto.Message
}

func samples() []sample {
	one := func(m func() proto.Message) func(int) proto.Message { return func(int) proto.Message { return m() } }
	return []sample{
		{MagicInventory, []proto.Message{sampleInventory()}, one(func() proto.Message { return &inventory.InventoryEntry{} })},
		{MagicPstree, []proto.Message{samplePstree()}, one(func() proto.Message { return &pstree.PstreeEntry{} })},
		{MagicCore, []proto.Message{sampleCore()}, one(func() proto.Message { return &criucore.CoreEntry{} })},
		{MagicIDs, []proto.Message{sampleIDs()}, one(func() proto.Message { return &criucore.TaskKobjIdsEntry{} })},
		{MagicMM, []proto.Message{sampleMM()}, one(func() proto.Message { return &mm.MmEntry{} })},
		{MagicPagemap, samplePagemap(), func(i int) proto.Message {
			if i == 0 {
				return &pagemap.PagemapHead{}
			}
			return &pagemap.PagemapEntry{}
		}},
		{MagicFiles, sampleFiles(), one(func() proto.Message { return &fdinfo.FileEntry{} })},
		{MagicFdinfo, []proto.Message{
			&fdinfo.FdinfoEntry{Id: u32(2), Flags: u32(1), Type: fdinfo.FdTypes_REG.Enum(), Fd: u32(3)},
		}, one(func() proto.Message { return &fdinfo.FdinfoEntry{} })},
		{MagicFS, []proto.Message{&fsimg.FsEntry{CwdId: u32(1), RootId: u32(1), Umask: u32(0o22)}}, one(func() proto.Message { return &fsimg.FsEntry{} })},
		{MagicFileLocks, []proto.Message{
			// A POSIX write lock on bytes 20-29, an OFD read lock to EOF.
			&filelock.FileLockEntry{Flag: u32(1), Type: u32(1), Pid: proto.Int32(42), Fd: proto.Int32(3), Start: proto.Int64(20), Len: proto.Int64(10)},
			&filelock.FileLockEntry{Flag: u32(4), Type: u32(0), Pid: proto.Int32(42), Fd: proto.Int32(4), Start: proto.Int64(100), Len: proto.Int64(0)},
		}, one(func() proto.Message { return &filelock.FileLockEntry{} })},
	}
}

func encode(t testing.TB, s sample) []byte {
	t.Helper()
	b, err := Encode(s.kind, s.msgs...)
	if err != nil {
		t.Fatalf("encode %s: %v", s.kind, err)
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	le := binary.LittleEndian
	for _, s := range samples() {
		b := encode(t, s)
		// The header: IMG_COMMON then the kind's magic, except for the
		// inventory, which has only its own.
		if s.kind == MagicInventory {
			if le.Uint32(b) != wantMagic[MagicInventory] {
				t.Errorf("inventory magic %#x", le.Uint32(b))
			}
		} else if le.Uint32(b) != wantMagic["IMG_COMMON"] || le.Uint32(b[4:]) != wantMagic[s.kind] {
			t.Errorf("%s header % x", s.kind, b[:8])
		}
		ents, err := Decode(s.kind, b)
		if err != nil {
			t.Fatalf("decode %s: %v", s.kind, err)
		}
		if len(ents) != len(s.msgs) {
			t.Fatalf("%s: %d entries, want %d", s.kind, len(ents), len(s.msgs))
		}
		for i, e := range ents {
			m := s.newMsg(i)
			if err := proto.Unmarshal(e, m); err != nil {
				t.Fatalf("%s entry %d: %v", s.kind, i, err)
			}
			if !proto.Equal(m, s.msgs[i]) {
				t.Errorf("%s entry %d:\n got %v\nwant %v", s.kind, i, m, s.msgs[i])
			}
		}
	}
	// An image with no entries is valid.
	b, err := Encode(MagicFdinfo)
	if err != nil {
		t.Fatal(err)
	}
	if ents, err := Decode(MagicFdinfo, b); err != nil || len(ents) != 0 {
		t.Errorf("empty image: %d entries, %v", len(ents), err)
	}
}

// headerLen is the size of the magic header of an image of kind.
func headerLen(kind string) int {
	if kind == MagicInventory {
		return 4
	}
	return 8
}

func TestDecodeTruncated(t *testing.T) {
	for _, s := range samples() {
		b := encode(t, s)
		// Cuts that end exactly after the header or after an entry give a
		// valid, shorter image.
		boundary := map[int]int{headerLen(s.kind): 0}
		off := headerLen(s.kind)
		for i := range s.msgs {
			off += 4 + int(binary.LittleEndian.Uint32(b[off:]))
			boundary[off] = i + 1
		}
		for cut := 0; cut < len(b); cut++ {
			ents, err := Decode(s.kind, b[:cut])
			if n, ok := boundary[cut]; ok {
				if err != nil || len(ents) != n {
					t.Errorf("%s cut at entry boundary %d: %d entries, %v", s.kind, cut, len(ents), err)
				}
				continue
			}
			if err == nil {
				t.Errorf("%s cut at %d of %d: no error", s.kind, cut, len(b))
			} else if !errors.Is(err, ErrCorrupt) {
				t.Errorf("%s cut at %d: error %v is not ErrCorrupt", s.kind, cut, err)
			}
		}
	}
}

func TestDecodeWrongMagic(t *testing.T) {
	mmImg := encode(t, samples()[4])
	if _, err := Decode(MagicCore, mmImg); err == nil || !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "(MM)") {
		t.Errorf("mm image read as core: %v", err)
	}
	inv := encode(t, samples()[0])
	if _, err := Decode(MagicCore, inv); err == nil || !strings.Contains(err.Error(), "IMG_COMMON") {
		t.Errorf("inventory read as core: %v", err)
	}
	core := encode(t, samples()[2])
	if _, err := Decode(MagicInventory, core); err == nil || !errors.Is(err, ErrCorrupt) {
		t.Errorf("core read as inventory: %v", err)
	}
	bad := append([]byte(nil), core...)
	binary.LittleEndian.PutUint32(bad[4:], 0x12345678)
	if _, err := Decode(MagicCore, bad); err == nil || !strings.Contains(err.Error(), "unknown") {
		t.Errorf("unknown magic: %v", err)
	}
	if _, err := Decode("NO_SUCH_KIND", core); err == nil {
		t.Error("unknown kind: no error")
	}
	if _, err := Encode("NO_SUCH_KIND"); err == nil {
		t.Error("encode unknown kind: no error")
	}
}

func TestDecodeHugeSize(t *testing.T) {
	b := encode(t, samples()[2])
	le := binary.LittleEndian
	for _, size := range []uint32{0xffffffff, 0x80000000, maxEntry + 1, uint32(len(b))} {
		bad := append([]byte(nil), b...)
		le.PutUint32(bad[8:], size)
		if _, err := Decode(MagicCore, bad); err == nil || !errors.Is(err, ErrCorrupt) {
			t.Errorf("size %#x: %v", size, err)
		}
	}
	// A size within bounds but beyond maxEntry is refused even when the
	// bytes are there.
	big := make([]byte, 8+4+maxEntry+1)
	copy(big, b[:8])
	le.PutUint32(big[8:], maxEntry+1)
	if _, err := Decode(MagicCore, big); err == nil {
		t.Error("entry above maxEntry: no error")
	}
}

func TestDir(t *testing.T) {
	d := Dir{Path: t.TempDir()}
	if err := d.Write("core-1.img", MagicCore, sampleCore()); err != nil {
		t.Fatal(err)
	}
	var c criucore.CoreEntry
	if err := d.ReadOne("core-1.img", MagicCore, &c); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(&c, sampleCore()) {
		t.Error("core differs after Write/ReadOne")
	}
	if err := d.Write(FilesName(), MagicFiles, sampleFiles()...); err != nil {
		t.Fatal(err)
	}
	files, err := ReadAll(d, FilesName(), MagicFiles, func() *fdinfo.FileEntry { return &fdinfo.FileEntry{} })
	if err != nil || len(files) != 2 || files[1].GetReg().GetPos() != 77 {
		t.Fatalf("ReadAll: %v, %v", files, err)
	}
	// ReadOne of an image with two entries.
	var f fdinfo.FileEntry
	if err := d.ReadOne(FilesName(), MagicFiles, &f); err == nil || !strings.Contains(err.Error(), FilesName()) {
		t.Errorf("ReadOne of 2 entries: %v", err)
	}
	// A missing image is named.
	if err := d.ReadOne("mm-9.img", MagicMM, &mm.MmEntry{}); err == nil || !strings.Contains(err.Error(), "mm-9.img") {
		t.Errorf("missing image: %v", err)
	}
	// A truncated image is named.
	p := filepath.Join(d.Path, "core-1.img")
	b, _ := os.ReadFile(p)
	if err := os.WriteFile(p, b[:len(b)-1], 0o600); err != nil {
		t.Fatal(err)
	}
	if err := d.ReadOne("core-1.img", MagicCore, &c); err == nil || !strings.Contains(err.Error(), "core-1.img") || !errors.Is(err, ErrCorrupt) {
		t.Errorf("truncated image: %v", err)
	}
	// It is the public sentinel, and no other.
	if err := d.ReadOne("core-1.img", MagicCore, &c); !errors.Is(err, ckerr.ErrCorruptImage) || errors.Is(err, ckerr.ErrUnsupported) {
		t.Errorf("truncated image: errors.Is(%v, ckerr.ErrCorruptImage) = false", err)
	}
	// An entry that frames right but lacks required fields is corrupt.
	raw, _ := Encode(MagicMM, &fsimg.FsEntry{CwdId: u32(1), RootId: u32(1)})
	if err := os.WriteFile(filepath.Join(d.Path, "mm-1.img"), raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := d.ReadOne("mm-1.img", MagicMM, &mm.MmEntry{}); err == nil || !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "entry 0") {
		t.Errorf("wrong message in image: %v", err)
	}
}

func TestPagesFile(t *testing.T) {
	d := Dir{Path: t.TempDir()}
	w, err := d.CreatePages(1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(make([]byte, 4096)); err != nil {
		t.Fatal(err)
	}
	w.Close()
	r, err := d.OpenPages(1)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	buf := make([]byte, 4096)
	if err := ReadFullAt(r, buf, 0); err != nil {
		t.Errorf("full read: %v", err)
	}
	if err := ReadFullAt(r, buf, 100); err == nil || !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), PagesName(1)) {
		t.Errorf("read past the end: %v", err)
	}
	if _, err := d.OpenPages(2); err == nil {
		t.Error("missing pages image: no error")
	}
}

func TestNames(t *testing.T) {
	for got, want := range map[string]string{
		InventoryName(): "inventory.img", PstreeName(): "pstree.img", CoreName(7): "core-7.img",
		IDsName(7): "ids-7.img", MMName(7): "mm-7.img", PagemapName(7): "pagemap-7.img",
		PagesName(1): "pages-1.img", FilesName(): "files.img", FdinfoName(2): "fdinfo-2.img", FSName(7): "fs-7.img",
	} {
		if got != want {
			t.Errorf("%s, want %s", got, want)
		}
	}
}
