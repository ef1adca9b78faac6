//go:build linux && amd64

// Package ckpt is ckpt's library API: checkpoint a running process tree
// into a directory of CRIU-format images, restore it with the same PIDs,
// summarize a dump, and ask what the running kernel supports. The ckpt
// command is a thin CLI over these calls and imports nothing else of
// ckpt's. Callers must run as root; ptrace work happens on a locked OS
// thread of ckpt's own, so the calls may be made from any goroutine.
//
// Errors wrap their causes with context. Callers can match the typed
// ones: an object a dump cannot checkpoint (errors.Is(err,
// ErrUnsupported), or errors.As with *UnsupportedError for the task, the
// object and the reason), a PID that a restore needs and finds in use
// (ErrPidInUse, *PidInUseError) and a truncated or malformed image
// (ErrCorruptImage).
package ckpt

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/internal/ckerr"
	"github.com/ckpt/ckpt/internal/cpucap"
	"github.com/ckpt/ckpt/internal/dump"
	"github.com/ckpt/ckpt/internal/imgsummary"
	"github.com/ckpt/ckpt/internal/kerndat"
	"github.com/ckpt/ckpt/internal/kinds/fd"
	"github.com/ckpt/ckpt/internal/lazypages"
	"github.com/ckpt/ckpt/internal/model"
	"github.com/ckpt/ckpt/internal/progress"
	"github.com/ckpt/ckpt/internal/restore"
)

// DumpOptions control a dump.
type DumpOptions struct {
	// Pid is the task to dump, with its descendants.
	Pid int
	// ImagesDir receives the images; it is created if missing.
	ImagesDir string
	// LeaveRunning lets the tree go on after the dump instead of killing it.
	LeaveRunning bool
	// ShellJob allows stdio (fds 0-2) that is a tty or a pipe; a restore
	// with ShellJob then gives the task the stdio of whoever restores it.
	ShellJob bool
	// ExtUnixSk is CRIU's --ext-unix-sk: a unix datagram socket connected
	// to a socket outside the tree is dumped, and connected to that
	// socket's name again at restore (a stream connection to the outside
	// is refused still: its other end cannot be made again).
	ExtUnixSk bool
	// TcpEstablished is CRIU's --tcp-established: established TCP
	// connections are dumped with their state and queues (TCP_REPAIR)
	// and restored; one to a peer outside the tree is locked in the
	// network (nftables rules that drop its packets) from the dump until
	// the restore, so that the peer sees no reset. Without it (and
	// without TcpClose) an established connection is refused.
	TcpEstablished bool
	// TcpClose is CRIU's --tcp-close: established TCP connections are
	// dumped without their state, and restored closed.
	TcpClose bool
	// FileLocks is CRIU's --file-locks: the POSIX (fcntl), OFD and flock
	// locks that the tree holds are dumped (file-locks.img), for a
	// restore with FileLocks to take again. Without it a task holding a
	// lock is refused. Leases, mandatory locks and a task blocked waiting
	// for a lock are refused either way.
	FileLocks bool
	// GhostLimit is the largest file, unlinked but still open or mapped,
	// whose contents the dump saves (CRIU's --ghost-limit); a larger one
	// is refused. 0 means 1 MiB, CRIU's default.
	GhostLimit int64
	// LinkRemap is CRIU's --link-remap: a file unlinked while it keeps
	// other links (glibc's named semaphores) is linked at link_remap.ID
	// in its directory until the restore, which removes that link, as
	// CRIU does: the dump restores once, and CRIU can restore it.
	// Without it the dump changes nothing on disk and restores any
	// number of times; CRIU refuses such a dump.
	LinkRemap bool
	// FreezeTimeout bounds the wait for the tree to stop (0: 10 s).
	FreezeTimeout time.Duration
	// CPUCap is CRIU's --cpu-cap at dump: CPUCapNone leaves out
	// cpuinfo.img, so that a restore cannot compare CPUs; any other of
	// CPUCapValues, or empty, records this machine's CPU.
	CPUCap string
	// Logf, if set, receives progress messages.
	Logf func(format string, args ...any)
	// Progress, if set, counts the bytes of memory copied of the total
	// (see ShowProgress).
	Progress *Progress
	// PageServer, if set (host:port), is a page server (ServePages,
	// `ckpt page-server`) that receives the images: the dump connects
	// to it before it touches the tree, streams the pages images to it
	// (they are not written in ImagesDir), sends it every other image
	// too (those are also written in ImagesDir) and succeeds only once
	// the server has synced them all. The server's directory then holds
	// the whole dump.
	PageServer string
	// Context, if set, aborts the dump when it is done (cancelled): the
	// dump stops at its next safe point, lets the tree go as it was and
	// removes the images it wrote; the error matches ErrInterrupted and
	// names context.Cause. A dump whose images are all in place goes on
	// to its end.
	Context context.Context
	// PreDump is CRIU's pre-dump: the tree's memory is saved and the
	// tree left running with its writes tracked, for a later dump with
	// PrevImagesDir and TrackMem to save only the pages changed since.
	PreDump bool
	// PrevImagesDir is CRIU's --prev-images-dir: the images directory of
	// the previous dump of a pre-copy chain (relative to ImagesDir, or
	// absolute), where unchanged pages are left (the "parent" link).
	PrevImagesDir string
	// TrackMem is CRIU's --track-mem: track the tree's writes, and leave
	// unchanged pages in PrevImagesDir's dump.
	TrackMem bool
	// Notef, if set, receives notes for the user (a pre-copy dump that
	// had to save every page, and why).
	Notef func(format string, args ...any)
	// NoSync leaves the images in the page cache, as CRIU does: the dump
	// does not wait for them to reach the disk. Faster, but a crash of
	// the machine soon after can lose a dump whose tree was killed.
	// Without it every image file and the directory are synced before
	// the tree is killed or let go.
	NoSync bool
}

