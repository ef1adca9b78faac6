//go:build linux && amd64

package fd

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/fdinfo"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/fh"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/fsnotify"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/ckerr"
	"github.com/ckpt/ckpt/internal/procfs"
	"github.com/ckpt/ckpt/internal/uapi"
)

// inotifyKind is an inotify instance with its watches (files.img's
// inotify_file_entry, one inotify_wd_entry per watch). fdinfo shows each
// watch's wd, mask and the file handle of the watched inode; the dump
// turns the handle into a path (open_by_handle_at, then the link of the
// fd it gives). The restore makes the instance anew and adds the watches
// in the order of their wds, so that each gets its dumped wd back: the
// kernel hands out wds cyclically upwards (idr_alloc_cyclic in
// fs/notify/inotify/inotify_user.c), so a gap is skipped by adding a
// watch on a throwaway path and removing it at once.
//
// Events queued in the instance cannot be read without taking them from
// the program, nor put back: an instance with events queued is refused.
// The kernel's cursor for the next wd is not shown either: after the
// restore the next new watch gets the wd after the highest dumped one
// (or after a gap's throwaway), where the dumped instance might have
// gone further if its highest watches were removed before the dump.
// fanotify is refused by name.
type inotifyKind struct{}

func (inotifyKind) Name() string { return "inotify" }

func (inotifyKind) Match(f *File, o Options) (bool, error) {
	if f.Path == "anon_inode:[fanotify]" {
		return false, ckerr.Unsupported(0, fmt.Sprintf("fd %d, a fanotify instance", f.Fd), "fanotify marks cannot be dumped yet; close it before the dump")
	}
	return f.Path == "anon_inode:inotify", nil
}

// maxWdGap bounds the throwaway watches a restore adds to reach a wd.
const maxWdGap = 1 << 16

func (inotifyKind) Collect(t Task, f *File, flags uint32, e *fdinfo.FileEntry) error {
	ws, err := procfs.ParseInotify(f.Info)
	if err != nil {
		return fmt.Errorf("fd %d (inotify): %w", f.Fd, err)
	}
	if n, err := inotifyQueued(t.Pidfd, f.Fd); err != nil {
		return fmt.Errorf("fd %d (inotify): %w", f.Fd, err)
	} else if n > 0 {
		return ckerr.Unsupported(t.Pid, fmt.Sprintf("fd %d, an inotify instance with %d bytes of events queued", f.Fd, n),
			"queued inotify events cannot be dumped (the kernel gives them only to a read, which takes them); dump again once the program has read them")
	}
	var mounts []procfs.Mount
	if len(ws) > 0 {
		if mounts, err = procfs.ReadMountinfo(t.Pid); err != nil {
			return fmt.Errorf("fd %d (inotify): %w", f.Fd, err)
		}
	}
	sort.Slice(ws, func(i, j int) bool { return ws[i].Wd < ws[j].Wd })
	ie := &fsnotify.InotifyFileEntry{Id: e.Id, Flags: proto.Uint32(flags), Fown: noOwner()}
	prev := int32(0)
	for _, w := range ws {
		if w.Wd-prev-1 > maxWdGap {
			return ckerr.Unsupported(t.Pid, fmt.Sprintf("fd %d, an inotify instance whose watch %d follows watch %d", f.Fd, w.Wd, prev),
				fmt.Sprintf("the restore gets a wd back by adding and removing watches up to it, at most %d in a row", maxWdGap))
		}
		prev = w.Wd
		path, mnt, err := watchPath(t.Pid, mounts, w)
		if err != nil {
			return ckerr.Unsupported(t.Pid, fmt.Sprintf("fd %d, inotify watch %d (inode %d)", f.Fd, w.Wd, w.Ino), err.Error())
		}
		words := make([]uint64, (len(w.Handle)+7)/8)
		for i := range words {
			var b [8]byte
			copy(b[:], w.Handle[i*8:])
			words[i] = binary.LittleEndian.Uint64(b[:])
		}
		ie.Wd = append(ie.Wd, &fsnotify.InotifyWdEntry{
			Id: e.Id, IIno: proto.Uint64(w.Ino), Mask: proto.Uint32(w.Mask), IgnoredMask: proto.Uint32(w.IgnoredMask),
			SDev: proto.Uint32(w.Sdev), Wd: proto.Uint32(uint32(w.Wd)),
			FHandle: &fh.FhEntry{Bytes: proto.Uint32(uint32(len(w.Handle))), Type: proto.Uint32(uint32(w.HandleType)),
				Handle: words, Path: proto.String(path), MntId: proto.Uint32(uint32(mnt))},
		})
	}
	e.Type = fdinfo.FdTypes_INOTIFY.Enum()
	e.Ify = ie
	return nil
}

