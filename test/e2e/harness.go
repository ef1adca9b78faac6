// Package e2e is the end-to-end suite: it runs every C test program of
// testdata/progs, built -m64 and -m32, through ckpt dump and ckpt restore,
// compares what the kernel shows before and after, lets the program check
// itself, and writes the results matrix (docs/RESULTS.md).
package e2e

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/internal/kinds/ns"
	"github.com/ckpt/ckpt/internal/procfs"
	"github.com/ckpt/ckpt/test/testsupport"
)

// Program is one C test program and what its manifest line asks for.
type Program struct {
	Name      string
	Static    bool
	StdinPipe bool
	ShellJob  bool   // dumped and restored with --shell-job (stdin=pipe is too)
	DumpFail  string // non-empty: the dump must fail with this in its message
	VDSO      bool
	PidNS     bool // started as the init of a new PID namespace
	NeedsIA32 bool // runs ia32 code even in its -m64 build
	// Args are extra ckpt options given to both dump and restore
	// (args=--file-locks; several separated by commas).
	Args []string
	// DumpArgs are extra ckpt options given to dump only (set by tests,
	// not by manifests).
	DumpArgs []string
	// Daemon: the started process double-forks a daemon, which prints
	// "READY <pid>", and exits 0; the daemon is what is dumped.
	Daemon bool
	// Churn: the program's children keep coming and going
	// (children=churn), so their number and states are not compared.
	Churn bool
	// Between names what the harness does between the dump and the
	// restore: "ipcrm" removes the SysV objects of the host's IPC
	// namespace that the dump holds, as a fresh machine would not have
	// them.
	Between string
}

var manifestRe = regexp.MustCompile(`^/\* ckpt-test:(.*)\*/`)