// DumpStats are measurements of a dump.
type DumpStats struct {
	// FrozenFor is the time from the stop of the tree to its kill or release.
	FrozenFor time.Duration
	// PagesWritten counts the pages written to the pages images.
	PagesWritten uint64
	// ZeroPages counts the pages left out because they map the zero page.
	ZeroPages uint64
	// PagesSpliced counts, of PagesWritten, the pages the task vmspliced
	// into pipes that ckpt spliced into the image (one copy); the others
	// were read through its memory and written (two).
	PagesSpliced uint64
	// ImageBytes is the size of all image files written.
	ImageBytes int64
	// PagesInParent counts the pages a pre-copy dump left in the parent
	// dump, unchanged since (pagemap entries in_parent).
	PagesInParent uint64
}

// RestoreOptions control a restore.
type RestoreOptions struct {
	// ImagesDir holds the dump.
	ImagesDir string
	// ShellJob lets the task inherit stdio that was a tty or a pipe at
	// dump time from Stdin, Stdout and Stderr.
	ShellJob bool
	// FileLocks is CRIU's --file-locks: the dumped file locks are taken
	// again, each in its process once its files exist; one that another
	// process holds meanwhile fails the restore, naming the file and the
	// lock. A dump that holds locks is refused without it.
	FileLocks bool
	// TcpClose is CRIU's --tcp-close: the dumped established TCP
	// connections are restored closed.
	TcpClose bool
	// Stdin, Stdout and Stderr are given to the restored task for
	// inherited stdio; nil means os.Stdin, os.Stdout, os.Stderr.
	Stdin, Stdout, Stderr *os.File
	// CPUCap is the CPU check, CRIU's --cpu-cap: CPUCapIns (or empty)
	// refuses a dump from a CPU with instruction-set features this one
	// lacks, CPUCapFPU checks only the xsave state in use.
	CPUCap string
	// Logf, if set, receives progress messages.
	Logf func(format string, args ...any)
	// Progress, if set, counts the bytes of memory put in place of the
	// total (see ShowProgress).
	Progress *Progress
	// LazyPages is CRIU's --lazy-pages: the tree runs as soon as its
	// registers are set, and its private anonymous memory is put in by a
	// lazy-pages server (ServeLazyPages, `ckpt lazy-pages`) that must
	// already listen in ImagesDir; without one the restore fails, saying
	// what to start. The tasks depend on the server until it has put in
	// every page and exited: should it be killed before that, the pages
	// not yet in read as zeros.
	LazyPages bool
}

// LazyPagesOptions control a lazy-pages server.
type LazyPagesOptions struct {
	// ImagesDir holds the dump; the server's socket is made there
	// (lazy-pages.socket).
	ImagesDir string
	// Context, if set, stops the server when cancelled; the tasks whose
	// pages are not all in are killed.
	Context context.Context
	// Ready, if set, is called once the socket listens.
	Ready func()
	// Logf, if set, receives progress messages.
	Logf func(format string, args ...any)
}

// LazyPagesStats say what a lazy-pages server did.
type LazyPagesStats = lazypages.Stats

// ServeLazyPages is CRIU's lazy-pages: it serves the memory of one lazy
// restore (RestoreOptions.LazyPages) of the dump in opts.ImagesDir, page
// faults first and every other page in the background, following the
// tasks' forks, mremaps, madvise(MADV_DONTNEED)s and munmaps, and
// returns once all pages of all tasks are in or the tasks are gone.
func ServeLazyPages(opts LazyPagesOptions) (*LazyPagesStats, error) {
	return lazypages.Serve(lazypages.Options{ImagesDir: opts.ImagesDir, Context: opts.Context, Ready: opts.Ready, Logf: opts.Logf})
}

