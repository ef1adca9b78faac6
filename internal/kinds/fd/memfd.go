//go:build linux && amd64

package fd

import (
	"fmt"
	"math/bits"
	"os"
	"strings"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/fdinfo"
	memfdimg "github.com/checkpoint-restore/go-criu/v8/crit/images/memfd"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/ckerr"
	"github.com/ckpt/ckpt/internal/model"
)

// memfdKind is a file made by memfd_create(2), open as an fd or mapped
// (/proc shows "/memfd:NAME (deleted)"). As in CRIU, files.img has a
// MEMFD entry per open file (flags, offset, inode id), memfd.img one
// entry per memfd (name, owner, mode, size, seals) and its contents are
// saved as a shared memory object (pagemap-shmem-SHMID.img). The restore
// makes each memfd once, in ckpt, with its name, size and contents; every
// fd and mapping of the tree opens it through /proc/CKPTPID/fd/N, so they
// share it as before. Its seals are added last, once every fd and mapping
// of the tree exists (Seal): F_SEAL_WRITE and F_SEAL_FUTURE_WRITE would
// forbid making the task's writable shared mappings again.
type memfdKind struct {
	// made are, at restore, ckpt's fds of the memfds made, by inode id.
	made map[uint32]*os.File
}

// isMemfd tells a memfd: a shmem file without a link, whose d_path is
// "/memfd:NAME" (memfd_create names its file so, mm/memfd.c).
func isMemfd(path string, st *unix.Stat_t) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFREG && st.Nlink == 0 && strings.HasPrefix(path, "/memfd:")
}

// memfdName is the name given to memfd_create.
func memfdName(path string) string {
	return strings.TrimSuffix(strings.TrimPrefix(path, "/memfd:"), deletedMark)
}

// checkMemfd refuses a memfd whose pages ckpt cannot make again: a
// hugetlbfs one (MFD_HUGETLB) of a page size x86 has no MFD_HUGE_* for.
// Its block size is the huge page size; a shmem file's is the page size.
func checkMemfd(task int, object string, st *unix.Stat_t) error {
	if _, err := hugetlbFlag(st); err != nil {
		return ckerr.Unsupported(task, object, err.Error())
	}
	return nil
}

// hugetlbFlag is the memfd_create flag of a memfd of st: 0 for a shmem
// one, MFD_HUGETLB with the page size's MFD_HUGE_* bits (log2 of the
// size at MFD_HUGE_SHIFT, include/uapi/linux/memfd.h) for a hugetlbfs
// one, as CRIU keeps it in memfd_inode_entry.hugetlb_flag.
func hugetlbFlag(st *unix.Stat_t) (uint32, error) {
	size := uint64(st.Blksize)
	if size <= 4096 {
		return 0, nil
	}
	if size != 2<<20 && size != 1<<30 {
		return 0, fmt.Errorf("a memfd of %d-byte huge pages (MFD_HUGETLB) cannot be dumped: x86 has 2 MiB and 1 GiB pages", size)
	}
	return unix.MFD_HUGETLB | uint32(bits.TrailingZeros64(size))<<unix.MFD_HUGE_SHIFT, nil
}

func (*memfdKind) Name() string { return "memfd" }

func (*memfdKind) Match(f *File, o Options) (bool, error) {
	if !isMemfd(f.Path, &f.Stat) {
		return false, nil
	}
	return true, checkMemfd(0, fmt.Sprintf("fd %d (%s)", f.Fd, f.Path), &f.Stat)
}

func (*memfdKind) Collect(t Task, f *File, flags uint32, e *fdinfo.FileEntry) error {
	if err := SaveMemfd(t.Dump, fmt.Sprintf("/proc/%d/fd/%d", t.Pid, f.Fd), f.Path, &f.Stat); err != nil {
		return fmt.Errorf("fd %d (%s): %w", f.Fd, f.Path, err)
	}
	*e = *MemfdEntry(e.GetId(), flags, uint64(f.Info.Pos), &f.Stat)
	return nil
}

