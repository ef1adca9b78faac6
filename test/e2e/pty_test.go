package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/internal/procfs"
	"github.com/ckpt/ckpt/test/testsupport"
)

// TestPtyLeaveRunning dumps pty programs with --leave-running: the dump
// reads the bytes queued in their pty pairs, which it must put back at
// once, so that the programs, going on, find them all (complete lines,
// a line ended by ^D, a partial line, echo; both directions).
func TestPtyLeaveRunning(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	for _, prog := range []string{"pty_canon.64", "pty.32"} {
		t.Run(prog, func(t *testing.T) {
			work := t.TempDir()
			bin, _ := filepath.Abs(filepath.Join(progsDir, "build", prog))
			logPath := filepath.Join(work, "prog.log")
			logF, err := os.Create(logPath)
			if err != nil {
				t.Fatal(err)
			}
			defer logF.Close()
			cmd := exec.Command(bin)
			cmd.Dir = work
			cmd.Stdout, cmd.Stderr = logF, logF
			if _, err := testsupport.StartReady(cmd, logPath, readyTimeout); err != nil {
				t.Fatal(err)
			}
			pid := cmd.Process.Pid
			defer func() { _ = unix.Kill(pid, unix.SIGKILL); _ = cmd.Wait() }()
			if out, err := exec.Command(ckptBin, "dump", "-t", strconv.Itoa(pid), "-D", filepath.Join(work, "img"), "-R").CombinedOutput(); err != nil {
				t.Fatalf("dump -R: %v: %s", err, out)
			}
			_ = unix.Kill(pid, unix.SIGTERM)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				if err := verdict(logPath, testsupport.ExitCode(err), ""); err != nil {
					t.Error(err)
				}
			case <-time.After(finishTimeout):
				t.Fatal("the program did not end")
			}
		})
	}
}

// TestShellJobTTYAbove2 is a shell job with its terminal open above fd 2,
// as an editor or a pager has it: a shell (the session leader, with a
// pty as its controlling terminal) runs a job whose fd 3 is /dev/tty and
// fd 4 its terminal opened by name, waiting to read a line on fd 3. The
// job is dumped with --shell-job, and the same shell restores it in its
// place, as a shell job is: the restored job must read a line typed on
// the terminal through fd 3, then one through fd 4. (bash's read -u reads
// the fd itself; sh's read <&3 would move it to fd 0 meanwhile.)
func TestShellJobTTYAbove2(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	work := t.TempDir()
	master, slave := openPty(t)
	logPath := filepath.Join(work, "log")
	inner := `exec 3</dev/tty 4<>"$(tty)"
echo "ready $$" >> "$LOG"
read -u 3 a
echo "fd3:$a" >> "$LOG"
read -u 4 b
echo "fd4:$b" >> "$LOG"
`
	outer := `exec 5<&0
bash ./inner.sh <&5 &
while [ ! -e go ]; do sleep 0.05; done
"$CKPT" restore -D img --shell-job
echo "restore exit $?" >> "$LOG"
`
	if err := os.WriteFile(filepath.Join(work, "inner.sh"), []byte(inner), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-c", outer)
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "LOG="+logPath, "CKPT="+ckptBin)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = unix.Kill(-cmd.Process.Pid, unix.SIGKILL); _ = cmd.Wait() }()
	drainTerminal(t, master)
	waitLog := func(want string) string {
		t.Helper()
		deadline := time.Now().Add(readyTimeout)
		for {
			b, _ := os.ReadFile(logPath)
			if i := strings.Index(string(b), want); i >= 0 {
				return string(b[i:])
			}
			if time.Now().After(deadline) {
				t.Fatalf("log %q lacks %q", b, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	rest := waitLog("ready ")
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(strings.TrimPrefix(rest, "ready "), "\n", 2)[0]))
	if err != nil {
		t.Fatal(err)
	}
	// The job waits in its read on fd 3.
	time.Sleep(100 * time.Millisecond)
	if l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/3", pid)); err != nil || l != "/dev/tty" {
		t.Fatalf("the job's fd 3 is %q (%v)", l, err)
	}
	img := filepath.Join(work, "img")
	if out, err := exec.Command(ckptBin, "dump", "-t", strconv.Itoa(pid), "-D", img).CombinedOutput(); err == nil || !strings.Contains(string(out), "a tty") {
		t.Fatalf("dump without --shell-job: %v: %s; want a refusal naming the tty", err, out)
	}
	if out, err := exec.Command(ckptBin, "dump", "-t", strconv.Itoa(pid), "-D", img, "--shell-job").CombinedOutput(); err != nil {
		t.Fatalf("dump --shell-job: %v: %s", err, out)
	}
	if err := testsupport.WaitGone(pid, goneTimeout); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// Once restored, the job is back in its read on fd 3.
	for deadline := time.Now().Add(readyTimeout); ; time.Sleep(20 * time.Millisecond) {
		if l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/3", pid)); err == nil && l == "/dev/tty" {
			break
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logPath)
			ps, _ := exec.Command("sh", "-c", "ps -o pid,ppid,pgid,sid,tty,stat,wchan:20,args -s "+strconv.Itoa(cmd.Process.Pid)+"; ls -l /proc/"+strconv.Itoa(pid)+"/fd/").CombinedOutput()
			t.Fatalf("the job was not restored: %s\n%s", b, ps)
		}
	}
	time.Sleep(100 * time.Millisecond)
	if _, err := master.WriteString("one\n"); err != nil {
		t.Fatal(err)
	}
	waitLog("fd3:one\n")
	if _, err := master.WriteString("two\n"); err != nil {
		t.Fatal(err)
	}
	waitLog("fd4:two\n")
	waitLog("restore exit 0\n")
}

