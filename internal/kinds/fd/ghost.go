//go:build linux && amd64

package fd

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	ghostfile "github.com/checkpoint-restore/go-criu/v8/crit/images/ghost-file"
	timeimg "github.com/checkpoint-restore/go-criu/v8/crit/images/time"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/ckerr"
	"github.com/ckpt/ckpt/internal/model"
)

// Ghost files: a regular file that a task holds open or mapped after its
// path was unlinked (d_path shows "PATH (deleted)", its link count is 0)
// cannot be reopened by path. As in CRIU, the dump saves its contents and
// attributes in ghost-file-ID.img, and remap-fpath.img ties every
// files.img entry of it (fds with their own flags and offsets, mappings)
// to that one ghost. The restore makes the file again, once, in ckpt
// itself; every fd and mapping of the tree opens that one inode through
// /proc/CKPTPID/fd/N, so they share it as they shared the dumped file, and
// it is unlinked before any task opens it.

// DefaultGhostLimit is CRIU's default --ghost-limit: the largest unlinked
// file whose contents a dump saves.
const DefaultGhostLimit = 1 << 20

// deletedMark is d_path's mark of an unlinked file (fs/d_path.c).
const deletedMark = " (deleted)"

// IsGhost tells an unlinked regular file: its link count is 0. A path
// that merely ends in " (deleted)" is not enough, a file may be named so.
func IsGhost(st *unix.Stat_t) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFREG && st.Nlink == 0
}

// GhostName is the path an unlinked file had: its /proc link without
// d_path's " (deleted)".
func GhostName(link string) string { return strings.TrimSuffix(link, deletedMark) }

// CheckGhost refuses an unlinked file of task that is larger than limit
// (0: DefaultGhostLimit), or that is not a regular file; object names it.
func CheckGhost(task int, object string, st *unix.Stat_t, limit int64) error {
	if limit <= 0 {
		limit = DefaultGhostLimit
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFIFO:
		return nil // no contents: its queued bytes are the FIFO's
	case unix.S_IFREG:
	default:
		return ckerr.Unsupported(task, object, "an unlinked file that is not a regular file or a FIFO cannot be dumped: keep it on disk until the dump")
	}
	if st.Size > limit {
		return ckerr.Unsupported(task, fmt.Sprintf("%s, unlinked, %d bytes", object, st.Size),
			fmt.Sprintf("the dump saves unlinked files up to --ghost-limit (%d bytes now): raise it with --ghost-limit SIZE (for example --ghost-limit %dM) or keep the file on disk until the dump", limit, (st.Size+(1<<20)-1)>>20))
	}
	return nil
}

// SaveGhost records that regular file id of d is the unlinked file that
// src (a /proc link to it: /proc/PID/fd/N or /proc/PID/map_files/A-B)
// opens, saving its contents and attributes once per inode.
func SaveGhost(d *model.Dump, id uint32, src string, st *unix.Stat_t) error {
	for gid, g := range d.Ghosts {
		if g.Entry.GetIno() == st.Ino && g.Entry.GetDev() == uint32(st.Dev) {
			d.SetRemap(id, gid)
			return nil
		}
	}
	var data []byte
	if st.Mode&unix.S_IFMT == unix.S_IFREG {
		f, err := os.Open(src)
		if err != nil {
			return fmt.Errorf("open the unlinked file: %w", err)
		}
		defer f.Close()
		data = make([]byte, st.Size)
		if _, err := io.ReadFull(f, data); err != nil {
			return fmt.Errorf("read the unlinked file (%d bytes): %w", st.Size, err)
		}
	}
	e := &ghostfile.GhostFileEntry{
		Uid: proto.Uint32(st.Uid), Gid: proto.Uint32(st.Gid), Mode: proto.Uint32(st.Mode),
		Dev: proto.Uint32(uint32(st.Dev)), Ino: proto.Uint64(st.Ino),
		Atim:   &timeimg.Timeval{TvSec: proto.Uint64(uint64(st.Atim.Sec)), TvUsec: proto.Uint64(uint64(st.Atim.Nsec / 1000))},
		Mtim:   &timeimg.Timeval{TvSec: proto.Uint64(uint64(st.Mtim.Sec)), TvUsec: proto.Uint64(uint64(st.Mtim.Nsec / 1000))},
		Chunks: proto.Bool(false), Size: proto.Uint64(uint64(st.Size)),
	}
	d.SetRemap(id, d.AddGhost(&model.Ghost{Entry: e, Data: data}))
	return nil
}

// ghostPath returns where a task being restored opens regular file id
// of d, which is held by ghost gid: the file made again, through ckpt's
// fd of it.
func (k *regKind) ghostPath(d *model.Dump, id, gid uint32, g *model.Ghost) (string, error) {
	if g == nil {
		return "", fmt.Errorf("files.img: file %d is held by ghost %d, which the dump lacks", id, gid)
	}
	f, ok := k.ghosts[gid]
	if !ok {
		var err error
		if f, err = makeGhost(d.Files[id].GetReg().GetName(), g); err != nil {
			return "", err
		}
		if k.ghosts == nil {
			k.ghosts = map[uint32]*os.File{}
		}
		k.ghosts[gid] = f
	}
	return fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), f.Fd()), nil
}

