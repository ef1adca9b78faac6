//go:build linux && amd64

package fd

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/internal/ckerr"
	"github.com/ckpt/ckpt/internal/model"
)

// Linked files: a regular file whose path was unlinked while the file
// keeps another link (d_path shows "PATH (deleted)", its link count is
// not 0). glibc's sem_open makes every named semaphore so: it writes a
// temporary /dev/shm/sem.XXXXXX, maps it, links it to sem.NAME and
// unlinks the temporary name, so the mapping shows the temporary name,
// deleted. The dump finds the other name in the same directory and
// records it as a regular-file entry that the unlinked one is a LINKED
// remap of (remap-fpath.img). The restore links the file to its old
// name again for the moment it takes ckpt to open it, and unlinks that
// name, so that the restored fds and mappings show "PATH (deleted)" as
// they did; nothing is copied, the file is the one on disk.

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
			if unix.Lstat(p, &o) == nil && o.Ino == st.Ino && o.Dev == st.Dev {
				return p, nil
			}
		}
		if err != nil {
			return "", nil // io.EOF, or the directory went away
		}
	}
}

// CheckLinked refuses a file of task whose path was unlinked but that
// has other links, when no other name is in the same directory; object
// names it. It returns the other name.
func CheckLinked(task int, object, name string, st *unix.Stat_t) (string, error) {
	other, err := LinkedName(name, st)
	if err != nil {
		return "", fmt.Errorf("%s: find the other name of the unlinked file %s: %w", object, name, err)
	}
	if other == "" {
		return "", ckerr.Unsupported(task, object, fmt.Sprintf("the file's path was unlinked but it has %d other links, none in %s: not supported yet; keep it on disk until the dump", st.Nlink, filepath.Dir(name)))
	}
	return other, nil
}

// LinkedEntry adds to d the regular-file entry of other, the name an
// unlinked file st is linked at now, and returns its id: the remap
// target of the file's own entry (model.Dump.SetLinked).
func LinkedEntry(d *model.Dump, other string, st *unix.Stat_t) uint32 {
	return d.AddFile(RegEntry(d.NextFileID(), other, unix.O_RDONLY, 0, st))
}

// linkedPath returns where a task being restored opens regular file id
// of d, which is linked at the path of file to: ckpt's fd of it, opened
// under the name it had.
func (k *regKind) linkedPath(d *model.Dump, id, to uint32) (string, error) {
	old := d.Files[id].GetReg().GetName()
	cur := d.Files[to].GetReg()
	if cur == nil {
		return "", fmt.Errorf("files.img: file %d is linked at file %d, which is not a regular file", id, to)
	}
	key := old + "\x00" + cur.GetName()
	f, ok := k.linked[key]
	if !ok {
		var err error
		if f, err = openLinked(old, cur.GetName()); err != nil {
			return "", err
		}
		if k.linked == nil {
			k.linked = map[string]*os.File{}
		}
		k.linked[key] = f
	}
	return fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), f.Fd()), nil
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
