//go:build linux && amd64

// Package dump is the checkpoint path: it freezes a task with ptrace,
// collects everything the kernel knows about it (registers, memory,
// signals, files, credentials, ...) and writes CRIU-format images. A dump
// that fails leaves the task as it was: running, untraced, unchanged.
package dump

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/internal/cpucap"
	"github.com/ckpt/ckpt/internal/fault"
	"github.com/ckpt/ckpt/internal/image"
	"github.com/ckpt/ckpt/internal/pageserver"
	"github.com/ckpt/ckpt/internal/procfs"
	"github.com/ckpt/ckpt/internal/progress"
	"github.com/ckpt/ckpt/internal/ptrace"
)

// Options control a dump.
type Options struct {
	// Pid is the task to dump.
	Pid int
	// ImagesDir receives the images; it is created if missing.
	ImagesDir string
	// LeaveRunning lets the task go on after the dump instead of killing it.
	LeaveRunning bool
	// ShellJob allows stdio (fds 0-2) that is a tty or a pipe; restore
	// then gives the task the stdio of whoever runs it.
	ShellJob bool
	// ExtUnixSk dumps unix datagram sockets connected outside the tree
	// (CRIU's --ext-unix-sk).
	ExtUnixSk bool
	// TcpEstablished and TcpClose take established TCP connections
	// (CRIU's --tcp-established, --tcp-close; see fd.Options).
	TcpEstablished, TcpClose bool
	// FileLocks dumps the file locks (POSIX, OFD, flock) that the tree
	// holds into file-locks.img, CRIU's --file-locks; without it a task
	// holding a lock is refused.
	FileLocks bool
	// GhostLimit is the largest unlinked file, open or mapped, whose
	// contents the dump saves (CRIU's --ghost-limit); 0 means
	// fd.DefaultGhostLimit (1 MiB).
	GhostLimit int64
	// LinkRemap is CRIU's --link-remap: a file unlinked while it keeps
	// other links is linked at link_remap.ID in its directory for the
	// restore, which removes it (the dump restores once, and CRIU
	// restores it); without it the dump records the file's other name
	// and changes nothing on disk (see fd.Options).
	LinkRemap bool
	// FreezeTimeout bounds the wait for the task to stop (0: 10 s).
	FreezeTimeout time.Duration
	// CPUCap is CRIU's --cpu-cap at dump: "none" leaves out cpuinfo.img,
	// so that no restore can compare CPUs; any other value of
	// cpucap.Values (or empty) records this machine's CPU.
	CPUCap string
	// Logf, if set, receives progress messages.
	Logf func(format string, args ...any)
	// Progress, if set, counts the bytes of memory copied of the total.
	Progress *progress.Meter
	// PreDump is CRIU's pre-dump: the memory of the tree is saved and
	// the tree left running, with its writes tracked from then on, for
	// a later dump with PrevImagesDir and TrackMem to save only what
	// changed (track.go, predump.go).
	PreDump bool
	// PrevImagesDir is CRIU's --prev-images-dir: the images directory of
	// the previous dump of a pre-copy chain, relative to ImagesDir or
	// absolute. Pages unchanged since are left there (in_parent).
	PrevImagesDir string
	// TrackMem is CRIU's --track-mem: track the tree's writes, for a
	// later dump with this one as PrevImagesDir.
	TrackMem bool
	// Notef, if set, receives notes the user should see (a pre-copy
	// dump that had to save everything, and why).
	Notef func(format string, args ...any)
	// track is the write tracking of a pre-copy chain (track.go).
	track *memTracker
	// direct decides which pages images bypass the page cache
	// (pagesink.go), set by Dump.
	direct *directWrites
	// pageWriters is CKPT_PAGE_WRITERS (pagesink.go), read by Dump.
	pageWriters pageWriters
	// snapshot is CKPT_SNAPSHOT (snapshot.go), read by Dump.
	snapshot snapshotMode
	// PageServer, if set (host:port), is a `ckpt page-server` that
	// receives the images (pagesink.go): the pages images go only
	// there, the others are written here too.
	PageServer string
	pageServer *pageserver.Client
	remote     []*remoteSink
	// NoSync leaves the images in the page cache (CRIU does not sync
	// them either); see ckpt.DumpOptions.NoSync.
	NoSync bool
	// Context, if set, aborts the dump when it is done (Ctrl-C in the
	// CLI): the dump stops at its next safe point, between steps or page
	// chunks, and releases the tree as it was. Its cause (context.Cause)
	// is the reason the error gives.
	Context context.Context
}

// ErrInterrupted marks a dump stopped through Options.Context.
var ErrInterrupted = errors.New("dump interrupted")

