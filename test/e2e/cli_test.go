package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/test/testsupport"
)

// bigmemSrc maps and fills 1 GiB, so that a dump of it takes a while;
// on SIGTERM it checks every page and says PASS.
const bigmemSrc = `
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#define LEN (1UL << 30)
static volatile sig_atomic_t term;
static void on_term(int s) { (void)s; term = 1; }
int main(void)
{
	size_t i, pg = 4096;
	unsigned char *p = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) { printf("FAIL: mmap\n"); return 1; }
	for (i = 0; i < LEN / pg; i++)
		memset(p + i * pg, (int)(i % 251) + 1, pg);
	signal(SIGTERM, on_term);
	printf("READY\n");
	fflush(stdout);
	while (!term)
		pause();
	for (i = 0; i < LEN / pg; i++)
		if (p[i * pg] != (unsigned char)((i % 251) + 1) || p[i * pg + pg - 1] != (unsigned char)((i % 251) + 1)) {
			printf("FAIL: page %zu changed\n", i);
			return 1;
		}
	printf("PASS\n");
	return 0;
}
`

// TestDumpInterrupted sends SIGINT, SIGTERM or SIGHUP to a dump of a
// process with 1 GiB of memory while it writes the pages: the dump must
// stop, say so, leave no images, and the process must go on untraced and
// pass its own check.
func TestDumpInterrupted(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "bigmem.c")
	bin := filepath.Join(dir, "bigmem")
	if err := os.WriteFile(src, []byte(bigmemSrc), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := testsupport.BuildC(bin, src, "-O2", "-Wall"); err != nil {
		t.Fatal(err)
	}
	for _, sig := range []syscall.Signal{unix.SIGINT, unix.SIGTERM, unix.SIGHUP} {
		name := unix.SignalName(sig)
		t.Run(name, func(t *testing.T) {
			work := t.TempDir()
			logPath := filepath.Join(work, "prog.log")
			logF, err := os.Create(logPath)
			if err != nil {
				t.Fatal(err)
			}
			defer logF.Close()
			cmd := exec.Command(bin)
			cmd.Dir, cmd.Stdout, cmd.Stderr = work, logF, logF
			cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
			if _, err := testsupport.StartReady(cmd, logPath, readyTimeout); err != nil {
				t.Fatal(err)
			}
			pid := cmd.Process.Pid
			alive := true
			defer func() {
				if alive {
					_ = cmd.Process.Kill()
					_ = cmd.Wait()
				}
			}()
			img := filepath.Join(work, "img")
			var out bytes.Buffer
			dump := exec.Command(ckptBin, "dump", "-t", strconv.Itoa(pid), "-D", img)
			dump.Stdout, dump.Stderr = &out, &out
			if err := dump.Start(); err != nil {
				t.Fatal(err)
			}
			// Wait until the dump is writing pages, then interrupt it.
			deadline := time.Now().Add(30 * time.Second)
			for {
				m, _ := filepath.Glob(filepath.Join(img, ".ckpt-dump-*", "pages-1.img"))
				if len(m) > 0 {
					if fi, err := os.Stat(m[0]); err == nil && fi.Size() > 8<<20 {
						break
					}
				}
				if time.Now().After(deadline) {
					_ = dump.Process.Kill()
					_ = dump.Wait()
					t.Fatalf("the dump wrote no pages within 30 s: %s", out.String())
				}
				time.Sleep(time.Millisecond)
			}
			if err := dump.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			err = dump.Wait()
			if err == nil {
				t.Fatalf("the dump ended with status 0 after %s (the pages were written before it came?): %s", name, out.String())
			}
			if !strings.Contains(out.String(), "interrupted by "+name) {
				t.Errorf("the dump's message does not name %s: %s", name, out.String())
			}
			if left, _ := os.ReadDir(img); len(left) != 0 {
				t.Errorf("the interrupted dump left %d files in the images directory", len(left))
			}
			st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
			if err != nil {
				t.Fatalf("the task is gone after the interrupted dump: %v", err)
			}
			if !strings.Contains(string(st), "TracerPid:\t0\n") {
				t.Errorf("the task is still traced: %s", st)
			}
			if s := testsupport.State(pid); s != 'S' && s != 'R' {
				t.Errorf("the task is in state %c after the interrupted dump", s)
			}
			r := &Run{}
			if err := r.finish(pid, logPath, &alive); err != nil {
				t.Errorf("task after the interrupted dump: %v", err)
			}
			_ = cmd.Wait()
		})
	}
}