// IsMemfd tells whether the file a mapping or fd shows as path is a memfd.
func IsMemfd(path string, st *unix.Stat_t) bool { return isMemfd(path, st) }

// CheckMemfd refuses a memfd that cannot be dumped; object names it.
func CheckMemfd(task int, object string, st *unix.Stat_t) error { return checkMemfd(task, object, st) }

// MemfdEntry is the files.img entry of a memfd opened with flags at pos.
func MemfdEntry(id, flags uint32, pos uint64, st *unix.Stat_t) *fdinfo.FileEntry {
	return &fdinfo.FileEntry{
		Type: fdinfo.FdTypes_MEMFD.Enum(),
		Id:   proto.Uint32(id),
		Memfd: &memfdimg.MemfdFileEntry{
			Id: proto.Uint32(id), Flags: proto.Uint32(flags), Pos: proto.Uint64(pos),
			Fown: noOwner(), InodeId: proto.Uint32(uint32(st.Ino)),
		},
	}
}

// SaveMemfd saves, once per memfd, the name, attributes, seals and
// contents of the memfd that src (a /proc link: /proc/PID/fd/N or
// /proc/PID/map_files/A-B) opens and /proc shows as link.
func SaveMemfd(d *model.Dump, src, link string, st *unix.Stat_t) error {
	ino := uint32(st.Ino)
	if _, ok := d.Memfds[ino]; ok {
		return nil
	}
	f, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("open the memfd: %w", err)
	}
	defer f.Close()
	seals, err := unix.FcntlInt(f.Fd(), unix.F_GET_SEALS, 0)
	if err != nil {
		return fmt.Errorf("F_GET_SEALS: %w", err)
	}
	if d.Memfds == nil {
		d.Memfds = map[uint32]*memfdimg.MemfdInodeEntry{}
	}
	d.Memfds[ino] = &memfdimg.MemfdInodeEntry{
		Name: proto.String(memfdName(link)), Uid: proto.Uint32(st.Uid), Gid: proto.Uint32(st.Gid),
		Size: proto.Uint64(uint64(st.Size)), Shmid: proto.Uint32(ino), Seals: proto.Uint32(uint32(seals)),
		InodeId: proto.Uint64(uint64(ino)), Mode: proto.Uint32(st.Mode),
	}
	if hf, err := hugetlbFlag(st); err != nil {
		return err
	} else if hf != 0 {
		d.Memfds[ino].HugetlbFlag = proto.Uint32(hf)
	}
	// The contents are saved as a shared memory object's, by page, in
	// chunks.
	return d.SaveShmem(uint64(ino), f, st.Size)
}

func (k *memfdKind) Open(r Restorer, num int, cloexec bool, e *fdinfo.FileEntry) error {
	m := e.GetMemfd()
	if m == nil {
		return fmt.Errorf("fd %d: files.img: memfd entry %d without its data", num, e.GetId())
	}
	path, err := k.path(r.Dump(), m.GetInodeId())
	if err != nil {
		return fmt.Errorf("fd %d: %w", num, err)
	}
	if err := openAt(r, num, path, m.GetFlags(), cloexec, m.GetPos()); err != nil {
		return fmt.Errorf("fd %d (memfd %d): %w", num, m.GetInodeId(), err)
	}
	return nil
}

// path returns where a task being restored opens memfd ino of d: ckpt's
// fd of the memfd made again.
func (k *memfdKind) path(d *model.Dump, ino uint32) (string, error) {
	f, ok := k.made[ino]
	if !ok {
		var err error
		if f, err = makeMemfd(d, ino); err != nil {
			return "", err
		}
		if k.made == nil {
			k.made = map[uint32]*os.File{}
		}
		k.made[ino] = f
	}
	return fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), f.Fd()), nil
}