// Programs lists the test programs in dir with their manifests.
func Programs(dir string) ([]Program, error) {
	srcs, err := filepath.Glob(filepath.Join(dir, "*.c"))
	if err != nil {
		return nil, err
	}
	goSrcs, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	srcs = append(srcs, goSrcs...)
	var out []Program
	for _, src := range srcs {
		f, err := os.Open(src)
		if err != nil {
			return nil, err
		}
		line, _ := bufio.NewReader(f).ReadString('\n')
		f.Close()
		m := manifestRe.FindStringSubmatch(line)
		if m == nil {
			return nil, fmt.Errorf("%s: first line is not a ckpt-test manifest", src)
		}
		p := Program{Name: strings.TrimSuffix(strings.TrimSuffix(filepath.Base(src), ".c"), ".go")}
		for _, kv := range strings.Fields(m[1]) {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "link":
				p.Static = v == "static"
			case "stdin":
				p.StdinPipe = v == "pipe"
				p.ShellJob = p.ShellJob || p.StdinPipe
			case "shelljob":
				p.ShellJob = v == "yes"
			case "expect":
				if v != "dump-fail" {
					return nil, fmt.Errorf("%s: unknown expect=%s", src, v)
				}
				if p.DumpFail == "" {
					p.DumpFail = "?"
				}
			case "dump-error":
				p.DumpFail = v
			case "vdso":
				p.VDSO = v == "yes"
			case "daemon":
				p.Daemon = v == "yes"
			case "children":
				if v != "churn" {
					return nil, fmt.Errorf("%s: unknown children=%s", src, v)
				}
				p.Churn = true
			case "pidns":
				p.PidNS = v == "yes"
			case "needs":
				if v != "ia32" {
					return nil, fmt.Errorf("%s: unknown needs=%s", src, v)
				}
				p.NeedsIA32 = true
			case "args":
				p.Args = append(p.Args, strings.Split(v, ",")...)
			case "between":
				if v != "ipcrm" {
					return nil, fmt.Errorf("%s: unknown between=%s", src, v)
				}
				p.Between = v
			case "lang":
				// Built by the Makefile like the C programs.
			default:
				return nil, fmt.Errorf("%s: unknown manifest key %q", src, k)
			}
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Variant is one build of a program and how it is restored: the column
// of the matrix.
type Variant struct {
	Column string // "native", "compat", ...
	Suffix string // build/NAME.<suffix>
	// Trampolines restores with CKPT_FAULT=vdso-trampolines: the kernel's
	// vDSO goes elsewhere and the dumped range becomes a proxy.
	Trampolines bool
	// Guest runs only in the test guest (TestGuestKernel): another kernel
	// than the host's.
	Guest bool
}

// Compat reports whether the column runs the -m32 build.
func (v Variant) Compat() bool { return strings.HasPrefix(v.Column, "compat") }

// Variants returns the builds of p. Programs that use the vDSO, and every
// -m32 program (32-bit glibc enters the kernel through the vDSO), also run
// with the vDSO trampolines forced. Every -m64 build also runs on the test
// guest's kernel (native-guest); a program marked needs=ia32 already does
// when the host refuses ia32.
func (p Program) Variants() []Variant {
	v := []Variant{{Column: "native", Suffix: "64"}, {Column: "compat", Suffix: "32"}}
	if p.Static {
		v = append(v, Variant{Column: "native-static", Suffix: "static64"}, Variant{Column: "compat-static", Suffix: "static32"})
	}
	if p.VDSO {
		v = append(v, Variant{Column: "native-vdso-tramp", Suffix: "64", Trampolines: true})
	}
	if p.DumpFail == "" {
		v = append(v, Variant{Column: "compat-vdso-tramp", Suffix: "32", Trampolines: true})
	}
	if !p.NeedsIA32 {
		v = append(v, Variant{Column: "native-guest", Suffix: "64", Guest: true})
	}
	return v
}

// Result is the outcome of one cell.
type Result struct {
	Pass   bool
	Reason string
}

// Run is one end-to-end run of a program build.
type Run struct {
	Variant Variant
	Ckpt    string // path of the ckpt binary
	Binary  string
	Prog    Program
	Work    string // scratch directory for this run
	Logf    func(string, ...any)
}

func (r *Run) logf(format string, args ...any) {
	if r.Logf != nil {
		r.Logf(format, args...)
	}
}

// Timeouts of the harness; TestMain multiplies them by -timeout-scale
// (a guest under software emulation runs about ten times slower).
var (
	readyTimeout  = 15 * time.Second
	finishTimeout = 30 * time.Second
	goneTimeout   = 5 * time.Second
	settleTimeout = 1 * time.Second
)

// Execute runs the program, dumps and restores it, and returns the result.
func (r *Run) Execute() Result {
	if err := r.execute(); err != nil {
		return Result{Reason: err.Error()}
	}
	return Result{Pass: true}
}

func (r *Run) execute() error {
	testDir := filepath.Join(r.Work, "cwd")
	imgDir := filepath.Join(r.Work, "img")
	logPath := filepath.Join(r.Work, "prog.log")
	if err := os.MkdirAll(testDir, 0o755); err != nil {
		return err
	}
	logF, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o666)
	if err != nil {
		return err
	}
	defer logF.Close()
	cmd := exec.Command(r.Binary)
	cmd.Dir = testDir
	cmd.Env = append(os.Environ(), "CKPT_TEST_DIR="+testDir)
	cmd.Stdout, cmd.Stderr = logF, logF
	// Its own session: every process of a test program's tree can be
	// found (and killed) by session id.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if r.Prog.PidNS {
		cmd.SysProcAttr.Cloneflags = syscall.CLONE_NEWPID
	}
	if r.Prog.StdinPipe {
		// The write end stays open (and unused) until the dump, so that
		// the program's read blocks instead of seeing end of file.
		pr, pw, err := os.Pipe()
		if err != nil {
			return err
		}
		defer pr.Close()
		defer pw.Close()
		cmd.Stdin = pr
	}
	if err := cmd.Start(); err != nil {
		if errors.Is(err, syscall.ENOEXEC) || strings.Contains(err.Error(), "exec format error") {
			return fmt.Errorf("the kernel cannot run this binary (exec format error: ia32 emulation is disabled on this machine)")
		}
		return fmt.Errorf("start: %w", err)
	}
	pid := cmd.Process.Pid
	alive := true
	sessions := []int{pid}
	defer func() {
		// Whatever the outcome, nothing of the program's tree outlives
		// the run (a failing root can leave children behind).
		for _, sid := range sessions {
			killSession(sid)
		}
		if alive {
			_, _ = reap(pid, goneTimeout)
		}
		if r.Prog.Daemon {
			// A daemon's children may be in sessions of their own; all
			// of them came to this subreaper once the daemon was killed.
			waitALittle()
			testsupport.KillAndReap(testsupport.Children(), goneTimeout)
		}
		reapAdopted()
	}()
	ready, err := testsupport.WaitReady(logPath, readyTimeout, pid)
	if err != nil {
		return fmt.Errorf("before dump: %w", err)
	}
	if r.Prog.Daemon {
		d, err := daemonPid(ready, pid)
		if err != nil {
			return err
		}
		pid = d // this subreaper's child now
		sid, err := unix.Getsid(d)
		if err != nil {
			return fmt.Errorf("daemon %d: getsid: %w", d, err)
		}
		sessions = append(sessions, sid)
	}
	before, err := stableSnapshot(pid)
	if err != nil {
		return fmt.Errorf("snapshot before dump: %w", err)
	}
	before.churn = r.Prog.Churn
	dumpArgs := []string{"dump", "-t", fmt.Sprint(pid), "-D", imgDir, "-o", "dump.log", "-v4"}
	if r.Prog.ShellJob {
		dumpArgs = append(dumpArgs, "--shell-job")
	}
	dumpArgs = append(dumpArgs, r.Prog.Args...)
	dumpArgs = append(dumpArgs, r.Prog.DumpArgs...)
	out, derr := exec.Command(r.Ckpt, dumpArgs...).CombinedOutput()
	if r.Prog.DumpFail != "" {
		if derr == nil {
			return fmt.Errorf("dump succeeded, but it must refuse this task (%s)", r.Prog.DumpFail)
		}
		if !strings.Contains(string(out), r.Prog.DumpFail) {
			return fmt.Errorf("dump failed without naming %q: %s", r.Prog.DumpFail, strings.TrimSpace(string(out)))
		}
		// A refusal found once the task was frozen interrupted the call
		// it waits in (sigwaitinfo shows another blocked mask while it
		// waits): give it the moment it takes to go back into it.
		_, d, err := settledSnapshot(pid, before, false)
		if err != nil {
			return fmt.Errorf("task after the failed dump: %w", err)
		}
		if d != "" {
			return fmt.Errorf("the failed dump changed the task: %s", d)
		}
		return r.finish(pid, logPath, &alive)
	}
	if derr != nil {
		log, _ := os.ReadFile(logPath)
		return fmt.Errorf("dump: %v: %s (program log: %s)", derr, testsupport.LastLines(string(out), 3), testsupport.LastLines(string(log), 1))
	}
	// The dumped tree was killed; reap it (its children were re-parented
	// to this subreaper) and make sure the PIDs are free.
	if r.Prog.Daemon {
		_, _ = reap(pid, goneTimeout)
	} else {
		_ = cmd.Wait()
	}
	if err := testsupport.WaitGone(pid, goneTimeout); err != nil {
		return err
	}
	reapAdopted()
	alive = false
	if r.Prog.Between == "ipcrm" {
		if err := ns.RemoveHostSysV(imgDir); err != nil {
			return fmt.Errorf("remove the dumped SysV objects before the restore: %w", err)
		}
	}
	// Restore without -d: ckpt stays the parent and reports the task's
	// exit status, as a user running it in a shell sees it.
	pidfile := filepath.Join(r.Work, "restored.pid")
	rc := exec.Command(r.Ckpt, "restore", "-D", imgDir, "-o", "restore.log", "-v4", "--pidfile", pidfile)
	if r.Variant.Trampolines {
		rc.Env = append(os.Environ(), "CKPT_FAULT=vdso-trampolines")
	}
	var newStdinW *os.File
	if r.Prog.ShellJob {
		rc.Args = append(rc.Args, "--shell-job")
	}
	rc.Args = append(rc.Args, r.Prog.Args...)
	if r.Prog.StdinPipe {
		pr, pw, err := os.Pipe()
		if err != nil {
			return err
		}
		defer pr.Close()
		defer pw.Close()
		rc.Stdin = pr
		newStdinW = pw
	}
	var rerr bytes.Buffer
	rc.Stdout, rc.Stderr = logF, &rerr
	if err := rc.Start(); err != nil {
		return fmt.Errorf("start restore: %w", err)
	}
	restoreDone := make(chan error, 1)
	go func() { restoreDone <- rc.Wait() }()
	got, err := testsupport.WaitPidfile(pidfile, readyTimeout, restoreDone)
	if ended := (*testsupport.EndedError)(nil); errors.As(err, &ended) {
		return fmt.Errorf("restore: %v: %s", ended.Err, testsupport.LastLines(rerr.String(), 3))
	} else if err != nil {
		_ = rc.Process.Kill()
		return fmt.Errorf("restore did not finish: %v: %s", err, testsupport.LastLines(rerr.String(), 3))
	}
	if r.Prog.PidNS {
		// A new PID namespace: the host chose the root's PID.
		pid = got
	} else if got != pid {
		return fmt.Errorf("restored as pid %d, want %d", got, pid)
	}
	alive = true
	if r.Variant.Trampolines {
		before = before.withoutVDSO(before)
	}
	_, d, err := settledSnapshot(pid, before, r.Variant.Trampolines)
	if err != nil {
		return fmt.Errorf("snapshot after restore: %w", err)
	}
	if d != "" {
		return fmt.Errorf("after restore: %s", d)
	}
	if newStdinW != nil {
		if _, err := newStdinW.WriteString("ckpt-input\n"); err != nil {
			return fmt.Errorf("write stdin: %w", err)
		}
	}
	if err := unix.Kill(pid, unix.SIGTERM); err != nil {
		return fmt.Errorf("SIGTERM: %w", err)
	}
	var werr error
	select {
	case werr = <-restoreDone:
	case <-time.After(finishTimeout):
		_ = unix.Kill(pid, unix.SIGKILL)
		werr = <-restoreDone
		alive = false
		return fmt.Errorf("restored task did not end within %v after SIGTERM (killed)", finishTimeout)
	}
	alive = false
	if _, isExit := werr.(*exec.ExitError); werr != nil && !isExit {
		return fmt.Errorf("ckpt restore: %v", werr)
	}
	return verdict(logPath, testsupport.ExitCode(werr), rerr.String())
}

