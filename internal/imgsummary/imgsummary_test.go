package imgsummary

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ckpt/ckpt/internal/dump"
	"github.com/ckpt/ckpt/internal/image"
)

func writeSummary(t *testing.T, dir string) (string, error) {
	t.Helper()
	var b bytes.Buffer
	err := Write(&b, dir)
	return b.String(), err
}

func wantLines(t *testing.T, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("summary lacks %q", w)
		}
	}
	if t.Failed() {
		t.Logf("summary:\n%s", out)
	}
}

func TestSynthetic(t *testing.T) {
	dir := t.TempDir()
	exe := testExe(t)
	writeDump(t, dir, synthDump(t, exe))
	out, err := writeSummary(t, dir)
	if err != nil {
		t.Fatal(err)
	}
	wantLines(t, out,
		"inventory: image version 2",
		"restore: the images load",
		fmt.Sprintf("task %d: comm \"synth\", ppid 1, pgid %d, sid %d, state alive", synthPid, synthPid, synthPid),
		"abi: x86_64 (executable "+exe+")",
		fmt.Sprintf("thread %d: caught in native mode (cs 0x33), ip 0x401000, sp 0x7ffd0000f000, in syscall 34 (ax -514, ERESTARTNOHAND)", synthPid),
		"memory: 5 vmas, 4 pages (16 KiB)",
		"400000-402000", "r-x", "file "+exe,
		"600000-602000", "heap",
		"vvar 0x7f0000000000-0x7f0000004000 (16 KiB), vdso 0x7f0000004000-0x7f0000006000 (8 KiB)",
		"stack",
		"/dev/null", "O_RDWR|O_LARGEFILE",
		"/etc/hostname", "flags O_RDONLY cloexec", "pos 3",
		"cwd /, root /, umask 0022",
		"uid 1000/1000/1000/1000", "groups [27 100]",
		"NOFILE 1024/1024",
		"SIGUSR1: handler 0x401200, flags SA_RESTORER|SA_RESTART",
		"SIGPIPE: SIG_IGN",
		"sigactions other than SIG_DFL: 2",
		"pending signals: 1 (0 shared, 1 per-thread)",
		"sizes: 10 image files",
	)
	// The stack VMA holds the two pages at its top.
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "7ffd00000000-7ffd00010000") && !strings.Contains(l, " 2 ") {
			t.Errorf("stack line does not count 2 pages: %q", l)
		}
	}
	if strings.Contains(out, "warning") {
		t.Errorf("unexpected warning:\n%s", out)
	}
}

// A dump that restore refuses is summarized from its images.
func TestMissingExecutable(t *testing.T) {
	dir := t.TempDir()
	gone := filepath.Join(t.TempDir(), "gone")
	writeDump(t, dir, synthDump(t, gone))
	out, err := writeSummary(t, dir)
	if err != nil {
		t.Fatal(err)
	}
	wantLines(t, out, "restore: refused: ", "abi: unknown: executable "+gone+" is missing", "file "+gone)
}

func TestEmptyDir(t *testing.T) {
	dir := t.TempDir()
	_, err := writeSummary(t, dir)
	if err == nil || !strings.Contains(err.Error(), "inventory.img") {
		t.Fatalf("empty dir: error %v, want one naming inventory.img", err)
	}
	_, err = writeSummary(t, filepath.Join(dir, "nonexistent"))
	if err == nil {
		t.Fatal("missing dir: no error")
	}
}

func TestTruncatedCore(t *testing.T) {
	dir := t.TempDir()
	files := synthDump(t, testExe(t))
	name := image.CoreName(synthPid)
	files[name] = files[name][:len(files[name])/2]
	writeDump(t, dir, files)
	_, err := writeSummary(t, dir)
	if err == nil || !strings.Contains(err.Error(), name) {
		t.Fatalf("truncated core: error %v, want one naming %s", err, name)
	}
}

