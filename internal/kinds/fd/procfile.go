//go:build linux && amd64

package fd

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/fdinfo"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/ns"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/ckerr"
	"github.com/ckpt/ckpt/internal/procfs"
)

// Files of /proc are reopened by path in the restored task's terms:
//
//   - a file of /proc/PID/... (and the /proc/PID directory) names a
//     process, which must be one of the dumped tree: PIDs are kept, so
//     the path names the same process after the restore. /proc/self/...
//     shows as /proc/PID/... of the task itself. A process outside the
//     tree is refused: after the restore the PID may name another
//     process, or none. So is a thread other than a process's first
//     (/proc/PID/task/TID, /proc/TID): the restore makes threads after
//     every fd table;
//   - other files (/proc/sys/..., /proc/meminfo) reopen by path;
//   - the flags and the offset are kept (regfile.go; seq_file and sysctl
//     files seek to it again);
//   - namespace files (an open /proc/PID/ns/NAME, on nsfs) are of the
//     task's own namespaces only, and reopen as /proc/self/ns/NAME of the
//     restored task (nsFileKind).
//
// Only files of the /proc that ckpt itself sees (its superblock) are
// taken: another proc mount may be of another PID namespace, whose PIDs
// ckpt does not map yet.

// procPid returns the PID of a path /proc/PID or /proc/PID/..., else 0.
func procPid(path string) int {
	rest, ok := strings.CutPrefix(path, "/proc/")
	if !ok {
		return 0
	}
	num, _, _ := strings.Cut(rest, "/")
	pid, err := strconv.Atoi(num)
	if err != nil || pid <= 0 || strconv.Itoa(pid) != num {
		return 0
	}
	return pid
}

// procTid returns the TID of a path /proc/PID/task/TID[/...], else 0.
func procTid(path string) int {
	pid := procPid(path)
	if pid == 0 {
		return 0
	}
	rest, ok := strings.CutPrefix(path, "/proc/"+strconv.Itoa(pid)+"/task/")
	if !ok {
		return 0
	}
	num, _, _ := strings.Cut(rest, "/")
	tid, err := strconv.Atoi(num)
	if err != nil || tid <= 0 || strconv.Itoa(tid) != num {
		return 0
	}
	return tid
}

// checkProcFile refuses, at dump, an fd of task t on a file of /proc that
// the restore could not open again in the same terms (see above). Files
// of other file systems pass.
func checkProcFile(t Task, f *File) error {
	var sfs unix.Statfs_t
	if err := unix.Statfs(fmt.Sprintf("/proc/%d/fd/%d", t.Pid, f.Fd), &sfs); err != nil {
		return fmt.Errorf("fd %d (%s): statfs: %w", f.Fd, f.Path, err)
	}
	if sfs.Type != unix.PROC_SUPER_MAGIC {
		return nil
	}
	pid := procPid(f.Path)
	if pid == 0 {
		return nil // /proc/sys/..., /proc/meminfo, ...: by path
	}
	var own unix.Stat_t
	if err := unix.Stat("/proc", &own); err != nil {
		return fmt.Errorf("stat /proc: %w", err)
	}
	if own.Dev != f.Stat.Dev {
		return ckerr.Unsupported(t.Pid, fmt.Sprintf("fd %d, a file of process %d in another proc mount (%s)", f.Fd, pid, f.Path),
			"files of a /proc mounted apart from ckpt's (maybe of another PID namespace) cannot be dumped yet; close it before the dump")
	}
	threadRefusal := func(tid int) error {
		return ckerr.Unsupported(t.Pid, fmt.Sprintf("fd %d, a file of thread %d (%s)", f.Fd, tid, f.Path),
			"files of a thread other than a process's first are not supported yet (the restore makes threads after the files); close it before the dump")
	}
	if tid := procTid(f.Path); tid != 0 && tid != pid {
		return threadRefusal(tid)
	}
	if t.InTree == nil || t.InTree(pid) {
		return nil
	}
	// /proc/TID/... of a thread of a process of the tree.
	if st, err := procfs.ReadStatus(pid); err == nil && t.InTree(st.Tgid) {
		return threadRefusal(pid)
	}
	return ckerr.Unsupported(t.Pid, fmt.Sprintf("fd %d, a file of process %d (%s)", f.Fd, pid, f.Path),
		fmt.Sprintf("process %d is not in the dumped tree (or is gone): after the restore its PID could name another process; close the fd or dump a tree that holds process %d", pid, pid))
}

// lateProc is an fd of /proc/PID/... whose process did not exist yet
// when its task's fd table was built (a child of the task, made after
// it): it is opened in FinishTree.
type lateProc struct {
	r       Restorer
	num     int
	path    string
	flags   uint32
	cloexec bool
	pos     uint64
}