// daemonPid returns the daemon's PID from its "READY <pid>" line once
// the started process (launcher), which must exit 0, is reaped; the
// daemon is then a child of this subreaper.
func daemonPid(ready string, launcher int) (int, error) {
	d, err := strconv.Atoi(strings.TrimPrefix(ready, "READY "))
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("daemon=yes: want \"READY <pid>\", got %q", ready)
	}
	ws, err := reap(launcher, readyTimeout)
	if err != nil {
		return 0, fmt.Errorf("daemon=yes: the started process: %w", err)
	}
	if !ws.Exited() || ws.ExitStatus() != 0 {
		return 0, fmt.Errorf("daemon=yes: the started process ended with status %#x, want exit 0", uint32(ws))
	}
	for i := 0; ; i++ {
		st, err := procfs.ReadStat(d)
		if err != nil {
			return 0, fmt.Errorf("daemon %d: %w", d, err)
		}
		if st.PPid == os.Getpid() {
			return d, nil
		}
		if i == 100 {
			return 0, fmt.Errorf("daemon %d: its parent is %d, not this subreaper", d, st.PPid)
		}
		waitALittle()
	}
}

// finish sends SIGTERM to a task that is still the harness's child and
// checks its verdict.
func (r *Run) finish(pid int, logPath string, alive *bool) error {
	if err := unix.Kill(pid, unix.SIGTERM); err != nil {
		return fmt.Errorf("SIGTERM: %w", err)
	}
	ws, err := reap(pid, finishTimeout)
	if err != nil {
		return err
	}
	*alive = false
	return verdict(logPath, testsupport.StatusCode(ws), "")
}