// closeGhosts closes ckpt's fds of the ghosts it made: the restored
// tasks hold them now.
func (k *regKind) closeGhosts() {
	for gid, f := range k.ghosts {
		f.Close()
		delete(k.ghosts, gid)
	}
}

// makeGhost makes the unlinked file name again with g's contents and
// attributes, and returns ckpt's fd of it, unlinked. It is made under a
// temporary name in name's directory, then given name and unlinked
// again, so that /proc shows "NAME (deleted)" as it did at the dump. When
// another file has taken name meanwhile (the dumped file was replaced),
// the two are exchanged (renameat2 RENAME_EXCHANGE) and the other is
// renamed back over the ghost, which unlinks it: name never goes missing,
// though for that moment it opens the ghost. Where the file system
// cannot rename so, the ghost stays unlinked under its temporary name.
func makeGhost(name string, g *model.Ghost) (*os.File, error) {
	e := g.Entry
	dir, base := filepath.Split(name)
	if dir == "" || !filepath.IsAbs(name) {
		return nil, fmt.Errorf("unlinked file %q: not an absolute path", name)
	}
	var f *os.File
	var err error
	if e.GetMode()&unix.S_IFMT == unix.S_IFIFO {
		f, err = tempFifo(dir, "."+base+".ckpt-ghost-")
	} else {
		f, err = os.CreateTemp(dir, "."+base+".ckpt-ghost-*")
	}
	if err != nil {
		return nil, fmt.Errorf("make the unlinked file %s again: %w", name, err)
	}
	tmp := f.Name()
	fail := func(err error) (*os.File, error) {
		f.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("make the unlinked file %s again: %w", name, err)
	}
	if len(g.Data) > 0 {
		if _, err := f.Write(g.Data); err != nil {
			return fail(err)
		}
	}
	if err := f.Chown(int(e.GetUid()), int(e.GetGid())); err != nil {
		return fail(err)
	}
	// After the write and chown, which clear set-user-ID bits.
	if err := unix.Fchmod(int(f.Fd()), e.GetMode()&07777); err != nil {
		return fail(fmt.Errorf("chmod %o: %w", e.GetMode()&07777, err))
	}
	if e.Atim != nil && e.Mtim != nil {
		tv := []unix.Timeval{
			{Sec: int64(e.Atim.GetTvSec()), Usec: int64(e.Atim.GetTvUsec())},
			{Sec: int64(e.Mtim.GetTvSec()), Usec: int64(e.Mtim.GetTvUsec())},
		}
		if err := unix.Futimes(int(f.Fd()), tv); err != nil {
			return fail(fmt.Errorf("set times: %w", err))
		}
	}
	var own unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &own); err != nil {
		return fail(err)
	}
	err = unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, name, unix.RENAME_NOREPLACE)
	switch {
	case err == nil:
		var st unix.Stat_t
		if unix.Lstat(name, &st) == nil && st.Ino == own.Ino && st.Dev == own.Dev {
			if err := unix.Unlink(name); err != nil {
				f.Close()
				return nil, fmt.Errorf("make the unlinked file %s again: unlink it: %w", name, err)
			}
		}
	case errors.Is(err, unix.EEXIST):
		if err := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, name, unix.RENAME_EXCHANGE); err != nil {
			if rerr := os.Remove(tmp); rerr != nil {
				return fail(rerr)
			}
			break // unlinked under its temporary name
		}
		// The file that took name is at tmp now: put it back.
		if err := unix.Rename(tmp, name); err != nil {
			unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, name, unix.RENAME_EXCHANGE)
			return fail(fmt.Errorf("put back %s: %w", name, err))
		}
	default:
		if rerr := os.Remove(tmp); rerr != nil {
			return fail(rerr)
		}
	}
	return f, nil
}

// tempFifo makes a FIFO of a new name dir/prefixNNN and opens it for
// reading and writing (which never waits for the other end), so that
// opening it again through /proc/CKPTPID/fd/N never waits either.
func tempFifo(dir, prefix string) (*os.File, error) {
	for try := 0; ; try++ {
		name := filepath.Join(dir, fmt.Sprintf("%s%d", prefix, rand.Uint32()))
		err := unix.Mkfifo(name, 0o600)
		if errors.Is(err, unix.EEXIST) && try < 100 {
			continue
		}
		if err != nil {
			return nil, err
		}
		f, err := os.OpenFile(name, os.O_RDWR|unix.O_NONBLOCK, 0)
		if err != nil {
			os.Remove(name)
			return nil, err
		}
		return f, nil
	}
}