// TestDumpOverOlderDump dumps into a directory that holds an earlier
// dump and runs out of space half-way: the earlier dump must be left
// whole (ckpt show reads it, its files unchanged), never a directory that
// looks whole but mixes the two.
func TestDumpOverOlderDump(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	old := dumpOne(t, "mem_heap", false)
	oldPid := dumpedPid(t, old)
	ents, err := os.ReadDir(old)
	if err != nil {
		t.Fatal(err)
	}
	var size int64
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		size += (fi.Size() + 4095) &^ 4095
	}
	work := t.TempDir()
	img := filepath.Join(work, "img")
	if err := os.Mkdir(img, 0o700); err != nil {
		t.Fatal(err)
	}
	// Room for the earlier dump and 64 KiB more: the new one cannot fit.
	mountTmpfs(t, img, size/1024+64)
	if out, err := exec.Command("cp", "-a", old+"/.", img).CombinedOutput(); err != nil {
		t.Fatalf("copy the earlier dump: %v: %s", err, out)
	}
	oldFiles := readDir(t, img)

	cmd, logPath := startProg(t, "mem_anon", work, false)
	pid := cmd.Process.Pid
	alive := true
	defer func() {
		if alive {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()
	out, err := exec.Command(ckptBin, "dump", "-t", fmt.Sprint(pid), "-D", img).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "no space left") {
		t.Fatalf("dump into a full disk over an earlier dump: %v: %s", err, out)
	}
	now := readDir(t, img)
	if len(now) != len(oldFiles) {
		t.Errorf("the images directory held %d files, now %d", len(oldFiles), len(now))
	}
	for name, b := range oldFiles {
		if !bytes.Equal(now[name], b) {
			t.Errorf("the failed dump changed the earlier dump's %s", name)
		}
	}
	show, err := exec.Command(ckptBin, "show", img).CombinedOutput()
	if err != nil || !strings.Contains(string(show), "task "+oldPid+":") || !strings.Contains(string(show), "the images load") {
		t.Errorf("ckpt show of the earlier dump after the failed one: %v: %s", err, testsupport.LastLines(string(show), 5))
	}
	r := &Run{}
	if err := r.finish(pid, logPath, &alive); err != nil {
		t.Errorf("task after the failed dump: %v", err)
	}
	_ = cmd.Wait()
}

// readDir reads every file of dir (hidden ones too) by name.
func readDir(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		out[e.Name()] = b
	}
	return out
}

// TestLogFile: the -o log holds the summary of a dump and of a restore
// without -v, and the error of a failed one.
func TestLogFile(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	work := t.TempDir()
	cmd, _ := startProg(t, "mem_heap", work, false)
	pid := cmd.Process.Pid
	defer func() {
		_ = unix.Kill(pid, unix.SIGKILL)
		_ = cmd.Wait()
	}()
	img := filepath.Join(work, "img")
	if out, err := exec.Command(ckptBin, "dump", "-t", strconv.Itoa(pid), "-D", img, "-o", "dump.log").CombinedOutput(); err != nil {
		t.Fatalf("dump: %v: %s", err, out)
	}
	_ = cmd.Wait()
	reapAdopted()
	if b, _ := os.ReadFile(filepath.Join(img, "dump.log")); !strings.Contains(string(b), fmt.Sprintf("dumped task %d", pid)) {
		t.Errorf("dump.log without -v holds no summary: %q", b)
	}
	// A restore that fails: the pages image is cut short.
	if err := os.Truncate(filepath.Join(img, "pages-1.img"), 4096); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(ckptBin, "restore", "-D", img, "-d", "-o", "restore.log").CombinedOutput()
	if err == nil {
		t.Fatalf("restore of a cut dump succeeded: %s", out)
	}
	if b, _ := os.ReadFile(filepath.Join(img, "restore.log")); !strings.Contains(string(b), "Error:") || !strings.Contains(string(b), "pages-1.img") {
		t.Errorf("restore.log of a failed restore holds no error: %q (ckpt said %s)", b, out)
	}
	// A dump that fails.
	bad := t.TempDir()
	if _, err := exec.Command(ckptBin, "dump", "-t", "999999999", "-D", bad, "-o", "dump.log").CombinedOutput(); err == nil {
		t.Fatal("dump of a missing pid succeeded")
	}
	if b, _ := os.ReadFile(filepath.Join(bad, "dump.log")); !strings.Contains(string(b), "Error:") || !strings.Contains(string(b), "no such process") {
		t.Errorf("dump.log of a failed dump holds no error: %q", b)
	}
}
