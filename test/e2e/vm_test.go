package e2e

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ckpt/ckpt/test/vm"
)

// guestTimeoutScale stretches the harness's timeouts in the guest, which
// runs under software emulation when the host has no KVM.
const guestTimeoutScale = "10"

// TestCompatInVM runs the cells of the matrix that need ia32 (the compat
// columns, and programs marked needs=ia32) in a qemu guest
// whose kernel runs ia32 programs, for hosts whose kernel refuses them.
// The guest gets ckpt, this test binary, the test programs and their
// libraries in its initramfs, runs TestEndToEnd on the compat columns
// against docs/RESULTS.md and sends back the cells. With -update, the
// cells are written into docs/RESULTS.md.
func TestCompatInVM(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if hostIA32 {
		t.Skip("this kernel runs ia32 programs: TestEndToEnd runs the compat columns here")
	}
	if *prebuilt != "" {
		t.Skip("already running in the guest")
	}
	kernel, err := vm.FindKernel()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	a := vm.NewInitramfs()
	build := func(args ...string) {
		t.Helper()
		cmd := exec.Command("go", args...)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, b)
		}
	}
	testBin := filepath.Join(dir, "e2e.test")
	build("test", "-c", "-o", testBin, ".")
	initBin := filepath.Join(dir, "init")
	build("build", "-o", initBin, "../vm/guestinit")
	add := func(guest, host string) {
		t.Helper()
		if err := a.File(guest, host); err != nil {
			t.Fatal(err)
		}
	}
	add("/init", initBin)
	add("/bin/ckpt", ckptBin)
	add("/src/test/e2e/e2e.test", testBin)
	add("/src/docs/RESULTS.md", resultsPath)
	srcs, _ := filepath.Glob(filepath.Join(progsDir, "*.[cg]*"))
	for _, s := range srcs {
		add("/src/testdata/progs/"+filepath.Base(s), s)
	}
	bins, _ := filepath.Glob(filepath.Join(progsDir, "build", "*"))
	for _, b := range bins {
		add("/src/testdata/progs/build/"+filepath.Base(b), b)
		if err := a.Libraries(b); err != nil {
			t.Fatal(err)
		}
	}
	release := strings.TrimPrefix(filepath.Base(kernel), "vmlinuz-")
	where := "Linux " + release + " amd64 in a qemu guest (TestCompatInVM), because the kernel of the machine of the last -update refuses ia32 programs"
	args := []string{"/src/test/e2e", "/src/test/e2e/e2e.test",
		"-test.run", "^TestEndToEnd$", "-test.v", "-test.timeout", "60m",
		"-ckpt", "/bin/ckpt", "-ia32-cells",
		"-timeout-scale", guestTimeoutScale,
		"-results", "/src/docs/RESULTS.md", "-matrix-out", "/tmp/vm-out", "-where", where}
	if *update {
		args = append(args, "-update")
	}
	a.Bytes("/vm-args", []byte(strings.Join(args, "\n")+"\n"), 0o644)
	img := filepath.Join(dir, "initramfs.cpio")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	console, err := os.Create(filepath.Join(dir, "console.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer console.Close()
	g := &vm.Guest{Kernel: kernel, Initramfs: img, MemoryMiB: 3072, Timeout: 60 * time.Minute, Console: console}
	start := time.Now()
	out, err := g.Run(context.Background())
	log, _ := os.ReadFile(console.Name())
	// The guest's verdict for each cell, and every failure with its
	// reason, go into this test's log.
	sc := bufio.NewScanner(bytes.NewReader(log))
	for sc.Scan() {
		l := sc.Text()
		if strings.Contains(l, "--- ") || strings.HasPrefix(l, "ckpt-vm:") || strings.Contains(l, "FAIL") {
			t.Log(l)
		}
	}
	t.Logf("guest ran for %v", time.Since(start).Round(time.Second))
	if err != nil {
		t.Fatalf("guest: %v; console ends with: %s", err, lastLines(string(log), 20))
	}
	mf := filepath.Join(dir, "guest-matrix.md")
	if err := os.WriteFile(mf, out.Output, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := ReadMatrix(mf)
	if err != nil {
		t.Fatalf("the guest sent back no matrix (exit code %d): %v", out.ExitCode, err)
	}
	if *update {
		m, err := ReadMatrix(resultsPath)
		if err != nil {
			m = NewMatrix()
		}
		m.Merge(got, nil)
		if err := m.Write(resultsPath); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote the guest's cells into %s", resultsPath)
		return
	}
	if out.ExitCode != 0 {
		t.Errorf("TestEndToEnd failed in the guest (exit code %d): see the FAIL lines above", out.ExitCode)
	}
}
