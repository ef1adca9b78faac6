//go:build linux && amd64

package model

import (
	"fmt"
	"os"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/cpuinfo"
	criucore "github.com/checkpoint-restore/go-criu/v8/crit/images/criu-core"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/fdinfo"
	filelock "github.com/checkpoint-restore/go-criu/v8/crit/images/file-lock"
	fsimg "github.com/checkpoint-restore/go-criu/v8/crit/images/fs"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/inventory"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/mm"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/pagemap"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/pstree"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/timens"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/tty"

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
	// Shmem are the contents of shared anonymous memory objects, for
	// Write; Load leaves them in their images (see ShmemContent).
	Shmem []Shmem
	// Clocks are the tree's CLOCK_MONOTONIC and CLOCK_BOOTTIME at the
	// dump, nil for a dump without them.
	Clocks *timens.TimensEntry
	// CPU describes the dumping machine's CPU, nil for a dump without it.
	CPU *cpuinfo.CpuinfoEntry
	// TtyInfos are the terminals that files of the dump refer to, by
	// tty_info_id (tty-info.img): their modes and window sizes.
	TtyInfos map[uint32]*tty.TtyInfoEntry
	// FileLocks are the file locks of the tree (file-locks.img, dumped
	// with --file-locks): each names the process that takes it again at
	// restore (pid, as the images name it) and an fd of that process
	// that refers to the locked file (see package fd, lock.go).
	FileLocks []*filelock.FileLockEntry
}

// PipeData is what a pipe held at dump time.
type PipeData struct {
	Data []byte
	Size int
}

// Shmem is the content of one shared anonymous memory object, named by
// its inode (vma_entry.shmid of the areas that map it).
type Shmem struct {
	Ino  uint64
	Data []byte
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
	// ExePath is the executable's path; ABI is read from its ELF header
	// at Load, Compat is ABI == ia32.
	ExePath string
	ABI     x86.ABI
	Compat  bool
	// Refused says why this process cannot be restored on this machine
	// (its executable is gone, an x32 program, ...); nil if it can.
	Refused error
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
