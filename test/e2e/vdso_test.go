package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/mm"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/vma"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/image"
	"github.com/ckpt/ckpt/internal/vdso"
	"github.com/ckpt/ckpt/test/testsupport"
)

// TestVDSOOlderKernelLayout rewrites the vvar layout recorded in a dump to
// an older kernel's (one [vvar], no [vvar_vclock], another size) and
// restores it: the restore must take the trampoline path and the program
// must still use its vDSO.
func TestVDSOOlderKernelLayout(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	img := dumpOne(t, "vdso_clock", false)
	pid := dumpedPid(t, img)
	d := image.Dir{Path: img}
	m := &mm.MmEntry{}
	name := "mm-" + pid + ".img"
	if err := d.ReadOne(name, image.MagicMM, m); err != nil {
		t.Fatal(err)
	}
	var vvars []*vma.VmaEntry
	var kept []*vma.VmaEntry
	for _, v := range m.GetVmas() {
		if v.GetStatus()&image.VMAAreaVVAR != 0 {
			vvars = append(vvars, v)
			continue
		}
		kept = append(kept, v)
	}
	if len(vvars) < 2 {
		t.Skipf("this kernel has %d vvar areas; the rewrite needs [vvar] and [vvar_vclock]", len(vvars))
	}
	// One vvar area from the first vvar start to the vdso, like kernels
	// before 6.13 (whose sizes differ too).
	one := proto.Clone(vvars[0]).(*vma.VmaEntry)
	one.End = proto.Uint64(vvars[len(vvars)-1].GetEnd())
	m.Vmas = append([]*vma.VmaEntry{one}, kept...)
	sortVMAs(m.Vmas)
	if err := d.Write(name, image.MagicMM, m); err != nil {
		t.Fatal(err)
	}
	if err := testsupport.WaitGone(mustAtoi(t, pid), goneTimeout); err != nil {
		t.Fatal(err)
	}
	pidfile := filepath.Join(t.TempDir(), "pid")
	rc := exec.Command(ckptBin, "restore", "-D", img, "--pidfile", pidfile, "-v4", "-o", "restore.log")
	got, done := restoreInBackground(t, rc, pidfile)
	if strconv.Itoa(got) != pid {
		t.Errorf("restored as pid %d, want %s", got, pid)
	}
	_ = exec.Command("kill", "-TERM", pid).Run()
	code := testsupport.ExitCode(<-done)
	log, _ := os.ReadFile(filepath.Join(img, "restore.log"))
	if !strings.Contains(string(log), "vDSO: trampolines") {
		t.Errorf("restore did not take the trampoline path: %s", testsupport.LastLines(string(log), 5))
	}
	if err := verdict(filepath.Join(filepath.Dir(img), "prog.log"), code, ""); err != nil {
		t.Errorf("program after restore: %v", err)
	}
}

func sortVMAs(v []*vma.VmaEntry) {
	for i := 1; i < len(v); i++ {
		for j := i; j > 0 && v[j].GetStart() < v[j-1].GetStart(); j-- {
			v[j], v[j-1] = v[j-1], v[j]
		}
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestVDSOMissingSymbol restores through the trampolines with symbols
// taken out of this kernel's vDSO (CKPT_FAULT=vdso-drop=NAME). A symbol
// the task refers to (glibc keeps a pointer to __vdso_getcpu) must fail
// the restore, naming it, and leave no task behind; one nothing refers
// to must not stop it.
func TestVDSOMissingSymbol(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	// glibc before 2.41 (Debian 12 has 2.36) does not use the vDSO's
	// getrandom (Linux 6.11 and later).
	const unused = "__vdso_getrandom"
	if !ownVDSOHas(t, unused) {
		t.Skipf("this kernel's vDSO has no %s to take out", unused)
	}
	img := dumpOne(t, "vdso_clock", false)
	pid := dumpedPid(t, img)
	if err := testsupport.WaitGone(mustAtoi(t, pid), goneTimeout); err != nil {
		t.Fatal(err)
	}
	rc := exec.Command(ckptBin, "restore", "-D", img, "-d")
	rc.Env = append(os.Environ(), "CKPT_FAULT=vdso-trampolines,vdso-drop=__vdso_getcpu,vdso-drop=getcpu")
	out, err := rc.CombinedOutput()
	if err == nil {
		_ = unix.Kill(mustAtoi(t, pid), unix.SIGKILL)
		t.Fatalf("restore without __vdso_getcpu succeeded: %s", out)
	}
	if !strings.Contains(string(out), "has no __vdso_getcpu/getcpu") || !strings.Contains(string(out), "refers to") {
		t.Errorf("error does not name the symbol and the reference: %s", out)
	}
	t.Logf("refused: %s", strings.TrimSpace(string(out)))
	if _, err := os.Stat("/proc/" + pid); err == nil {
		t.Errorf("task %s is left after the failed restore", pid)
	}

	pidfile := filepath.Join(t.TempDir(), "pid")
	rc = exec.Command(ckptBin, "restore", "-D", img, "--pidfile", pidfile, "-v4", "-o", "restore.log")
	rc.Env = append(os.Environ(), "CKPT_FAULT=vdso-trampolines,vdso-drop="+unused+",vdso-drop=getrandom")
	got, done := restoreInBackground(t, rc, pidfile)
	if strconv.Itoa(got) != pid {
		t.Errorf("restored as pid %d, want %s", got, pid)
	}
	_ = unix.Kill(got, unix.SIGTERM)
	code := testsupport.ExitCode(<-done)
	log, _ := os.ReadFile(filepath.Join(img, "restore.log"))
	if !strings.Contains(string(log), "has no "+unused+"/getrandom; nothing in the task refers to it") {
		t.Errorf("restore log does not say it dropped %s: %s", unused, testsupport.LastLines(string(log), 5))
	}
	if err := verdict(filepath.Join(filepath.Dir(img), "prog.log"), code, ""); err != nil {
		t.Errorf("program after restore: %v", err)
	}
	t.Logf("restored without %s: %s", unused, testsupport.LastLines(string(log), 1))
}

// ownVDSOHas reports whether this process's vDSO exports name.
func ownVDSOHas(t *testing.T, name string) bool {
	t.Helper()
	b, err := vdso.Own()
	if err != nil {
		t.Fatal(err)
	}
	im, err := vdso.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	_, ok := im.Symbols[name]
	return ok
}