// makeMemfd makes memfd ino of d again, without its seals.
func makeMemfd(d *model.Dump, ino uint32) (*os.File, error) {
	me, ok := d.Memfds[ino]
	if !ok {
		return nil, fmt.Errorf("memfd %d is not in %s", ino, "memfd.img")
	}
	name := me.GetName()
	size := me.GetSize()
	// Always allowed to seal: the dumped seals are added at the end, and
	// a memfd made without MFD_ALLOW_SEALING shows as sealed with
	// F_SEAL_SEAL, which is added so too.
	hf := me.GetHugetlbFlag()
	if hf&^(unix.MFD_HUGETLB|unix.MFD_HUGE_MASK<<unix.MFD_HUGE_SHIFT) != 0 {
		return nil, fmt.Errorf("memfd %d (%s): memfd.img: hugetlb flag %#x", ino, name, hf)
	}
	fd, err := unix.MemfdCreate(name, int(unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING|hf))
	if err != nil {
		if hf != 0 {
			return nil, fmt.Errorf("memfd_create(%q) of %d-byte huge pages: %w (is the pool of /sys/kernel/mm/hugepages large enough?)", name, uint64(1)<<(hf>>unix.MFD_HUGE_SHIFT), err)
		}
		return nil, fmt.Errorf("memfd_create(%q): %w", name, err)
	}
	f := os.NewFile(uintptr(fd), "memfd:"+name)
	fail := func(what string, err error) (*os.File, error) {
		f.Close()
		return nil, fmt.Errorf("memfd %s: %s: %w", name, what, err)
	}
	if err := f.Truncate(int64(size)); err != nil {
		return fail("set its size", err)
	}
	// CRIU writes no pagemap-shmem image for an empty memfd
	// (criu/shmem.c, restore_memfd_shmem_content reads none).
	if size != 0 {
		if err := fillMemfd(d, uint64(me.GetShmid()), f, int64(size), hf != 0); err != nil {
			return fail("fill it", err)
		}
	}
	if err := f.Chown(int(me.GetUid()), int(me.GetGid())); err != nil {
		return fail("chown", err)
	}
	if me.Mode != nil {
		if err := unix.Fchmod(fd, me.GetMode()&07777); err != nil {
			return fail("chmod", err)
		}
	}
	return f, nil
}

// seal adds each memfd's dumped seals.
func (k *memfdKind) seal(d *model.Dump) error {
	for ino, f := range k.made {
		seals := d.Memfds[ino].GetSeals()
		if seals == 0 {
			continue
		}
		if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, int(seals)); err != nil {
			return fmt.Errorf("memfd %s: add seals %#x: %w", d.Memfds[ino].GetName(), seals, err)
		}
	}
	return nil
}

func (k *memfdKind) close() {
	for ino, f := range k.made {
		f.Close()
		delete(k.made, ino)
	}
}

// fillMemfd writes the dumped content of shared memory object shmid
// into memfd f of size bytes, a chunk at a time from the pages image
// (model.CopyShmem): through a shared mapping of it for a hugetlbfs one,
// which has no write(2). Bytes past size (the last page's) are dropped.
func fillMemfd(d *model.Dump, shmid uint64, f *os.File, size int64, huge bool) error {
	var m []byte
	if huge {
		var err error
		if m, err = unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED); err != nil {
			return fmt.Errorf("map it: %w", err)
		}
	}
	err := d.CopyShmem(shmid, func(b []byte, off uint64) error {
		if off >= uint64(size) {
			return nil
		}
		b = b[:min(uint64(len(b)), uint64(size)-off)]
		if huge {
			copy(m[off:], b)
			return nil
		}
		_, err := f.WriteAt(b, int64(off))
		return err
	})
	if m != nil {
		if uerr := unix.Munmap(m); uerr != nil && err == nil {
			err = uerr
		}
	}
	return err
}