// openProc opens a file of /proc at fd num of the task, or, when it names
// a process of the tree that the restore has not made yet, leaves it for
// FinishTree.
func (k *regKind) openProc(r Restorer, num int, path string, flags uint32, cloexec bool, pos uint64) error {
	err := openAt(r, num, path, flags, cloexec, pos)
	if err == nil || !errors.Is(err, unix.ENOENT) {
		return err
	}
	pid := procPid(path)
	if pid == 0 || !inDump(r, pid) {
		return err
	}
	k.late = append(k.late, lateProc{r, num, path, flags, cloexec, pos})
	return nil
}

// inDump tells whether process pid is one of the restored tree.
func inDump(r Restorer, pid int) bool {
	for _, p := range r.Dump().Procs {
		if p.Pid == pid {
			return true
		}
		for _, tid := range p.Pstree.GetThreads() {
			if int(tid) == pid {
				return true
			}
		}
	}
	return false
}

// FinishTree opens the files of /proc left for when every process of the
// tree exists.
func (k *regKind) FinishTree() error {
	for _, l := range k.late {
		if err := openAt(l.r, l.num, l.path, l.flags, l.cloexec, l.pos); err != nil {
			return fmt.Errorf("task %d: fd %d (%s): %w", l.r.Pid(), l.num, l.path, err)
		}
	}
	k.late = nil
	return nil
}

// nsFileKind is an open namespace file (/proc/PID/ns/NAME, on nsfs) of
// one of the task's own namespaces: reopened as /proc/self/ns/NAME of the
// restored task, which is in the namespaces the dump gave it. A
// namespace file of a namespace the task is not in is refused.
type nsFileKind struct{}

func (nsFileKind) Name() string { return "namespace file" }

func (nsFileKind) Match(f *File, o Options) (bool, error) {
	if f.Stat.Mode&unix.S_IFMT != unix.S_IFREG {
		return false, nil
	}
	_, ok := nsfsName(f.Path)
	return ok && f.FsType == unix.NSFS_MAGIC, nil
}

// nsFlags are the namespaces by their names in /proc/PID/ns and their
// CLONE_NEW* flags (include/uapi/linux/sched.h).
var nsFlags = map[string]uint32{
	"cgroup": unix.CLONE_NEWCGROUP, "ipc": unix.CLONE_NEWIPC, "mnt": unix.CLONE_NEWNS, "net": unix.CLONE_NEWNET,
	"pid": unix.CLONE_NEWPID, "time": unix.CLONE_NEWTIME, "user": unix.CLONE_NEWUSER, "uts": unix.CLONE_NEWUTS,
}

// nsName is the name of the namespace kind of a CLONE_NEW* flag.
func nsName(flag uint32) (string, bool) {
	for n, f := range nsFlags {
		if f == flag {
			return n, true
		}
	}
	return "", false
}

func (nsFileKind) Collect(t Task, f *File, flags uint32, e *fdinfo.FileEntry) error {
	name, _ := nsfsName(f.Path)
	flag, ok := nsFlags[name]
	var st unix.Stat_t
	if !ok {
		return ckerr.Unsupported(t.Pid, fmt.Sprintf("fd %d, a %s namespace file (%s)", f.Fd, name, f.Path), "ckpt does not know this kind of namespace; close it before the dump")
	}
	own := fmt.Sprintf("/proc/%d/ns/%s", t.Pid, name)
	if err := unix.Stat(own, &st); err != nil {
		return fmt.Errorf("fd %d (%s): stat %s: %w", f.Fd, f.Path, own, err)
	}
	if st.Ino != f.Stat.Ino || st.Dev != f.Stat.Dev {
		return ckerr.Unsupported(t.Pid, fmt.Sprintf("fd %d, a %s namespace file (%s)", f.Fd, name, f.Path),
			"it is not the process's own "+name+" namespace (that is "+linkOr(own)+"): only a process's own namespace files can be restored; close it before the dump")
	}
	e.Type = fdinfo.FdTypes_NS.Enum()
	e.Nsf = &ns.NsFileEntry{Id: e.Id, NsId: proto.Uint32(uint32(f.Stat.Ino)), NsCflag: proto.Uint32(flag), Flags: proto.Uint32(flags)}
	return nil
}

// linkOr reads a symbolic link for a message, or says it could not.
func linkOr(path string) string {
	l, err := os.Readlink(path)
	if err != nil {
		return "unreadable"
	}
	return l
}

func (nsFileKind) Open(r Restorer, num int, cloexec bool, e *fdinfo.FileEntry) error {
	nsf := e.GetNsf()
	if nsf == nil {
		return fmt.Errorf("fd %d: files.img: no namespace file with id %d", num, e.GetId())
	}
	name, ok := nsName(nsf.GetNsCflag())
	if !ok {
		return fmt.Errorf("fd %d: namespace file of unknown kind %#x", num, nsf.GetNsCflag())
	}
	path := "/proc/self/ns/" + name
	if err := openAt(r, num, path, nsf.GetFlags(), cloexec, 0); err != nil {
		return fmt.Errorf("fd %d (%s): %w", num, path, err)
	}
	return nil
}
