//go:build linux && amd64

package model

import (
	"fmt"
	tcpstream "github.com/checkpoint-restore/go-criu/v8/crit/images/tcp-stream"
	"os"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/cpuinfo"
	criucore "github.com/checkpoint-restore/go-criu/v8/crit/images/criu-core"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/fdinfo"
	filelock "github.com/checkpoint-restore/go-criu/v8/crit/images/file-lock"
	fsimg "github.com/checkpoint-restore/go-criu/v8/crit/images/fs"
	ghostfile "github.com/checkpoint-restore/go-criu/v8/crit/images/ghost-file"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/inventory"
	ipcvar "github.com/checkpoint-restore/go-criu/v8/crit/images/ipc-var"
	memfdimg "github.com/checkpoint-restore/go-criu/v8/crit/images/memfd"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/mm"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/mnt"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/pagemap"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/pstree"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/timens"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/tty"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/utsns"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/image"
)

// Dump is a whole dump: the process tree and what its processes share.
type Dump struct {
	// Dir is where the images are (set by Load, and by Write).
	Dir image.Dir
	// Inventory is inventory.img, written last: its presence marks a
	// whole dump.
	Inventory *inventory.InventoryEntry
	// Procs are the processes in pstree order: the root first, every
	// parent before its children.
	Procs []*Process
	// Files are the open files of files.img by id; ids are given in
	// order from 1 (see AddFile).
	Files map[uint32]*fdinfo.FileEntry
	// Pipes are the buffered bytes and size of every dumped pipe, by pipe id.
	Pipes map[uint32]PipeData
	// SkQueues are the messages queued to be read in each socket, by the
	// socket's file id, oldest first (sk-queues.img): one per datagram
	// or seqpacket record; a stream's bytes in chunks.
	SkQueues map[uint32][][]byte
	// SkAddrs are, beside SkQueues, the sender's address of each queued
	// datagram of an inet socket (a raw struct sockaddr_in or
	// sockaddr_in6), nil where none: sk_packet_entry's field 3, which
	// CRIU reserves for the message address.
	SkAddrs map[uint32][][]byte
	// SkScm are, beside SkQueues, the files in flight that each queued
	// message of a unix socket carries (SCM_RIGHTS), as file ids of
	// Files, nil where none: sk_packet_entry's scm.
	SkScm map[uint32][][]uint32
	// TcpStreams are the established TCP connections' states, by socket
	// inode (tcp-stream-INO.img, --tcp-established).
	TcpStreams map[uint32]*TcpStream
	// SkMoved are, by file id, the unix sockets whose bound file was
	// renamed since it was bound: where the file is now
	// (remap-fpath.img, with a regular-file entry for the path).
	SkMoved map[uint32]string
	// Unlisted are files that no fd of the tree holds, added to files.img
	// by Write: the sockets outside the tree that dumped unix sockets are
	// connected to (--ext-unix-sk), with CRIU's USK_EXTERN flag.
	Unlisted []*fdinfo.FileEntry
	// Fifos are the bytes queued in the dumped FIFOs and their size, by
	// pipe id (fifo-data.img); a FIFO that a process outside the tree
	// held has none: its bytes stayed in it.
	Fifos map[uint32]PipeData
	// Shmem are the shared anonymous memory objects and memfds of a
	// dump being made (shmem.go); Load leaves them in their images (see
	// CopyShmem).
	Shmem []Shmem
	// ShmemPagesBase is, while a dump is made, the number of processes
	// it will hold: SaveShmem numbers the pages images of shared memory
	// after theirs.
	ShmemPagesBase int
	// ShmemWriteback has SaveShmem start the writeback of each chunk it
	// writes (a dump that syncs its images at the end).
	ShmemWriteback bool
	// Clocks are the tree's CLOCK_MONOTONIC and CLOCK_BOOTTIME at the
	// dump, nil for a dump without them.
	Clocks *timens.TimensEntry
	// CPU describes the dumping machine's CPU, nil for a dump without it.
	CPU *cpuinfo.CpuinfoEntry
	// TtyInfos are the terminals that files of the dump refer to, by
	// tty_info_id (tty-info.img): their modes and window sizes.
	TtyInfos map[uint32]*tty.TtyInfoEntry
	// TtyData are the bytes queued in terminals (tty-data.img), by
	// tty_id: the id of the pty end whose reader they wait for.
	TtyData map[uint32][]byte
	// UTS and IPC are the namespaces of the tree other than ckpt's, by
	// the id that task_kobj_ids_entry.uts_ns_id and ipc_ns_id name them
	// with (utsns-ID.img, ipcns-var-ID.img). A task without such an id
	// shares the namespace of the ckpt that dumped it, and is restored
	// into the restoring ckpt's.
	UTS map[uint32]*utsns.UtsnsEntry
	IPC map[uint32]*ipcvar.IpcVarEntry
	// SysV are the SysV IPC objects of the IPC namespaces of IPC, by
	// the same ids (sysvipc.go).
	SysV map[uint32]*SysV
	// Mounts are the mounts of each mount namespace of the tree other
	// than ckpt's, by mnt_ns_id (mountpoints-ID.img), in mountinfo order.
	Mounts map[uint32][]*mnt.MntEntry
	// FileLocks are the file locks of the tree (file-locks.img, dumped
	// with --file-locks): each names the process that takes it again at
	// restore (pid, as the images name it) and an fd of that process
	// that refers to the locked file (see package fd, lock.go).
	FileLocks []*filelock.FileLockEntry
	// Ghosts are the contents of files that were unlinked while a task
	// held them open or mapped, by ghost id (ghost-file-ID.img).
	Ghosts map[uint32]*Ghost
	// Remaps name, for a regular file of Files whose path was unlinked,
	// the ghost that holds it (remap-fpath.img, remap_type GHOST).
	Remaps map[uint32]uint32
	// Linked name, for a regular file of Files whose path was unlinked
	// while the file kept another name (glibc's sem_open maps a
	// temporary file, links it to the semaphore's name and unlinks the
	// temporary one), the regular-file entry of a link of the file
	// (remap-fpath.img, remap_type LINKED): the link a dump with
	// --link-remap made (link_remap.ID, CRIU's encoding), or, in dumps of
	// older ckpt versions, the file's other name.
	Linked map[uint32]uint32
	// LinkedAt is, for a regular file of Files whose path was unlinked
	// while it kept another link, that other name, as a dump without
	// --link-remap records it (ckpt's own field of the file's entry,
	// linkedname.go): the restore opens the file there and leaves it.
	LinkedAt map[uint32]string
	// LinkRemapOf and MadeLinks are the dump's own (no image): the
	// regular-file entry of the link made for each linked file, by
	// device and inode, and the paths of the links made, which a dump
	// that fails removes (see RemoveMadeLinks and package fd, linked.go).
	LinkRemapOf map[[2]uint64]uint32
	MadeLinks   []string
	// criuPidNsID is, loading a CRIU dump, CRIU's id of the PID namespace
	// whose init is the tree's root (criuPidNS).
	criuPidNsID uint32
	// Memfds are the memfds of the dump (memfd.img) by inode id; their
	// contents are shared memory objects (Shmem, CopyShmem) named by
	// their shmid.
	Memfds map[uint32]*memfdimg.MemfdInodeEntry
	// PosixMQs are the POSIX message queues the tree holds open, with
	// their messages (posix-mq.img, ckpt's own: posixmq.go).
	PosixMQs []*PosixMQ
}