// verdict reads the program's PASS or FAIL line; code is its exit status
// (128+N for a signal, as ckpt restore reports it).
func verdict(logPath string, code int, restoreErr string) error {
	log, _ := os.ReadFile(logPath)
	v := ""
	for _, l := range strings.Split(string(log), "\n") {
		if l == "PASS" || strings.HasPrefix(l, "FAIL") {
			v = l
		}
	}
	switch {
	case v == "PASS" && code == 0:
		return nil
	case strings.HasPrefix(v, "FAIL"):
		return errors.New(strings.TrimSpace(strings.TrimPrefix(v, "FAIL:")))
	default:
		return fmt.Errorf("exit status %d without PASS; log: %s %s", code, testsupport.LastLines(string(log), 2), testsupport.LastLines(restoreErr, 1))
	}
}

// reap waits for pid (a child or, through the subreaper, an adopted task).
func reap(pid int, timeout time.Duration) (unix.WaitStatus, error) {
	deadline := time.Now().Add(timeout)
	var ws unix.WaitStatus
	for {
		got, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return ws, fmt.Errorf("wait for %d: %w", pid, err)
		}
		if got == pid {
			return ws, nil
		}
		if time.Now().After(deadline) {
			_ = unix.Kill(pid, unix.SIGKILL)
			_, _ = unix.Wait4(pid, &ws, 0, nil)
			return ws, fmt.Errorf("task %d did not end within %v after SIGTERM (killed)", pid, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func waitALittle() { time.Sleep(10 * time.Millisecond) }

// killSession kills every process of session sid.
func killSession(sid int) {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if s, err := unix.Getsid(p); err == nil && s == sid {
			_ = unix.Kill(p, unix.SIGKILL)
		}
	}
}

// reapAdopted reaps the zombies this subreaper inherited, for a little while.
func reapAdopted() {
	deadline := time.Now().Add(500 * time.Millisecond)
	for time.Now().Before(deadline) {
		var ws unix.WaitStatus
		got, err := unix.Wait4(-1, &ws, unix.WNOHANG|unix.WALL, nil)
		if err != nil {
			return // ECHILD: nothing left
		}
		if got == 0 {
			time.Sleep(10 * time.Millisecond)
		}
	}
}