// interrupted returns an error once Options.Context is done; the dump
// calls it at every safe point, where unwinding leaves the tree as it was.
func (o *Options) interrupted() error {
	if o.Context == nil || o.Context.Err() == nil {
		return nil
	}
	cause := context.Cause(o.Context)
	return fmt.Errorf("%w (%v): the tree was let go as it was, and the images written were removed", ErrInterrupted, cause)
}

// Stats are measurements of one dump.
type Stats struct {
	FrozenFor time.Duration // from the stop of the task to its kill or release
	// Snapshots is the number of processes whose pages were copied from
	// a copy-on-write snapshot after the tree was released (snapshot.go).
	Snapshots    int
	PagesWritten uint64 // pages written to the pages image
	// PagesInParent are pages a pre-copy dump left in the parent dump,
	// unchanged since (pagemap entries in_parent).
	PagesInParent uint64
	ZeroPages     uint64 // pages left out because they map the zero page
	PagesSpliced  uint64 // of PagesWritten, those the task vmspliced into pipes (one copy)
	ImageBytes    int64  // size of all image files written
	// For stats-dump (see model.DumpStats).
	Freezing, Frozen  time.Duration // stopping the tree; from stopped to release
	MemDump, MemWrite time.Duration // the memory dump; its page copies
	PagesScanned      uint64        // pages of the areas whose pagemap was read
}

func (o *Options) logf(format string, args ...any) {
	if o.Logf != nil {
		o.Logf(format, args...)
	}
}

// Dump checkpoints the task opts.Pid into opts.ImagesDir.
func Dump(opts Options) (*Stats, error) {
	if opts.Pid <= 0 {
		return nil, fmt.Errorf("dump: invalid pid %d", opts.Pid)
	}
	if err := cpucap.Check(opts.CPUCap); err != nil {
		return nil, fmt.Errorf("dump: %w", err)
	}
	if err := fault.Check(); err != nil {
		return nil, fmt.Errorf("dump: %w", err)
	}
	var err error
	if opts.direct, err = directEnv(); err != nil {
		return nil, fmt.Errorf("dump: %w", err)
	}
	if opts.pageWriters, err = pageWritersEnv(); err != nil {
		return nil, fmt.Errorf("dump: %w", err)
	}
	if opts.snapshot, err = snapshotEnv(); err != nil {
		return nil, fmt.Errorf("dump: %w", err)
	}
	// The page server first: one that is not there fails the dump
	// before the tree is touched.
	if err := opts.dialPageServer(); err != nil {
		return nil, fmt.Errorf("dump: %w", err)
	}
	if opts.pageServer != nil {
		defer opts.pageServer.Abort()
	}
	// Pre-copy (predump.go): write tracking, and the previous dump's.
	if err := opts.startTracking(); err != nil {
		return nil, fmt.Errorf("dump: %w", err)
	}
	defer opts.track.close()
	// Everything that can be checked without touching the tree is checked
	// first, so most refusals never stop it (nor create the directory).
	t, err := discover(&opts)
	if err != nil {
		return nil, fmt.Errorf("dump task %d: %w", opts.Pid, err)
	}
	if err := os.MkdirAll(opts.ImagesDir, 0o700); err != nil {
		return nil, fmt.Errorf("dump: images directory: %w", err)
	}
	before, _ := os.ReadDir(opts.ImagesDir)
	existed := map[string]bool{}
	for _, e := range before {
		existed[e.Name()] = true
	}
	// The images are written aside, in a directory of their own inside
	// the images directory, and moved in once all are written (see
	// publish): a dump that fails half-way (disk full, interrupted)
	// leaves an earlier dump there whole, never a mix of the two.
	stage, err := os.MkdirTemp(opts.ImagesDir, stagePrefix)
	if err != nil {
		return nil, fmt.Errorf("dump: images directory: %w", err)
	}
	defer os.RemoveAll(stage)
	t.stage = stage
	if err := opts.writeParentLink(stage); err != nil {
		return nil, fmt.Errorf("dump: %w", err)
	}

	tr := ptrace.NewTracer()
	defer tr.Close()
	var stats *Stats
	// Run unwinds the undo stack on an error or a panic: the tree is
	// then released as it was found.
	err = tr.Run(func(s *ptrace.Session) error {
		var err error
		stats, err = t.freezeAndDump(s)
		return err
	})
	if err != nil {
		// Remove what this dump wrote; the task was released untouched.
		// Files it moved in over an earlier dump's stay, but publish
		// removed that dump's inventory.img first: the directory holds
		// no whole dump then, and says so.
		_ = os.RemoveAll(stage)
		after, _ := os.ReadDir(opts.ImagesDir)
		for _, e := range after {
			if !existed[e.Name()] {
				_ = os.Remove(filepath.Join(opts.ImagesDir, e.Name()))
			}
		}
		return nil, fmt.Errorf("dump task %d: %w", opts.Pid, err)
	}
	opts.finishTracking(stats)
	writeStats(&opts, stats)
	return stats, nil
}