// inotifyQueued is the number of bytes of events queued in fd of the
// task (FIONREAD, alias TIOCINQ, on a copy of the fd taken with pidfd_getfd).
func inotifyQueued(pidfd, fd int) (int, error) {
	cp, err := unix.PidfdGetfd(pidfd, fd, 0)
	if err != nil {
		return 0, fmt.Errorf("pidfd_getfd: %w", err)
	}
	defer unix.Close(cp)
	n, err := unix.IoctlGetInt(cp, unix.TIOCINQ)
	if err != nil {
		return 0, fmt.Errorf("FIONREAD: %w", err)
	}
	return n, nil
}

// watchPath finds the path of a watched inode: the file handle opened on
// a mount of its filesystem (the task's mounts are ckpt's: a task in
// another mount namespace is refused), then the link of the fd.
func watchPath(pid int, mounts []procfs.Mount, w procfs.InotifyWatch) (string, int, error) {
	if w.Handle == nil {
		return "", 0, fmt.Errorf("this kernel shows no file handle for the watched inode (built without CONFIG_EXPORTFS?); remove the watch before the dump")
	}
	major, minor := w.Sdev>>uapi.MINORBITS, w.Sdev&(1<<uapi.MINORBITS-1)
	var lastErr error
	for _, m := range mounts {
		if uint32(m.Major) != major || uint32(m.Minor) != minor {
			continue
		}
		path, err := openHandle(pid, m.Point, w)
		if err == nil {
			return path, m.ID, nil
		}
		lastErr = err
	}
	if lastErr == nil {
		lastErr = fmt.Errorf("no mount of device %d:%d", major, minor)
	}
	return "", 0, fmt.Errorf("cannot find the watched file's path: %v; remove the watch before the dump", lastErr)
}

// openHandle opens the watched inode through mount point mnt and returns
// its path, checked to lead to that inode.
func openHandle(pid int, mnt string, w procfs.InotifyWatch) (string, error) {
	mfd, err := unix.Open(filepath.Join(fmt.Sprintf("/proc/%d/root", pid), mnt), unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", fmt.Errorf("open mount %s: %w", mnt, err)
	}
	defer unix.Close(mfd)
	fd, err := unix.OpenByHandleAt(mfd, unix.NewFileHandle(w.HandleType, w.Handle), unix.O_PATH|unix.O_CLOEXEC)
	if err != nil {
		return "", fmt.Errorf("open_by_handle_at on %s: %w", mnt, err)
	}
	defer unix.Close(fd)
	path, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
	if err != nil {
		return "", err
	}
	var st unix.Stat_t
	if strings.HasSuffix(path, " (deleted)") || !strings.HasPrefix(path, "/") {
		return "", fmt.Errorf("the watched file %s has no name", path)
	}
	if err := unix.Lstat(path, &st); err != nil || st.Ino != w.Ino {
		return "", fmt.Errorf("the watched file's name %s leads to another file now", path)
	}
	return path, nil
}

// throwawayPaths are where the restore adds the watches that skip wds,
// the first of them not watched by the instance.
var throwawayPaths = []string{"/", "/proc", "/dev", "/sys", "/tmp", "/etc", "/usr"}

