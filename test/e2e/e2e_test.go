package e2e

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/internal/kerndat"
	"github.com/ckpt/ckpt/test/testsupport"
)

var (
	update       = flag.Bool("update", false, "rewrite docs/RESULTS.md from this run instead of checking against it")
	prebuilt     = flag.String("ckpt", "", "use this ckpt binary and the test programs already built in testdata/progs/build (in the test guest)")
	inGuest      = flag.Bool("in-guest", false, "run only the cells of the test guest: the native-guest column, and with -guest-ia32 the compat columns and the programs marked needs=ia32")
	guestIA32    = flag.Bool("guest-ia32", false, "with -in-guest: run the cells that need ia32 too (the host's kernel refuses them); given to TestGuestKernel, run them in the guest even where this kernel runs them")
	timeoutScale = flag.Float64("timeout-scale", 1, "multiply the harness's timeouts (a guest under software emulation is slower)")
	resultsFlag  = flag.String("results", "", "the results matrix to check against or rewrite (default docs/RESULTS.md)")
	matrixOut    = flag.String("matrix-out", "", "also write the cells of this run as a matrix to this file")
	whereFlag    = flag.String("where", "", "what to say in the matrix about the machine the cells ran on (default: this kernel)")
)

var ckptBin string

// hostIA32 is whether this kernel runs ia32 programs; when it does not,
// the compat columns run in a guest kernel (TestGuestKernel).
var hostIA32 bool

const progsDir = "../../testdata/progs"

var resultsPath = "../../docs/RESULTS.md"

func TestMain(m *testing.M) {
	flag.Parse()
	if *resultsFlag != "" {
		resultsPath = *resultsFlag
	}
	scale := func(d *time.Duration) { *d = time.Duration(float64(*d) * *timeoutScale) }
	scale(&readyTimeout)
	scale(&finishTimeout)
	scale(&goneTimeout)
	scale(&settleTimeout)
	if os.Geteuid() != 0 {
		fmt.Println("e2e: must run as root (ptrace, clone3 with set_tid, PR_SET_MM_MAP); skipping")
		os.Exit(m.Run())
	}
	// Restored tasks are re-parented to us when ckpt restore -d exits;
	// a subreaper can reap them, unlike PID 1 on these machines.
	if err := testsupport.SetSubreaper(); err != nil {
		fmt.Println("e2e:", err)
		os.Exit(1)
	}
	testsupport.NoInheritedFds()
	hostIA32, _ = kerndat.IA32Runs()
	if *prebuilt != "" {
		ckptBin = *prebuilt
		os.Exit(finishRealPrograms(m.Run()))
	}
	dir, err := os.MkdirTemp("", "ckpt-e2e-bin-")
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	ckptBin = filepath.Join(dir, "ckpt")
	// Static, so that the test guest runs it without its libraries.
	if err := testsupport.GoBuild("build", "-o", ckptBin, "../../cmd/ckpt"); err != nil {
		fmt.Printf("e2e: build ckpt: %v\n", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	if out, err := exec.Command("make", "-s", "-C", progsDir).CombinedOutput(); err != nil {
		fmt.Printf("e2e: build test programs: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := finishRealPrograms(m.Run())
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
		t.Fatalf("read %s: %v (regenerate with: go test ./test/e2e -args -update)", resultsPath, err)
	}
	// With -update, cells this run does not reach (a -run filter) keep
	// their recorded result.
	m := NewMatrix()
	if known != nil {
		m.Merge(known, nil)
	}
	var uts unix.Utsname
	_ = unix.Uname(&uts)
	where := *whereFlag
	if where == "" {
		where = "Linux " + unix.ByteSliceToString(uts.Release[:]) + " " + runtime.GOARCH + " (the host)"
	}
	ran := NewMatrix()
	for _, p := range progs {
		for _, v := range p.Variants() {
			p, v := p, v
			needsIA32 := v.Compat() || p.NeedsIA32
			if *inGuest && !v.Guest && !(*guestIA32 && needsIA32) {
				continue
			}
			if !*inGuest && (v.Guest || needsIA32 && !hostIA32) {
				// TestGuestKernel runs these cells in the guest: the
				// native-guest column, and what needs ia32 when this
				// kernel refuses it.
				continue
			}
			if !*inGuest || v.Guest || v.Compat() {
				m.SetWhere(v.Column, where)
				ran.SetWhere(v.Column, where)
			}
			t.Run(p.Name+"/"+v.Column, func(t *testing.T) {
				work := t.TempDir()
				// Programs under test run as other users too; let them in.
				_ = os.Chmod(work, 0o777)
				bin, _ := filepath.Abs(filepath.Join(progsDir, "build", p.Name+"."+v.Suffix))
				run := &Run{Variant: v, Ckpt: ckptBin, Binary: bin, Prog: p, Work: work, Logf: t.Logf}
				res := run.Execute()
				m.Set(p.Name, v.Column, res)
				ran.Set(p.Name, v.Column, res)
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
	if *matrixOut != "" {
		if err := ran.Write(*matrixOut); err != nil {
			t.Fatal(err)
		}
	}
	if *update {
		if err := m.Write(resultsPath); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", resultsPath)
	}
}