// Progress counts the bytes of memory a dump or a restore has copied,
// of its total; its methods are safe from any goroutine.
type Progress = progress.Meter

// ShowProgress draws p as one line that updates itself a few times a
// second on f ("dump: 412 MiB of 1.0 GiB, 830 MiB/s"), from half a
// second on, if f is a terminal; stop erases it. When f is not a
// terminal it writes nothing.
func ShowProgress(f *os.File, verb string, p *Progress) (stop func()) {
	return progress.Show(f, verb, p)
}

// Process is a restored process tree's root, a child of the caller.
type Process struct {
	// Pid is the root's PID.
	Pid int
	// Took is how long the restore took, from start to release.
	Took time.Duration
}

// Wait waits for the restored root to end and returns its wait status.
func (p *Process) Wait() (unix.WaitStatus, error) {
	return (&restore.Process{Pid: p.Pid, Took: p.Took}).Wait()
}

// The values of DumpOptions.CPUCap and RestoreOptions.CPUCap, CRIU's
// --cpu-cap. At dump every value but CPUCapNone records the CPU. At
// restore CPUCapIns, CPUCapCPU and CPUCapAll refuse a dump from a CPU
// with features this one lacks; CPUCapFPU and CPUCapNone check only the
// xsave state the threads were using (always checked).
const (
	CPUCapIns  = cpucap.Ins  // compare instruction-set features; the default
	CPUCapFPU  = cpucap.FPU  // check only the xsave state in use
	CPUCapCPU  = cpucap.CPU  // as CPUCapIns
	CPUCapAll  = cpucap.All  // as CPUCapIns
	CPUCapNone = cpucap.None // as CPUCapFPU at restore; no cpuinfo.img at dump
)

// CPUCapValues lists the CPUCap values, the default first.
var CPUCapValues = slices.Clone(cpucap.Values)

// Typed errors; see the package comment.
type (
	// UnsupportedError is a dump's refusal of an object ckpt cannot
	// checkpoint: Task, Object and Reason (with what to do).
	UnsupportedError = ckerr.UnsupportedError
	// PidInUseError is a restore's refusal because a PID the tree needs
	// belongs to another task: Pid and Holder.
	PidInUseError = ckerr.PidInUseError
)

// Sentinels for errors.Is.
var (
	// ErrUnsupported matches every *UnsupportedError.
	ErrUnsupported = ckerr.ErrUnsupported
	// ErrPidInUse matches every *PidInUseError.
	ErrPidInUse = ckerr.ErrPidInUse
	// ErrInterrupted marks a dump stopped through DumpOptions.Context.
	ErrInterrupted = dump.ErrInterrupted
	// ErrCorruptImage marks a truncated or malformed image file; the
	// error names the file.
	ErrCorruptImage = ckerr.ErrCorruptImage
)

// Dump checkpoints the task opts.Pid and its descendants into
// opts.ImagesDir. Unless opts.LeaveRunning, the tree is killed after a
// successful dump; a failed dump leaves it running as it was.
func Dump(opts DumpOptions) (*DumpStats, error) {
	st, err := dump.Dump(dump.Options{
		Pid: opts.Pid, ImagesDir: opts.ImagesDir, LeaveRunning: opts.LeaveRunning,
		ShellJob: opts.ShellJob, ExtUnixSk: opts.ExtUnixSk, FileLocks: opts.FileLocks, FreezeTimeout: opts.FreezeTimeout, CPUCap: opts.CPUCap, Logf: opts.Logf,
		Progress: opts.Progress, Context: opts.Context, GhostLimit: opts.GhostLimit, LinkRemap: opts.LinkRemap,
		TcpEstablished: opts.TcpEstablished, TcpClose: opts.TcpClose, PageServer: opts.PageServer,
		PreDump: opts.PreDump, PrevImagesDir: opts.PrevImagesDir, TrackMem: opts.TrackMem, Notef: opts.Notef, NoSync: opts.NoSync,
	})
	if err != nil {
		return nil, err
	}
	return &DumpStats{FrozenFor: st.FrozenFor, PagesWritten: st.PagesWritten, ZeroPages: st.ZeroPages, PagesSpliced: st.PagesSpliced, ImageBytes: st.ImageBytes,
		PagesInParent: st.PagesInParent}, nil
}

// TrackHolderCommand is the hidden command of the ckpt binary that runs
// the process holding a pre-copy chain's write tracking between two dumps
// (RunTrackHolder); a pre-dump starts it by running its own executable.
const TrackHolderCommand = dump.TrackHolderCommand

// RunTrackHolder runs that process: args are its command line after
// TrackHolderCommand.
func RunTrackHolder(args []string) error {
	if len(args) < 1 {
		return fmt.Errorf("%s DIR PID...", TrackHolderCommand)
	}
	return dump.RunTrackHolder(args[0], args[1:])
}

