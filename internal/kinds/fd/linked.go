//go:build linux && amd64

package fd

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/fdinfo"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/regfile"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/ckerr"
	"github.com/ckpt/ckpt/internal/model"
)

// Linked files: a regular file whose path was unlinked while the file
// keeps other links (the link count that stat shows through /proc is
// not 0). glibc's sem_open makes every named semaphore so: it writes a
// temporary /dev/shm/sem.XXXXXX, maps it, links it to sem.NAME and
// unlinks the temporary name, so the mapping shows the temporary name,
// deleted.
//
// By default the dump changes nothing on disk: it finds the file's
// other name in the same directory and records it in ckpt's own field
// of the unlinked file's entry (model.RegLinkedAt), with no remap. The
// restore opens the file through that name and leaves it, so the dump
// restores any number of times. CRIU skips the field, finds nothing at
// the unlinked path and refuses the restore; a LINKED remap to the
// other name, which older ckpt versions wrote (and ckpt still reads),
// had CRIU remove that name after its restore, taking it for its own
// link.
//
// With --link-remap (Options.LinkRemap) the dump writes what CRIU
// writes with that option (criu/files-reg.c, create_link_remap): it
// links the file, through the task's fd or map_files link, at
// DIR/link_remap.ID in the directory of its old path, where ID is the
// files.img id of a regular-file entry for that link (flags 0, position
// 0, no size), and remap-fpath.img makes the unlinked entry a LINKED
// remap of it. One link serves every entry of the inode; a dump that
// fails removes the links it made. Once the restored tree runs, the
// restore removes the link, as CRIU does: such a dump restores once,
// and CRIU restores it.
//
// Either way the restore links the file to its old name again for the
// moment it takes to open it, and unlinks that name, so that the
// restored fds and mappings show "PATH (deleted)" as they did; nothing
// is copied, the file is the one on disk.

// linkRemapPrefix begins the name of the link a dump makes for a linked
// file (CRIU's "link_remap.%d").
const linkRemapPrefix = "link_remap."

// IsLinkRemap tells whether path is the name of a link made by a dump
// for a linked file (ckpt's or CRIU's), which a restore removes once the
// tree runs.
func IsLinkRemap(path string) bool {
	return strings.HasPrefix(filepath.Base(path), linkRemapPrefix)
}

// LinkedName finds where the file st, whose path name was unlinked, is
// linked now: a name in the same directory with the same inode. It
// returns "" if there is none (the file is linked elsewhere only).
func LinkedName(name string, st *unix.Stat_t) (string, error) {
	dir := filepath.Dir(name)
	d, err := os.Open(dir)
	if err != nil {
		return "", err
	}
	defer d.Close()
	for {
		names, err := d.Readdirnames(256)
		for _, n := range names {
			var o unix.Stat_t
			p := filepath.Join(dir, n)
			if !IsLinkRemap(p) && unix.Lstat(p, &o) == nil && o.Ino == st.Ino && o.Dev == st.Dev {
				return p, nil
			}
		}
		if err != nil {
			return "", nil // io.EOF, or the directory went away
		}
	}
}

// CheckLinked refuses a file of task whose path name was unlinked but
// that has other links, when the dump cannot record it; object names
// it. With linkRemap the dump links it again in the directory of that
// path, which must exist on the file's file system; without, it
// returns the file's other name in that directory, which must exist.
func CheckLinked(task int, object, name string, st *unix.Stat_t, linkRemap bool) (string, error) {
	dir := filepath.Dir(name)
	if !linkRemap {
		other, err := LinkedName(name, st)
		if err != nil {
			return "", fmt.Errorf("%s: find the other name of the unlinked file %s: %w", object, name, err)
		}
		if other == "" {
			return "", ckerr.Unsupported(task, object, fmt.Sprintf("the file's path was unlinked but it has %d other links, none in %s: dump with --link-remap (the dump links the file at %s/link_remap.ID, and restores once), or keep a name of it in %s until the dump", st.Nlink, dir, dir, dir))
		}
		return other, nil
	}
	var ds unix.Stat_t
	if err := unix.Stat(dir, &ds); err != nil {
		return "", ckerr.Unsupported(task, object, fmt.Sprintf("the file's path was unlinked (it has %d other links) and its directory %s is gone (%v): the dump cannot link it there; keep the directory until the dump", st.Nlink, dir, err))
	}
	if ds.Dev != st.Dev {
		return "", ckerr.Unsupported(task, object, fmt.Sprintf("the file's path was unlinked (it has %d other links) and %s is on another file system now: the dump cannot link it there; keep the file on disk until the dump", st.Nlink, dir))
	}
	return "", nil
}