// TestScriptPty dumps util-linux's script(1), which holds the master of a
// pty pair and runs a shell loop in a session of its own on the slave,
// with a line already passed through; it restores it with --shell-job
// (script's stdin is a pipe from the test) and types another line: the
// shell, whose controlling terminal must again be the slave, answers
// through the restored pair. Closing script's stdin then ends both.
func TestScriptPty(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	realProgram(t, "script (a pty pair)", "native")
	scriptBin, err := exec.LookPath("script")
	if err != nil {
		t.Fatal("script(1) is not installed (Debian package bsdutils)")
	}
	work := t.TempDir()
	outPath := filepath.Join(work, "out")
	out, err := os.Create(outPath)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command(scriptBin, "-q", "-f", "-c", "while read l; do echo got:$l; done", filepath.Join(work, "typescript"))
	cmd.Dir = work
	cmd.Stdout, cmd.Stderr = out, out
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	defer func() { _ = unix.Kill(pid, unix.SIGKILL); _ = cmd.Wait() }()
	waitOut := func(want string) {
		t.Helper()
		deadline := time.Now().Add(readyTimeout)
		for {
			b, _ := os.ReadFile(outPath)
			if strings.Contains(string(b), want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("script's output %q lacks %q", b, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if _, err := in.Write([]byte("one\n")); err != nil {
		t.Fatal(err)
	}
	waitOut("got:one")
	kids, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil || len(strings.Fields(string(kids))) != 1 {
		t.Fatalf("script's children: %q (%v)", kids, err)
	}
	child, _ := strconv.Atoi(strings.Fields(string(kids))[0])
	img := filepath.Join(work, "img")
	if o, err := exec.Command(ckptBin, "dump", "-t", strconv.Itoa(pid), "-D", img, "--shell-job").CombinedOutput(); err != nil {
		t.Fatalf("dump: %v: %s", err, o)
	}
	_ = cmd.Wait()
	reapAdopted()
	for _, p := range []int{pid, child} {
		if err := testsupport.WaitGone(p, goneTimeout); err != nil {
			t.Fatal(err)
		}
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	rc := exec.Command(ckptBin, "restore", "-D", img, "--shell-job", "--pidfile", filepath.Join(work, "pid"))
	rc.Stdin, rc.Stdout, rc.Stderr = r, out, out
	_, done := restoreInBackground(t, rc, filepath.Join(work, "pid"))
	r.Close()
	// The shell's controlling terminal is the restored slave, its stdin.
	stat, err := procfs.ReadStat(child)
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(fmt.Sprintf("/proc/%d/fd/0", child), &st); err != nil || stat.TtyNr != int(st.Rdev) || unix.Major(st.Rdev) < 136 {
		t.Errorf("the shell's controlling terminal is %#x, its stdin %#x (%v)", stat.TtyNr, st.Rdev, err)
	}
	if _, err := w.Write([]byte("two\n")); err != nil {
		t.Fatal(err)
	}
	waitOut("got:two")
	w.Close()
	select {
	case err := <-done:
		if code := testsupport.ExitCode(err); code != 0 {
			b, _ := os.ReadFile(outPath)
			t.Errorf("restored script exited with %d: %s", code, b)
		}
	case <-time.After(finishTimeout):
		t.Fatal("restored script did not end when its input did")
	}
}

// TestShellJobForeground is a job of an interactive bash (job control on,
// a pty as its terminal) in the foreground, waiting to read a line. It is
// dumped with --shell-job, and the shell restores it as a job of its own
// (`ckpt restore --shell-job` typed at the prompt): the restored job must
// be in the foreground again and read the next line typed, instead of
// stopping on SIGTTIN in the background.
func TestShellJobForeground(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	realProgram(t, "bash with a job in the foreground", "native")
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatal("bash is not installed")
	}
	work := t.TempDir()
	master, slave := openPty(t)
	cmd := exec.Command(bash, "--norc", "--noprofile", "-i")
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "PS1=$ ", "TERM=dumb", "CKPT="+ckptBin)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = unix.Kill(-cmd.Process.Pid, unix.SIGKILL); _ = cmd.Wait() }()
	drainTerminal(t, master)
	typeLine := func(s string) {
		t.Helper()
		if _, err := master.WriteString(s + "\n"); err != nil {
			t.Fatal(err)
		}
	}
	waitFile := func(name, want string) string {
		t.Helper()
		deadline := time.Now().Add(readyTimeout)
		for {
			b, err := os.ReadFile(filepath.Join(work, name))
			if err == nil && strings.HasPrefix(string(b), want) && strings.HasSuffix(string(b), "\n") {
				return strings.TrimSpace(string(b))
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %q (%v), want %q", name, b, err, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	foreground := func(pid int) bool {
		st, err := procfs.ReadStat(pid)
		return err == nil && st.Tpgid == pid && st.Pgrp == pid
	}
	time.Sleep(200 * time.Millisecond) // the first prompt
	typeLine(`sh -c 'echo $$ > pid; read x; echo "got:$x" > got'`)
	pid, err := strconv.Atoi(waitFile("pid", ""))
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(readyTimeout); !foreground(pid); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the job is not in the foreground before the dump")
		}
	}
	if o, err := exec.Command(ckptBin, "dump", "-t", strconv.Itoa(pid), "-D", filepath.Join(work, "img"), "--shell-job").CombinedOutput(); err != nil {
		t.Fatalf("dump: %v: %s", err, o)
	}
	if err := testsupport.WaitGone(pid, goneTimeout); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the shell's next prompt
	typeLine(`"$CKPT" restore -D img --shell-job`)
	for deadline := time.Now().Add(readyTimeout); ; time.Sleep(20 * time.Millisecond) {
		st, err := procfs.ReadStat(pid)
		if err == nil && st.State == 'S' {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the job was not restored, or is not waiting (%+v, %v)", st, err)
		}
	}
	if !foreground(pid) {
		st, _ := procfs.ReadStat(pid)
		t.Errorf("the restored job is not in the foreground: pgrp %d, terminal's foreground %d", st.Pgrp, st.Tpgid)
	}
	typeLine("hello")
	waitFile("got", "got:hello")
}

// TestTmux dumps a tmux server (Debian's) with a shell in one window and
// vim editing a file in another, restores it detached, and drives both
// with a new tmux client: the restored server takes the client on its
// restored socket, the shell runs a command through the restored pty and
// vim, its unsaved text intact, appends to it and writes the file.
func TestTmux(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	realProgram(t, "tmux with a shell and vim", "native")
	tmux, err := exec.LookPath("tmux")
	if err != nil {
		t.Fatal("tmux is not installed (apt-get install tmux; scripts/setup.sh does it)")
	}
	vim, err := exec.LookPath("vim")
	if err != nil {
		t.Fatal("vim is not installed (apt-get install vim; scripts/setup.sh does it)")
	}
	work := t.TempDir()
	sock := filepath.Join(work, "sock")
	env := append(os.Environ(), "TERM=xterm", "SHELL=/bin/sh", "HOME="+work)
	tm := func(args ...string) (string, error) {
		c := exec.Command(tmux, append([]string{"-S", sock, "-f", "/dev/null"}, args...)...)
		c.Env, c.Dir = env, work
		out, err := c.CombinedOutput()
		return string(out), err
	}
	must := func(args ...string) string {
		t.Helper()
		out, err := tm(args...)
		if err != nil {
			t.Fatalf("tmux %v: %v: %s", args, err, out)
		}
		return out
	}
	waitPane := func(pane, want string) {
		t.Helper()
		deadline := time.Now().Add(readyTimeout)
		for {
			out, _ := tm("capture-pane", "-p", "-t", pane)
			if strings.Contains(out, want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("pane %s lacks %q:\n%s", pane, want, out)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	must("new-session", "-d", "-s", "s", "-x", "80", "-y", "24", "sh")
	defer func() { _, _ = tm("kill-server"); reapAdopted() }()
	must("new-window", "-d", "-t", "s:1", vim, "-u", "NONE", "-N", "-n", "file.txt")
	pid, err := strconv.Atoi(strings.TrimSpace(must("display-message", "-p", "-t", "s", "#{pid}")))
	if err != nil {
		t.Fatal(err)
	}
	must("send-keys", "-t", "s:0", "echo before-$((1+1))", "Enter")
	waitPane("s:0", "before-2")
	waitPane("s:1", "file.txt")
	must("send-keys", "-t", "s:1", "ihello", "Escape")
	waitPane("s:1", "hello")
	kids, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	img := filepath.Join(work, "img")
	if o, err := exec.Command(ckptBin, "dump", "-t", strconv.Itoa(pid), "-D", img).CombinedOutput(); err != nil {
		t.Fatalf("dump: %v: %s", err, o)
	}
	reapAdopted()
	for _, p := range append([]string{strconv.Itoa(pid)}, strings.Fields(string(kids))...) {
		n, _ := strconv.Atoi(p)
		if err := testsupport.WaitGone(n, goneTimeout); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tm("has-session", "-t", "s"); err == nil {
		t.Fatal("a tmux server answers after the dump")
	}
	if o, err := exec.Command(ckptBin, "restore", "-D", img, "-d").CombinedOutput(); err != nil {
		t.Fatalf("restore: %v: %s", err, o)
	}
	must("send-keys", "-t", "s:0", "echo after-$((2+3))", "Enter")
	waitPane("s:0", "after-5")
	must("send-keys", "-t", "s:1", "A world", "Escape", ":wq", "Enter")
	deadline := time.Now().Add(readyTimeout)
	for {
		b, _ := os.ReadFile(filepath.Join(work, "file.txt"))
		if string(b) == "hello world\n" {
			break
		}
		if time.Now().After(deadline) {
			out, _ := tm("capture-pane", "-p", "-t", "s:1")
			t.Fatalf("file.txt is %q; vim's pane:\n%s", b, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// drainTerminal keeps the master of a test's terminal drained (the
// terminal's echo, ckpt's messages) and logs what came if the test fails.
func drainTerminal(t *testing.T, master *os.File) {
	var mu sync.Mutex
	var screen []byte
	go func() {
		b := make([]byte, 256)
		for {
			n, err := master.Read(b)
			if err != nil {
				return
			}
			mu.Lock()
			screen = append(screen, b[:n]...)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		if t.Failed() {
			mu.Lock()
			t.Logf("terminal: %q", screen)
			mu.Unlock()
		}
	})
}