// Every image cut anywhere gives a summary or an error, never a panic;
// cutting an image that holds exactly one entry is always an error.
func TestTruncatedImages(t *testing.T) {
	valid := synthDump(t, testExe(t))
	single := map[string]bool{
		image.InventoryName(): true, image.PstreeName(): true, image.CoreName(synthPid): true,
		image.MMName(synthPid): true, image.FSName(synthPid): true,
	}
	for _, name := range sortedNames(valid) {
		if strings.HasPrefix(name, "pages-") {
			continue
		}
		full := valid[name]
		dir := t.TempDir()
		writeDump(t, dir, valid)
		for cut := 0; cut < len(full); cut++ {
			if err := os.WriteFile(filepath.Join(dir, name), full[:cut], 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := writeSummary(t, dir)
			if single[name] && err == nil {
				t.Errorf("%s cut at %d of %d: no error", name, cut, len(full))
			}
			if err != nil && !strings.Contains(err.Error(), name) && !strings.Contains(err.Error(), "fd ") {
				t.Errorf("%s cut at %d: error does not name the file: %v", name, cut, err)
			}
		}
	}
}

const liveProg = `
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static void on_usr1(int s) { (void)s; }

int main(int argc, char **argv) {
	/* os/exec passes on fds that the test process inherited without
	 * O_CLOEXEC; ckpt cannot dump unknown pipes or sockets. */
	for (int i = 3; i < 1024; i++)
		close(i);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr1;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGUSR1, &sa, 0);
	signal(SIGPIPE, SIG_IGN);
	struct rlimit rl = {77, 99};
	setrlimit(RLIMIT_NOFILE, &rl);
	umask(027);
	int fd = open(argv[1], O_RDONLY);
	char b[5];
	if (fd < 0 || read(fd, b, 5) != 5)
		return 1;
	sigset_t m;
	sigemptyset(&m);
	sigaddset(&m, SIGUSR2);
	sigprocmask(SIG_BLOCK, &m, 0);
	raise(SIGUSR2);
	char *p = malloc(1 << 20);
	memset(p, 1, 1 << 20);
	printf("ready\n");
	fflush(stdout);
	for (;;)
		pause();
}
`

// TestLiveDump dumps a small C program with --leave-running and
// summarizes the images.
func TestLiveDump(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to dump a process")
	}
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("needs gcc")
	}
	tmp := t.TempDir()
	src := filepath.Join(tmp, "prog.c")
	prog := filepath.Join(tmp, "prog")
	data := filepath.Join(tmp, "data")
	outFile := filepath.Join(tmp, "out")
	imgs := filepath.Join(tmp, "images")
	if err := os.WriteFile(src, []byte(liveProg), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command(gcc, "-O1", "-o", prog, src).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, b)
	}
	if err := os.WriteFile(data, []byte("0123456789"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(outFile)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	// Stdin is /dev/null; the program closes every fd above 2.
	cmd := exec.Command(prog, data)
	cmd.Dir = tmp
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(outFile)
		if strings.Contains(string(b), "ready") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("program not ready; output %q", b)
		}
		time.Sleep(5 * time.Millisecond)
	}
	pid := cmd.Process.Pid
	if _, err := dump.Dump(dump.Options{Pid: pid, ImagesDir: imgs, LeaveRunning: true}); err != nil {
		t.Fatalf("dump: %v", err)
	}
	// The program runs on after the dump.
	if err := syscall.Kill(pid, 0); err != nil {
		t.Errorf("program gone after --leave-running dump: %v", err)
	}

	s, err := writeSummary(t, imgs)
	if err != nil {
		t.Fatal(err)
	}
	wantLines(t, s,
		"restore: the images load",
		fmt.Sprintf("task %d: comm \"prog\"", pid),
		"abi: x86_64 (executable "+prog+")",
		fmt.Sprintf("thread %d: caught in native mode (cs 0x33)", pid),
		// pause() rewound in the image, as CRIU writes it.
		"in syscall 34 (interrupted, runs again)",
		"heap", "stack", "vdso", "vvar", "file "+prog,
		data, "pos 5",
		"cwd "+tmp+", root /, umask 0027",
		"NOFILE 77/99",
		"SIGUSR1: handler 0x", "SIGPIPE: SIG_IGN",
		"pending signals: 1 (0 shared, 1 per-thread)",
		"vdso layout: ",
		"clocks: the tree saw CLOCK_MONOTONIC ",
		"stats-dump: freezing ",
	)
	if strings.Contains(s, "warning") {
		t.Errorf("unexpected warning:\n%s", s)
	}
	// The same checks as a truncated synthetic core, on real images.
	core := filepath.Join(imgs, "core-"+fmt.Sprint(pid)+".img")
	b, err := os.ReadFile(core)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(core, b[:len(b)-7], 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := writeSummary(t, imgs); err == nil || !strings.Contains(err.Error(), filepath.Base(core)) {
		t.Errorf("truncated real core: error %v, want one naming %s", err, filepath.Base(core))
	}
	t.Logf("summary:\n%s", s)
}

// A dump whose pages image is missing or shorter than its pagemap cannot
// be restored: the summary says so and Write fails, naming the image.
func TestPagesShort(t *testing.T) {
	valid := synthDump(t, testExe(t))
	for _, c := range []struct {
		name string
		data []byte // nil: remove the pages image
		want string
	}{
		{"short", valid[image.PagesName(1)][:4096], "pages-1.img holds 4096 bytes"},
		{"missing", nil, "pages-1.img is missing"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			writeDump(t, dir, valid)
			path := filepath.Join(dir, image.PagesName(1))
			var err error
			if c.data == nil {
				err = os.Remove(path)
			} else {
				err = os.WriteFile(path, c.data, 0o600)
			}
			if err != nil {
				t.Fatal(err)
			}
			out, err := writeSummary(t, dir)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "cannot be restored") {
				t.Fatalf("summary of a dump with %s pages: %v; want an error naming %q", c.name, err, c.want)
			}
			wantLines(t, out, "restore: cannot work: "+c.want)
			if strings.Contains(out, "the images load") {
				t.Errorf("the summary says the images load:\n%s", out)
			}
		})
	}
}