// Ghost is an unlinked file saved whole: its attributes and contents.
type Ghost struct {
	Entry *ghostfile.GhostFileEntry
	Data  []byte
}

// AddGhost adds g under the next ghost id and returns the id.
func (d *Dump) AddGhost(g *Ghost) uint32 {
	if d.Ghosts == nil {
		d.Ghosts = map[uint32]*Ghost{}
	}
	id := uint32(len(d.Ghosts) + 1)
	d.Ghosts[id] = g
	return id
}

// SetRemap records that regular file id is held by ghost gid.
func (d *Dump) SetRemap(id, gid uint32) {
	if d.Remaps == nil {
		d.Remaps = map[uint32]uint32{}
	}
	d.Remaps[id] = gid
}

// SetLinked records that regular file id, whose path was unlinked, is
// linked at the path of regular file to.
func (d *Dump) SetLinked(id, to uint32) {
	if d.Linked == nil {
		d.Linked = map[uint32]uint32{}
	}
	d.Linked[id] = to
}

// SetLinkedAt records that regular file id, whose path was unlinked, is
// linked at other (see LinkedAt), in the file's entry too.
func (d *Dump) SetLinkedAt(id uint32, other string) {
	if d.LinkedAt == nil {
		d.LinkedAt = map[uint32]string{}
	}
	d.LinkedAt[id] = other
	if r := d.Files[id].GetReg(); r != nil {
		SetRegLinkedAt(r, other)
	}
}

// RemoveMadeLinks removes the links the dump made for linked files: the
// dump failed.
func (d *Dump) RemoveMadeLinks() {
	for _, p := range d.MadeLinks {
		_ = os.Remove(p)
	}
	d.MadeLinks = nil
}

// GhostOf returns the ghost that holds regular file id, nil if the file
// is reopened by its path.
func (d *Dump) GhostOf(id uint32) (uint32, *Ghost) {
	gid, ok := d.Remaps[id]
	if !ok {
		return 0, nil
	}
	return gid, d.Ghosts[gid]
}

// PipeData is what a pipe held at dump time.
type PipeData struct {
	Data []byte
	Size int
}