// seizeAll seizes and stops every thread of the task, until no new thread
// shows up: a thread created meanwhile is either seized here or reported
// through PTRACE_O_TRACECLONE by a thread already seized.
func (t *task) seizeAll() error {
	pid := t.pid
	seized := map[int]bool{}
	for round := 0; ; round++ {
		tids, err := procfs.Threads(pid)
		if err != nil {
			return fmt.Errorf("list threads: %w", err)
		}
		added := false
		for _, tid := range tids {
			if seized[tid] {
				continue
			}
			th, err := t.s.Seize(tid, unix.PTRACE_O_TRACESYSGOOD|unix.PTRACE_O_TRACECLONE|unix.PTRACE_O_TRACEFORK|unix.PTRACE_O_TRACEVFORK)
			if err != nil {
				if errors.Is(err, unix.ESRCH) {
					continue // the thread exited meanwhile
				}
				// A task past exit_notify cannot be seized (EPERM). A
				// thread there is gone for good (its clear_tid was done);
				// a process there is a zombie, which the caller takes.
				if errors.Is(err, unix.EPERM) && taskExited(pid, tid) {
					if tid == pid {
						return fmt.Errorf("seize %d: %w", tid, errExited)
					}
					continue
				}
				if !errors.Is(err, unix.EPERM) || !tracedByUs(tid) {
					return fmt.Errorf("seize thread %d: %w", tid, err)
				}
				// Auto-attached: a clone or fork event of a thread
				// seized before.
				th = t.s.Adopt(tid)
			}
			seized[tid] = true
			t.s.Push(fmt.Sprintf("detach thread %d", tid), func() error { return t.detach(th) })
			if err := t.stop(th, true); err != nil {
				// Seized while it was exiting: it ended instead of stopping.
				if errors.Is(err, errExited) && tid != pid {
					continue
				}
				return fmt.Errorf("thread %d: %w", tid, err)
			}
			t.threads = append(t.threads, th)
			added = true
		}
		if !added {
			break
		}
		if round > 100 {
			return fmt.Errorf("threads keep appearing; cannot freeze the task")
		}
	}
	// The leader first: images and injection use it for process-wide
	// state; then the others by id.
	sort.Slice(t.threads, func(i, j int) bool {
		a, b := t.threads[i].Tid, t.threads[j].Tid
		if a == pid || b == pid {
			return a == pid && b != pid
		}
		return a < b
	})
	if len(t.threads) == 0 || t.threads[0].Tid != pid {
		return fmt.Errorf("the thread group leader %d is gone", pid)
	}
	return nil
}

// errExited is a task that ended, or is past the point of exit where it
// can be stopped, while the dump froze it.
var errExited = errors.New("the task exited")

// taskExited reports whether thread tid of process pid is gone or past
// exit_notify (a zombie, or dead), as /proc shows it.
func taskExited(pid, tid int) bool {
	st, err := procfs.ReadTaskStat(pid, tid)
	if err != nil {
		return errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ESRCH)
	}
	return st.State == 'Z' || st.State == 'X'
}

// tracedByUs reports a thread this tracer traces already (the kernel
// attached it at a clone or fork event of a seized thread). /proc's
// TracerPid is the tracer's thread id (task_pid_nr_ns of the tracer, in
// fs/proc/array.c), not its process id: compared with the process id, a
// thread attached that way was taken for someone else's and failed the
// dump now and then (fork_storm). tracedByUs runs on the tracer thread.
func tracedByUs(tid int) bool {
	st, err := procfs.ReadTaskStatus(tid, tid)
	return err == nil && st.TracerPid == unix.Gettid()
}

