package e2e

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

var update = flag.Bool("update", false, "rewrite docs/RESULTS.md from this run instead of checking against it")

var ckptBin string

const (
	progsDir    = "../../testdata/progs"
	resultsPath = "../../docs/RESULTS.md"
)

func TestMain(m *testing.M) {
	flag.Parse()
	if os.Geteuid() != 0 {
		fmt.Println("e2e: must run as root (ptrace, clone3 with set_tid, PR_SET_MM_MAP); skipping")
		os.Exit(m.Run())
	}
	// Restored tasks are re-parented to us when ckpt restore -d exits;
	// a subreaper can reap them, unlike PID 1 on these machines.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fmt.Println("e2e: PR_SET_CHILD_SUBREAPER:", err)
		os.Exit(1)
	}
	// Fds inherited from whoever runs the tests must not leak into the
	// programs: they would be part of what ckpt dumps.
	if ents, err := os.ReadDir("/proc/self/fd"); err == nil {
		for _, e := range ents {
			var fd int
			if _, err := fmt.Sscan(e.Name(), &fd); err == nil && fd > 2 {
				unix.CloseOnExec(fd)
			}
		}
	}
	dir, err := os.MkdirTemp("", "ckpt-e2e-bin-")
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	ckptBin = filepath.Join(dir, "ckpt")
	if out, err := exec.Command("go", "build", "-o", ckptBin, "../../cmd/ckpt").CombinedOutput(); err != nil {
		fmt.Printf("e2e: build ckpt: %v\n%s", err, out)
		os.Exit(1)
	}
	if out, err := exec.Command("make", "-s", "-C", progsDir).CombinedOutput(); err != nil {
		fmt.Printf("e2e: build test programs: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func TestEndToEnd(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	progs, err := Programs(progsDir)
	if err != nil {
		t.Fatal(err)
	}
	known, err := ReadMatrix(resultsPath)
	if err != nil && !*update {
		t.Fatalf("read %s: %v (regenerate with: go test ./test/e2e -run TestEndToEnd -args -update)", resultsPath, err)
	}
	// With -update, cells this run does not reach (a -run filter) keep
	// their recorded result.
	m := NewMatrix()
	if known != nil {
		for p, cols := range known.cells {
			for c, r := range cols {
				m.Set(p, c, r)
			}
		}
	}
	for _, p := range progs {
		for _, v := range p.Variants() {
			p, v := p, v
			t.Run(p.Name+"/"+v.Column, func(t *testing.T) {
				work := t.TempDir()
				// Programs under test run as other users too; let them in.
				_ = os.Chmod(work, 0o777)
				bin, _ := filepath.Abs(filepath.Join(progsDir, "build", p.Name+"."+v.Suffix))
				run := &Run{Variant: v, Ckpt: ckptBin, Binary: bin, Prog: p, Work: work, Logf: t.Logf}
				res := run.Execute()
				m.Set(p.Name, v.Column, res)
				if *update {
					if !res.Pass {
						t.Logf("FAIL (recorded): %s", res.Reason)
					}
					return
				}
				want, listed := known.Get(p.Name, v.Column)
				switch {
				case res.Pass && listed && !want.Pass:
					t.Errorf("passes now, but %s lists it as failing (%s): regenerate the matrix", resultsPath, want.Reason)
				case !res.Pass && listed && !want.Pass:
					t.Skipf("known failure listed in %s: %s", resultsPath, res.Reason)
				case !res.Pass:
					t.Errorf("FAIL: %s", res.Reason)
				}
			})
		}
	}
	if *update {
		var uts unix.Utsname
		_ = unix.Uname(&uts)
		kernel := strings.TrimRight(string(uts.Release[:]), "\x00")
		if err := m.Write(resultsPath, kernel+" "+runtime.GOARCH); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", resultsPath)
	}
}