// LinkRemap returns the id of the regular-file entry of the link that
// the linked file st, whose path was name and which src opens (a /proc
// link to it: /proc/PID/fd/N or /proc/PID/map_files/A-B), is linked at
// for the dump: made now in name's directory, once per inode.
func LinkRemap(d *model.Dump, name, src string, st *unix.Stat_t) (uint32, error) {
	key := [2]uint64{st.Dev, st.Ino}
	if id, ok := d.LinkRemapOf[key]; ok {
		return id, nil
	}
	id := d.NextFileID()
	path := filepath.Join(filepath.Dir(name), fmt.Sprintf("%s%d", linkRemapPrefix, id))
	// AT_SYMLINK_FOLLOW through /proc links the file itself, which
	// linkat allows while its link count is not 0.
	err := unix.Linkat(unix.AT_FDCWD, src, unix.AT_FDCWD, path, unix.AT_SYMLINK_FOLLOW)
	for try := 0; errors.Is(err, unix.EEXIST) && try < 100; try++ {
		// An earlier dump's link, not restored yet.
		path = filepath.Join(filepath.Dir(name), fmt.Sprintf("%s%d.%d", linkRemapPrefix, id, rand.Uint32()))
		err = unix.Linkat(unix.AT_FDCWD, src, unix.AT_FDCWD, path, unix.AT_SYMLINK_FOLLOW)
	}
	if err != nil {
		return 0, fmt.Errorf("link the unlinked file %s (%d other links) at %s: %w", name, st.Nlink, path, err)
	}
	d.MadeLinks = append(d.MadeLinks, path)
	var got unix.Stat_t
	if err := unix.Lstat(path, &got); err != nil || got.Ino != st.Ino || got.Dev != st.Dev {
		return 0, fmt.Errorf("link the unlinked file %s at %s: the link is not the file (%v)", name, path, err)
	}
	if d.LinkRemapOf == nil {
		d.LinkRemapOf = map[[2]uint64]uint32{}
	}
	d.LinkRemapOf[key] = d.AddFile(linkRemapEntry(id, path, st))
	return id, nil
}

// linkRemapEntry is the files.img entry of the link a dump made for a
// linked file, as CRIU writes it: no flags, position or size (it is
// never opened as such).
func linkRemapEntry(id uint32, path string, st *unix.Stat_t) *fdinfo.FileEntry {
	return &fdinfo.FileEntry{
		Type: fdinfo.FdTypes_REG.Enum(),
		Id:   proto.Uint32(id),
		Reg: &regfile.RegFileEntry{
			Id:    proto.Uint32(id),
			Flags: proto.Uint32(0),
			Pos:   proto.Uint64(0),
			Fown:  noOwner(),
			Name:  proto.String(path),
			Mode:  proto.Uint32(st.Mode),
		},
	}
}

// linkedPath returns where a task being restored opens regular file id
// of d, which is linked at the path of file to (a LINKED remap): ckpt's
// fd of it, opened under the name it had. A dump's link_remap link is
// removed once the tree runs.
func (k *regKind) linkedPath(d *model.Dump, id, to uint32) (string, error) {
	cur := d.Files[to].GetReg()
	if cur == nil {
		return "", fmt.Errorf("files.img: file %d is linked at file %d, which is not a regular file", id, to)
	}
	return k.openAt(d.Files[id].GetReg().GetName(), cur.GetName(), IsLinkRemap(cur.GetName()))
}

// openAt returns ckpt's fd (as a /proc path) of the file linked at cur,
// opened under its unlinked name old, once per pair; remove says cur is
// a dump's link_remap link, removed once the tree runs.
func (k *regKind) openAt(old, cur string, remove bool) (string, error) {
	key := old + "\x00" + cur
	f, ok := k.linked[key]
	if !ok {
		var err error
		if f, err = openLinked(old, cur); err != nil {
			if errors.Is(err, unix.ENOENT) && remove {
				err = fmt.Errorf("%w (the dump's link of the unlinked file is gone: a dump made with --link-remap restores once, as CRIU's; dump without it to restore a dump many times)", err)
			}
			return "", err
		}
		if k.linked == nil {
			k.linked = map[string]*os.File{}
		}
		k.linked[key] = f
		if remove {
			k.linkRemaps = append(k.linkRemaps, cur)
		}
	}
	return fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), f.Fd()), nil
}

// removeLinkRemaps removes the links that dumps made for linked files
// and this restore opened the files through, once the tree runs; a
// failure is only logged, the restore is done.
func (k *regKind) removeLinkRemaps(logf func(string, ...any)) {
	for _, p := range k.linkRemaps {
		if err := unix.Unlink(p); err != nil && !errors.Is(err, unix.ENOENT) {
			logf("restore: remove the dump's link %s of an unlinked file: %v", p, err)
		}
	}
	k.linkRemaps = nil
}

// openLinked opens the file at cur under the name old: it links it
// there, opens it (O_PATH: the tasks reopen it with their own flags)
// and unlinks old again. When old is taken, a temporary name in its
// directory is used instead.
func openLinked(old, cur string) (*os.File, error) {
	name := old
	err := unix.Link(cur, name)
	for try := 0; errors.Is(err, unix.EEXIST) && try < 100; try++ {
		name = filepath.Join(filepath.Dir(old), fmt.Sprintf(".%s.ckpt-link-%d", filepath.Base(old), rand.Uint32()))
		err = unix.Link(cur, name)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s, linked at %s: link: %w", old, cur, err)
	}
	fd, err := unix.Open(name, unix.O_PATH|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if uerr := unix.Unlink(name); uerr != nil && err == nil {
		unix.Close(fd)
		err = fmt.Errorf("unlink: %w", uerr)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s, linked at %s: %w", old, cur, err)
	}
	return os.NewFile(uintptr(fd), old), nil
}

// closeLinked closes ckpt's fds of the linked files it opened.
func (k *regKind) closeLinked() {
	for key, f := range k.linked {
		f.Close()
		delete(k.linked, key)
	}
}
