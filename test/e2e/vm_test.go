package e2e

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ckpt/ckpt/test/testsupport"
	"github.com/ckpt/ckpt/test/vm"
)

var guestCells = flag.String("guest-cells", "", "TestGuestKernel runs only the cells whose PROGRAM/COLUMN match this (a go test -run pattern); with -update it records only them")

// guestTimeoutScale stretches the harness's timeouts in the guest, which
// runs under software emulation when the host has no KVM.
const guestTimeoutScale = "10"

// TestGuestKernel runs cells of the matrix in a qemu guest that boots
// Debian's kernel: the native-guest column (every -m64 build on another
// kernel than the host's) and, when the host's kernel refuses ia32, the
// cells that need it (the compat columns, and programs marked needs=ia32).
// The guest gets ckpt, this test binary, the test programs and their
// libraries in its initramfs, runs TestEndToEnd on its cells against
// docs/RESULTS.md and sends back the cells. With -update, the cells are
// written into docs/RESULTS.md.
func TestGuestKernel(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if *prebuilt != "" {
		t.Skip("already running in the guest")
	}
	a, kernel := guestBase(t)
	dir := t.TempDir()
	testBin := filepath.Join(dir, "e2e.test")
	if err := testsupport.GoBuild("test", "-c", "-o", testBin, "."); err != nil {
		t.Fatal(err)
	}
	add := func(guest, host string) {
		t.Helper()
		if err := a.File(guest, host); err != nil {
			t.Fatal(err)
		}
	}
	add("/src/test/e2e/e2e.test", testBin)
	add("/src/docs/RESULTS.md", resultsPath)
	srcs, _ := filepath.Glob(filepath.Join(progsDir, "*.[cg]*"))
	for _, s := range srcs {
		add("/src/testdata/progs/"+filepath.Base(s), s)
	}
	bins, _ := filepath.Glob(filepath.Join(progsDir, "build", "*"))
	for _, b := range bins {
		if err := a.Program("/src/testdata/progs/build/"+filepath.Base(b), b); err != nil {
			t.Fatal(err)
		}
	}
	release := strings.TrimPrefix(filepath.Base(kernel), "vmlinuz-")
	where := "Linux " + release + " amd64 in a qemu guest (TestGuestKernel)"
	args := []string{"/src/test/e2e", "/src/test/e2e/e2e.test",
		"-test.run", "^TestEndToEnd$/" + *guestCells, "-test.v", "-test.timeout", "60m",
		"-ckpt", "/bin/ckpt", "-in-guest",
		"-timeout-scale", guestTimeoutScale,
		"-results", "/src/docs/RESULTS.md", "-matrix-out", "/tmp/vm-out", "-where", where}
	if !hostIA32 || *guestIA32 {
		// -guest-ia32 given to TestGuestKernel runs the ia32 cells in
		// the guest even where this kernel runs them too (a check of the
		// guest's path on such a host; not for -update).
		if hostIA32 && *update {
			t.Fatal("-guest-ia32 with -update would record the host's ia32 cells from the guest")
		}
		args = append(args, "-guest-ia32")
	}
	if *update {
		args = append(args, "-update")
	}
	out, err := bootGuest(t, a, kernel, args, 60*time.Minute)
	if err != nil {
		t.Fatal(err)
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

// guestBase returns an initramfs with the guest's /init, ckpt as
// /bin/ckpt, and dash and busybox for shell commands, and the guest
// kernel.
func guestBase(t *testing.T) (*vm.Initramfs, string) {
	t.Helper()
	kernel, err := vm.FindKernel()
	if err != nil {
		t.Fatal(err)
	}
	a := vm.NewInitramfs()
	initBin := filepath.Join(t.TempDir(), "init")
	if err := vm.BuildInit(initBin); err != nil {
		t.Fatalf("build guestinit: %v", err)
	}
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Fatal("busybox is not installed (scripts/setup.sh installs busybox-static)")
	}
	for guest, host := range map[string]string{"/init": initBin, "/bin/ckpt": ckptBin, "/bin/sh": "/bin/dash", "/bin/busybox": bb} {
		if err := a.Program(guest, host); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.KernelModules(kernel); err != nil {
		t.Fatal(err)
	}
	return a, kernel
}

// bootGuest writes a's /vm-args (the guest's working directory, then the
// command), boots the guest with it and puts the guest's test verdicts and
// failures into the test log.
func bootGuest(t *testing.T, a *vm.Initramfs, kernel string, args []string, timeout time.Duration) (vm.Outcome, error) {
	t.Helper()
	dir := t.TempDir()
	a.Bytes("/vm-args", []byte(strings.Join(args, "\n")+"\n"), 0o644)
	img := filepath.Join(dir, "initramfs.cpio")
	if err := a.WriteFile(img); err != nil {
		t.Fatal(err)
	}
	console, err := os.Create(filepath.Join(dir, "console.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer console.Close()
	g := &vm.Guest{Kernel: kernel, Initramfs: img, MemoryMiB: 3072, Timeout: timeout, Console: console}
	start := time.Now()
	out, err := g.Run(context.Background())
	log, _ := os.ReadFile(console.Name())
	sc := bufio.NewScanner(bytes.NewReader(log))
	for sc.Scan() {
		l := sc.Text()
		if strings.Contains(l, "--- ") || strings.HasPrefix(l, "ckpt-vm:") || strings.Contains(l, "FAIL") {
			t.Log(l)
		}
	}
	t.Logf("guest ran for %v", time.Since(start).Round(time.Second))
	if err != nil {
		return out, fmt.Errorf("guest: %v; console ends with: %s", err, testsupport.LastLines(string(log), 40))
	}
	return out, nil
}

// TestRestoreOnOtherKernel dumps programs on this machine and restores
// them in the guest, whose kernel (Debian's 6.1) has another vDSO and
// another vvar layout: the restore must take the trampoline path and the
// program must go on and PASS there. The guest booted seconds ago, so its
// clocks are hours behind the dumped ones: the tree gets a time namespace
// and vdso_clock sees its clocks go on without a jump. Programs that check
// the device numbers of their files (mm_fields) cannot pass: the guest is
// another machine.
func TestRestoreOnOtherKernel(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if *prebuilt != "" {
		t.Skip("already running in the guest")
	}
	// refused: the restore must fail naming this (go_runtime: the Go
	// runtime keeps a pointer to the 6.11+ vDSO getrandom, which 6.1 lacks).
	// cpuCap: the programs keep glibc off what the guest's CPU lacks (see
	// GLIBC_TUNABLES below), so they are restored with --cpu-cap=fpu; one
	// is restored with the default check, which must refuse the dump of
	// this CPU (AVX-512 and more) on the guest's.
	cases := []struct{ prog, cpuCap, refused string }{
		{"threads", "fpu", ""}, {"signals", "fpu", ""}, {"eventfd_epoll", "fpu", ""}, {"vdso_clock", "fpu", ""},
		{"go_runtime", "fpu", "has no __vdso_getrandom/getrandom, which the dumped task's vDSO exported"},
		{"signals", "ins", "this CPU lacks "},
	}
	for _, c := range cases {
		prog, refused := c.prog, c.refused
		t.Run(prog+"/cpu-cap="+c.cpuCap, func(t *testing.T) {
			// The guest's CPU (qemu's TCG) lacks AVX-512, XSAVEC and RTM
			// (glibc's *_avx2_rtm string functions run xtest, SIGILL
			// there): keep glibc off what it chooses by CPUID at start, as
			// for any migration to an older CPU.
			t.Setenv("GLIBC_TUNABLES", "glibc.cpu.hwcaps=-AVX512F,-AVX512VL,-AVX512BW,-AVX512DQ,-AVX512CD,-XSAVEC,-RTM")
			t.Setenv("LD_BIND_NOW", "1")
			img := dumpOne(t, prog, false)
			work := filepath.Dir(img)
			pid := dumpedPid(t, img)
			pidN := mustAtoi(t, pid)
			if err := testsupport.WaitGone(pidN, goneTimeout); err != nil {
				t.Fatal(err)
			}
			a, kernel := guestBase(t)
			bin, _ := filepath.Abs(filepath.Join(progsDir, "build", prog+".64"))
			if err := a.Program(bin, bin); err != nil {
				t.Fatal(err)
			}
			// The images, the program's cwd and its log, at the same paths.
			if err := a.Tree(work); err != nil {
				t.Fatal(err)
			}
			a.Bytes("/restore.sh", []byte(guestRestoreScript), 0o755)
			out, err := bootGuest(t, a, kernel, []string{"/", "/bin/sh", "/restore.sh", img, pid, filepath.Join(work, "prog.log"), c.cpuCap}, 10*time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			res := string(out.Output)
			if refused != "" {
				if strings.Contains(res, "restore exit status 0\n") || !strings.Contains(res, refused) {
					t.Fatalf("the restore must fail with %q:\n%s", refused, testsupport.LastLines(res, 30))
				}
				t.Logf("refused as it must be: %s", strings.SplitN(res, "\n", 3)[1])
				return
			}
			if !strings.Contains(res, "restore exit status 0\n") || !strings.Contains(res, "\nPASS\n") {
				t.Fatalf("the program did not PASS after the restore in the guest:\n%s", testsupport.LastLines(res, 30))
			}
			if !strings.Contains(res, "vDSO: trampolines") {
				t.Errorf("the restore did not take the trampoline path:\n%s", testsupport.LastLines(res, 30))
			}
			if !strings.Contains(res, "the tree gets a time namespace") {
				t.Errorf("the restore made no time namespace, though the guest's clocks are behind:\n%s", testsupport.LastLines(res, 30))
			}
			logPaths(t, res)
		})
	}
}

// logPaths logs the lines of a guest restore's output that say which
// vDSO and clock paths it took.
func logPaths(t *testing.T, res string) {
	t.Helper()
	for _, l := range strings.Split(res, "\n") {
		if strings.Contains(l, "vDSO") || strings.Contains(l, "vdso") || strings.Contains(l, "time namespace") {
			t.Log(l)
		}
	}
}

// guestRestoreScript restores, in the guest, the dump in $1 of task $2
// with --cpu-cap=$4, lets it run for two seconds, sends it SIGTERM, and
// leaves in /tmp/vm-out the restore's exit status, its stderr, the
// program's log $3 and the restore log.
const guestRestoreScript = `set -u
echo 4194304 >/proc/sys/kernel/pid_max
# The Go runtime keeps the cgroup v1 CPU quota file open: the same path
# must exist here.
busybox mount -t tmpfs cgroup /sys/fs/cgroup
busybox mkdir /sys/fs/cgroup/cpu
busybox mount -t cgroup -o cpu cgroup /sys/fs/cgroup/cpu
ckpt restore -D "$1" --cpu-cap="$4" --pidfile /tmp/pid -v4 -o restore.log 2>/tmp/restore.err &
r=$!
i=0
while [ ! -s /tmp/pid ] && [ $i -lt 300 ] && kill -0 $r; do busybox sleep 0.1; i=$((i+1)); done
busybox sleep 2
kill -TERM "$2"
wait $r
echo "restore exit status $?" >/tmp/vm-out
busybox cat /tmp/restore.err "$3" "$1/restore.log" >>/tmp/vm-out
`

// guestDumpScript starts program $1 in its own session in /tmp/xk/cwd,
// waits for its READY, dumps it into /tmp/xk/img, and sends back /tmp/xk
// as a base64 tar in /tmp/vm-out.
const guestDumpScript = `set -u
busybox mkdir -p /tmp/xk/cwd
cd /tmp/xk/cwd
CKPT_TEST_DIR=/tmp/xk/cwd busybox setsid "$1" >/tmp/xk/prog.log 2>&1 </dev/null &
p=$!
i=0
while ! busybox grep -q '^READY$' /tmp/xk/prog.log && [ $i -lt 300 ]; do busybox sleep 0.1; i=$((i+1)); done
ckpt dump -t $p -D /tmp/xk/img -v4 -o dump.log || { busybox cat /tmp/xk/prog.log; exit 1; }
cd /
busybox tar -cf - tmp/xk | busybox base64 >/tmp/vm-out
`

// TestCompatAcrossKernels dumps a 32-bit program in the guest on Debian
// stable's kernel (6.1) and restores it in a guest on the newer
// backports kernel (6.12), whose 32-bit vDSO differs (other offsets, and
// a getcpu): the restore must take the trampoline path, and vdso_clock,
// which calls every vDSO entry through glibc and through the old entry
// points, must PASS. Both guests run on the same (emulated) CPU. It runs
// only with CKPT_VM_OTHER_KERNEL set (scripts/fetch-other-kernel.sh).
func TestCompatAcrossKernels(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if *prebuilt != "" {
		t.Skip("already running in the guest")
	}
	other := vm.OtherKernel()
	if other == "" {
		t.Skip("no second guest kernel: set CKPT_VM_OTHER_KERNEL (scripts/fetch-other-kernel.sh fetches Debian's 6.12); CI leaves it out, as qemu 7.2's emulation runs 6.12 unreliably")
	}
	const prog = "vdso_clock"
	bin, _ := filepath.Abs(filepath.Join(progsDir, "build", prog+".32"))
	// Dump in the first guest.
	a, first := guestBase(t)
	if err := a.Program(bin, bin); err != nil {
		t.Fatal(err)
	}
	a.Bytes("/dump.sh", []byte(guestDumpScript), 0o755)
	out, err := bootGuest(t, a, first, []string{"/", "/bin/sh", "/dump.sh", bin}, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if out.ExitCode != 0 {
		t.Fatalf("dump in the first guest (%s) failed: %s", filepath.Base(first), testsupport.LastLines(string(out.Output), 10))
	}
	raw, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(string(out.Output)), ""))
	if err != nil {
		t.Fatalf("the first guest's tar: %v", err)
	}
	// Restore in the second guest, with the dump at the same paths.
	b, _ := guestBase(t)
	if err := b.Program(bin, bin); err != nil {
		t.Fatal(err)
	}
	host := t.TempDir()
	tr := tar.NewReader(bytes.NewReader(raw))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("the first guest's tar: %v", err)
		}
		guest := "/" + strings.TrimPrefix(filepath.Clean(h.Name), "/")
		switch h.Typeflag {
		case tar.TypeDir:
			b.Dir(guest)
		case tar.TypeReg:
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			hp := filepath.Join(host, guest)
			if err := os.MkdirAll(filepath.Dir(hp), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(hp, data, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := b.File(guest, hp); err != nil {
				t.Fatal(err)
			}
		}
	}
	pid := dumpedPid(t, filepath.Join(host, "tmp/xk/img"))
	b.Bytes("/restore.sh", []byte(guestRestoreScript), 0o755)
	out, err = bootGuest(t, b, other, []string{"/", "/bin/sh", "/restore.sh", "/tmp/xk/img", pid, "/tmp/xk/prog.log", "ins"}, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	res := string(out.Output)
	logPaths(t, res)
	if !strings.Contains(res, "restore exit status 0\n") || !strings.Contains(res, "\nPASS\n") {
		t.Fatalf("dumped on %s, the program did not PASS after the restore on %s:\n%s", filepath.Base(first), filepath.Base(other), testsupport.LastLines(res, 30))
	}
	if !strings.Contains(res, "vDSO: trampolines") {
		t.Errorf("the restore did not take the trampoline path:\n%s", testsupport.LastLines(res, 30))
	}
}