// Process is one process of the tree.
type Process struct {
	// Tree is the dump the process belongs to.
	Tree   *Dump
	Pstree *pstree.PstreeEntry
	// Core is the leader's core; Threads are the cores of the other
	// threads, with their Tids.
	Core    *criucore.CoreEntry
	Threads []*criucore.CoreEntry
	Tids    []int
	// IDs are the task's kernel object ids (ids-PID.img): which fd table,
	// fs, mm and PID namespace it has.
	IDs *criucore.TaskKobjIdsEntry
	MM  *mm.MmEntry
	// PagesID names pages-ID.img, which holds the pages that Pagemap lists.
	PagesID uint32
	Pagemap []*pagemap.PagemapEntry
	// Fds is the fd table (fdinfo-FILESID.img); empty for a process that
	// shares its parent's (CLONE_FILES).
	Fds []*fdinfo.FdinfoEntry
	FS  *fsimg.FsEntry
	// Pid is the process's PID as the images name it.
	Pid int
	// Zombie is a child that had exited but was not reaped; Core.Tc holds
	// its wait status.
	Zombie bool
	// StopSig is, for a process that was stopped (group-stop: SIGSTOP,
	// SIGTSTP, ...; task_state TASK_STOPPED), the signal that stopped
	// it (task_core_entry.stop_signo); 0 for a running one.
	StopSig int
	// OwnPidNS is set when the tree runs in a PID namespace of its own.
	OwnPidNS bool
	// NsPids are the process's PIDs in the PID namespaces below the
	// tree's top one, outermost first (pstree ns_pid, see pidns.go);
	// empty for a process of the top namespace, whose PID is Pid.
	NsPids []int
	// NsTids are the same for each thread but the leader, as Tids (pstree
	// ns_tid); nil for a process of the top namespace.
	NsTids [][]int
	// ExePath is the executable's path; ABI is read from its ELF header
	// at Load, Compat is ABI == ia32.
	ExePath string
	ABI     x86.ABI
	Compat  bool
	// Refused says why this process cannot be restored on this machine
	// (its executable is gone, an x32 program, ...); nil if it can.
	Refused error
	// FromParents are the pages of the in_parent entries of Pagemap,
	// found in the parent dumps of a pre-copy chain (parent.go) at Load.
	FromParents []ParentRun
}

// VPid is the process's PID in its own PID namespace: getpid() in it.
func (p *Process) VPid() int {
	if n := len(p.NsPids); n > 0 {
		return p.NsPids[n-1]
	}
	return p.Pid
}

// VTid is the id of thread i (as Threads and Tids) in the process's own
// PID namespace.
func (p *Process) VTid(i int) int {
	if i < len(p.NsTids) {
		if t := p.NsTids[i]; len(t) > 0 {
			return t[len(t)-1]
		}
	}
	return p.Tids[i]
}

// FilesID is the id of the process's fd table: fdinfo-FILESID.img.
func (p *Process) FilesID() uint32 {
	if id := p.IDs.GetFilesId(); id != 0 {
		return id
	}
	return DefaultFilesID
}

// Refused returns the first reason a process of the dump cannot be
// restored on this machine, nil if none.
func (d *Dump) Refused() error {
	for _, p := range d.Procs {
		if p.Refused != nil {
			return p.Refused
		}
	}
	return nil
}

// RegFile returns the regular-file entry with the given id.
func (d *Dump) RegFile(id uint32) (*fdinfo.FileEntry, error) {
	f, ok := d.Files[id]
	if !ok {
		return nil, fmt.Errorf("files.img: no regular file with id %d", id)
	}
	if f.GetReg() == nil {
		// A kind ckpt does not map, such as a memfd in CRIU's dump.
		return nil, fmt.Errorf("files.img: file id %d is a %v, not a regular file: not supported", id, f.GetType())
	}
	return f, nil
}

// RegFile returns the regular-file entry with the given id.
func (p *Process) RegFile(id uint32) (*fdinfo.FileEntry, error) { return p.Tree.RegFile(id) }

// readABI reads the ELF class of the executable; a failure is a reason
// the process cannot be restored here, not a broken dump.
func (p *Process) readABI() {
	f, err := os.Open(p.ExePath)
	if err != nil {
		if os.IsNotExist(err) {
			p.Refused = fmt.Errorf("executable %s is missing", p.ExePath)
		} else {
			p.Refused = fmt.Errorf("executable %s: %w", p.ExePath, err)
		}
		return
	}
	defer f.Close()
	if p.ABI, err = x86.ExecutableABI(f); err != nil {
		p.Refused = fmt.Errorf("executable %s: %w", p.ExePath, err)
		return
	}
	if p.ABI == x86.ABIX32 {
		p.Refused = fmt.Errorf("executable %s: %w", p.ExePath, x86.ErrX32)
		return
	}
	p.Compat = p.ABI == x86.ABI32
}

// TcpStream is one established TCP connection's state as TCP_REPAIR gives
// it: CRIU's tcp_stream_entry, then the bytes of the receive queue (not
// read yet) and of the send queue (not acknowledged yet, or not sent).
type TcpStream struct {
	Entry   *tcpstream.TcpStreamEntry
	In, Out []byte
}