// stop interrupts a seized thread and waits until it is in a ptrace
// stop. A signal that arrives meanwhile is delivered as it would have been.
// With interruptible, an interrupted dump (Options.Context) stops
// waiting; detach, which runs while the dump unwinds, waits regardless.
func (t *task) stop(th ptrace.Thread, interruptible bool) error {
	if err := th.Interrupt(); err != nil {
		return fmt.Errorf("interrupt: %w", err)
	}
	timeout := t.opts.FreezeTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	deadline := time.Now().Add(timeout)
	for {
		st, ok, err := th.WaitNohang()
		if err != nil {
			return err
		}
		if !ok {
			if interruptible {
				if err := t.opts.interrupted(); err != nil {
					return err
				}
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("did not stop within %v", timeout)
			}
			time.Sleep(100 * time.Microsecond)
			continue
		}
		if st.Exited() {
			return fmt.Errorf("ended while being stopped (%v): %w", st, errExited)
		}
		if st.IsEventStop() {
			// SIGTRAP: stopped by the interrupt. A stop signal: the task
			// was in a group-stop (SIGSTOP, SIGTSTP, ...), which it goes
			// back to when it is let go, and the restore brings back.
			if sig := st.Signal(); sig != unix.SIGTRAP {
				t.stopSig = int(sig)
			}
			return nil
		}
		if ev := st.Event(); ev == unix.PTRACE_EVENT_CLONE || ev == unix.PTRACE_EVENT_FORK || ev == unix.PTRACE_EVENT_VFORK {
			// The new task is picked up by the next round of seizeAll.
			// It is traced already (auto-attached): a dump that fails
			// before then must let it go too.
			if msg, err := th.GetEventMsg(); err == nil {
				nt := th.Child(int(msg))
				t.s.Push(fmt.Sprintf("detach new task %d", nt.Tid), func() error { return t.detach(nt) })
			}
			if err := th.Cont(0); err != nil {
				return err
			}
			// Any ptrace trap clears a pending PTRACE_INTERRUPT
			// (ptrace_stop: "any trap clears pending STOP trap"): ask
			// again, or a thread that keeps cloning never stops.
			if err := th.Interrupt(); err != nil {
				return fmt.Errorf("interrupt: %w", err)
			}
			continue
		}
		if sig := st.Signal(); sig != 0 {
			if err := th.Cont(int(sig)); err != nil {
				return fmt.Errorf("pass on %v: %w", sig, err)
			}
			if err := th.Interrupt(); err != nil {
				return fmt.Errorf("interrupt: %w", err)
			}
		}
	}
}

// detach lets a seized thread go on. PTRACE_DETACH needs a thread in a
// ptrace stop; one that is not (seized, then it did not stop in time)
// is stopped first. A thread that is gone needs nothing.
func (t *task) detach(th ptrace.Thread) error {
	err := th.Detach(0)
	if !errors.Is(err, unix.ESRCH) {
		return err
	}
	if err := th.Interrupt(); err != nil {
		return nil // gone, or not ours any more
	}
	if err := t.stop(th, false); err != nil {
		if errors.Is(err, errExited) {
			return nil
		}
		return err
	}
	return th.Detach(0)
}

// stagePrefix names the directory inside the images directory where a
// dump writes its images before it moves them in.
const stagePrefix = ".ckpt-dump-"

// publish moves the images written in stage into dir, which may hold an
// earlier dump: its inventory.img goes first, so that until the new one
// is moved in, last, the directory never looks like a whole dump. With
// durable, every image is on disk first, and each step of the move too:
// a crash leaves the earlier dump, no dump, or the new one whole.
func publish(stage, dir string, durable bool) error {
	ents, err := os.ReadDir(stage)
	if err != nil {
		return err
	}
	if durable {
		if err := syncFiles(stage, ents); err != nil {
			return err
		}
	}
	syncd := func(d string) error {
		if !durable {
			return nil
		}
		return syncFile(d)
	}
	inv := image.InventoryName()
	if err := os.Remove(filepath.Join(dir, inv)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove the earlier dump's %s: %w", inv, err)
	}
	if err := syncd(dir); err != nil {
		return err
	}
	found := false
	for _, e := range ents {
		if e.Name() == inv {
			found = true
			continue
		}
		if err := os.Rename(filepath.Join(stage, e.Name()), filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("move %s into the images directory: %w", e.Name(), err)
		}
	}
	if !found {
		return fmt.Errorf("no %s was written", inv)
	}
	if err := syncd(dir); err != nil {
		return err
	}
	if err := os.Rename(filepath.Join(stage, inv), filepath.Join(dir, inv)); err != nil {
		return fmt.Errorf("move %s into the images directory: %w", inv, err)
	}
	return syncd(dir)
}

// syncFilesAlone is the most image files syncFiles syncs one by one; for
// more (a tree of many processes writes a dozen files each) one syncfs of
// the whole file system costs less, though it also writes back whatever
// else is dirty there.
const syncFilesAlone = 256

// syncFiles syncs the files ents of dir, several at once (the file
// system's journal then commits them together), or with one syncfs when
// there are many.
func syncFiles(dir string, ents []os.DirEntry) error {
	if len(ents) > syncFilesAlone {
		f, err := os.Open(dir)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := unix.Syncfs(int(f.Fd())); err != nil {
			return fmt.Errorf("sync the file system of %s: %w", dir, err)
		}
		return nil
	}
	const workers = 16
	names := make(chan string)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for i := 0; i < workers && i < len(ents); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var first error
			for n := range names {
				if err := syncFile(filepath.Join(dir, n)); err != nil && first == nil {
					first = err
				}
			}
			errs <- first
		}()
	}
	for _, e := range ents {
		if e.Type().IsRegular() {
			names <- e.Name()
		}
	}
	close(names)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// syncFile syncs an image file, or with a directory its entries; what
// names it in an error.
func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return nil
}