// Open makes the inotify instance and adds its watches with their wds.
// Where the dumped wds have gaps, the watches are first added with no
// events in their mask (IN_DONT_FOLLOW alone is accepted and reports
// nothing), each gap skipped with a throwaway watch that is removed at
// once; removing a watch queues an IN_IGNORED event, so the queue is then
// emptied (through a copy of the fd taken with pidfd_getfd) and checked
// to hold nothing else; only then do the watches get their masks, so
// that no event meant for the program is lost.
func (inotifyKind) Open(r Restorer, num int, cloexec bool, e *fdinfo.FileEntry) error {
	ie := e.GetIfy()
	if ie == nil {
		return fmt.Errorf("fd %d: inotify entry %d without data", num, e.GetId())
	}
	got, err := r.Syscall(x86.SysInotifyInit1, uint64(ie.GetFlags()&unix.O_NONBLOCK))
	if err != nil {
		return fmt.Errorf("fd %d: inotify_init1: %w", num, err)
	}
	if err := r.Place(int(got), num, cloexec); err != nil {
		return fmt.Errorf("fd %d: %w", num, err)
	}
	wds := append([]*fsnotify.InotifyWdEntry(nil), ie.GetWd()...)
	sort.Slice(wds, func(i, j int) bool { return wds[i].GetWd() < wds[j].GetWd() })
	gaps := false
	for i, w := range wds {
		if w.GetWd() != uint32(i+1) {
			gaps = true
		}
		if w.GetFHandle().GetPath() == "" {
			return fmt.Errorf("fd %d: inotify watch %d has no path in the image", num, w.GetWd())
		}
	}
	add := func(w *fsnotify.InotifyWdEntry, mask uint64) error {
		path := w.GetFHandle().GetPath()
		p, err := r.PutString(path)
		if err != nil {
			return err
		}
		n, err := r.Syscall(x86.SysInotifyAddWatch, uint64(num), p, mask)
		if err != nil {
			return fmt.Errorf("fd %d: inotify watch %d on %s: %w", num, w.GetWd(), path, err)
		}
		if uint32(n) != w.GetWd() {
			return fmt.Errorf("fd %d: inotify watch on %s got wd %d, the dumped one was %d", num, path, n, w.GetWd())
		}
		return nil
	}
	if gaps {
		var skipped []uint32
		next := uint32(1)
		for _, w := range wds {
			want := w.GetWd()
			if want < next || want > next+maxWdGap {
				return fmt.Errorf("fd %d: inotify watch %d out of order in the image", num, want)
			}
			for next < want {
				spare, err := throwaway(r, wds)
				if err != nil {
					return fmt.Errorf("fd %d: inotify watch %d: %w", num, want, err)
				}
				n, err := r.Syscall(x86.SysInotifyAddWatch, uint64(num), spare, unix.IN_DONT_FOLLOW)
				if err != nil {
					return fmt.Errorf("fd %d: inotify: throwaway watch to reach wd %d: %w", num, want, err)
				}
				if _, err := r.Syscall(x86.SysInotifyRmWatch, uint64(num), n); err != nil {
					return fmt.Errorf("fd %d: inotify: remove throwaway watch %d: %w", num, n, err)
				}
				if uint32(n) < next || uint32(n) >= want {
					return fmt.Errorf("fd %d: inotify: throwaway watch got wd %d on the way to %d", num, n, want)
				}
				skipped = append(skipped, uint32(n))
				next = uint32(n) + 1
			}
			if err := add(w, unix.IN_DONT_FOLLOW); err != nil {
				return err
			}
			next = want + 1
		}
		if err := drainIgnored(r.Pid(), num, skipped); err != nil {
			return fmt.Errorf("fd %d: inotify: %w", num, err)
		}
	}
	for _, w := range wds {
		// The path is the watched inode's own: never follow a symlink
		// there. The kernel keeps neither IN_MASK_ADD nor IN_MASK_CREATE,
		// so the mask never holds them: the mask replaces the silent one.
		if err := add(w, uint64(w.GetMask())|unix.IN_DONT_FOLLOW); err != nil {
			return err
		}
	}
	return nil
}

// inotifyEventSize is sizeof(struct inotify_event) without its name
// (include/uapi/linux/inotify.h: wd, mask, cookie, len), the same for
// ia32 and x86_64.
const inotifyEventSize = 16

// drainIgnored reads the events queued in fd num of task pid and checks
// that each is the IN_IGNORED of a removed throwaway watch.
func drainIgnored(pid, num int, skipped []uint32) error {
	cp, err := fdOf(pid, num)
	if err != nil {
		return err
	}
	defer unix.Close(cp)
	left := map[uint32]bool{}
	for _, s := range skipped {
		left[s] = true
	}
	for len(left) > 0 {
		n, err := unix.IoctlGetInt(cp, unix.TIOCINQ)
		if err != nil {
			return fmt.Errorf("FIONREAD: %w", err)
		}
		if n == 0 {
			return fmt.Errorf("%d IN_IGNORED events of throwaway watches missing", len(left))
		}
		buf := make([]byte, n)
		got, err := unix.Read(cp, buf)
		if err != nil {
			return fmt.Errorf("read the queue: %w", err)
		}
		for b := buf[:got]; len(b) > 0; {
			if len(b) < inotifyEventSize {
				return fmt.Errorf("short event in the queue")
			}
			wd, mask, nl := binary.NativeEndian.Uint32(b), binary.NativeEndian.Uint32(b[4:]), binary.NativeEndian.Uint32(b[12:])
			if mask != unix.IN_IGNORED || !left[wd] {
				return fmt.Errorf("event %#x of watch %d came during the restore and would be lost; restore again", mask, wd)
			}
			delete(left, wd)
			if uint64(nl)+inotifyEventSize > uint64(len(b)) {
				return fmt.Errorf("event name past the end of the queue")
			}
			b = b[inotifyEventSize+nl:]
		}
	}
	return nil
}

// throwaway puts into the task the first throwawayPaths entry that no
// watch of the instance is on.
func throwaway(r Restorer, wds []*fsnotify.InotifyWdEntry) (uint64, error) {
	for _, p := range throwawayPaths {
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			continue
		}
		used := false
		for _, w := range wds {
			sdev := w.GetSDev()
			if st.Ino == w.GetIIno() && st.Dev == unix.Mkdev(sdev>>uapi.MINORBITS, sdev&(1<<uapi.MINORBITS-1)) {
				used = true
			}
		}
		if !used {
			return r.PutString(p)
		}
	}
	return 0, fmt.Errorf("no unwatched path to skip wds with")
}