// Restore brings back the tree dumped in opts.ImagesDir and returns once
// it runs; Process.Wait waits for its root.
func Restore(opts RestoreOptions) (*Process, error) {
	p, err := restore.Restore(restore.Options{
		ImagesDir: opts.ImagesDir, ShellJob: opts.ShellJob, FileLocks: opts.FileLocks,
		Stdin: opts.Stdin, Stdout: opts.Stdout, Stderr: opts.Stderr,
		CPUCap: opts.CPUCap, Logf: opts.Logf, TcpClose: opts.TcpClose, Progress: opts.Progress,
		LazyPages: opts.LazyPages,
	})
	if err != nil {
		return nil, err
	}
	return &Process{Pid: p.Pid, Took: p.Took}, nil
}

// NetUnlockOptions control NetUnlock.
type NetUnlockOptions struct {
	// ImagesDir holds the dump whose connections to unlock.
	ImagesDir string
	// NetNs is the network namespace to unlock them in, as a file
	// (/proc/PID/ns/net, /run/netns/NAME); "" for ckpt's own, where a
	// dump locks them (ckpt dumps no task of another network namespace).
	NetNs string
}

// NetUnlock lifts the network lock that a dump with TcpEstablished left
// for its connections to peers outside the tree, for a dump that will
// not be restored (a restore lifts it itself): it removes exactly the
// nftables rules (table inet ckpt) of the connections in the dump, and
// returns those connections as "ckpt LOCAL PEER"; none when none of them
// was locked.
func NetUnlock(opts NetUnlockOptions) ([]string, error) {
	d, err := model.Load(opts.ImagesDir)
	if err != nil {
		return nil, err
	}
	cs, err := fd.NetUnlock(d, opts.NetNs)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.String()
	}
	return out, nil
}

// Show writes what the dump in dir holds, as `ckpt show` prints it: the
// tasks and threads with their ABI and CPU mode, memory areas, files and
// image sizes.
func Show(w io.Writer, dir string) error { return imgsummary.Write(w, dir) }

// CheckResult is one kernel feature probe of Check.
type CheckResult struct {
	// Name says what was probed, e.g. "ptrace seize/interrupt".
	Name string
	// OK is true when the feature works.
	OK bool
	// Detail is what was found: a version, an address, or, when OK is
	// false, why the feature is not supported.
	Detail string
	// Required is true when checkpoint/restore of any task cannot work
	// without the feature.
	Required bool
}

// String formats the result as one line of `ckpt check`:
// "ok    NAME: DETAIL" or "FAIL  NAME: DETAIL".
func (r CheckResult) String() string {
	return kerndat.Result{Name: r.Name, OK: r.OK, Detail: r.Detail, Required: r.Required}.String()
}

// Check probes the running kernel, once per process (later calls return
// the same results), in a fixed order.
func Check() []CheckResult {
	var out []CheckResult
	for _, r := range kerndat.Probe() {
		out = append(out, CheckResult{Name: r.Name, OK: r.OK, Detail: r.Detail, Required: r.Required})
	}
	return out
}

// CheckFeature answers `criu check --feature NAME` for the CRIU feature
// names that ckpt's probes answer (CheckFeatureNames); known is false for
// any other name.
func CheckFeature(name string) (r CheckResult, known bool) {
	kr, ok := kerndat.Feature(name)
	if !ok {
		return CheckResult{}, false
	}
	return CheckResult{Name: kr.Name, OK: kr.OK, Detail: kr.Detail, Required: kr.Required}, true
}

// CheckFeatureNames lists the CRIU feature names CheckFeature answers.
func CheckFeatureNames() []string { return kerndat.FeatureNames() }

// CheckOK reports whether every probe that checkpoint/restore needs
// passed: whether native (x86_64) tasks can be checkpointed and restored.
func CheckOK(rs []CheckResult) bool {
	for _, r := range rs {
		if r.Required && !r.OK {
			return false
		}
	}
	return true
}

// CheckCompatOK reports whether ia32 (compat) tasks can be checkpointed
// and restored too: CheckOK, and the probe that runs an ia32 syscall in
// a helper turned compat passed.
func CheckCompatOK(rs []CheckResult) bool {
	if !CheckOK(rs) {
		return false
	}
	for _, r := range rs {
		if r.Name == kerndat.CompatProbe && !r.OK {
			return false
		}
	}
	return true
}

// CheckSummary is the last line of `ckpt check`: whether native and ia32
// checkpoint/restore can work.
func CheckSummary(rs []CheckResult) string {
	return "summary: native (x86_64) checkpoint/restore: " + yesNo(CheckOK(rs)) + "; ia32 (compat): " + yesNo(CheckCompatOK(rs))
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
