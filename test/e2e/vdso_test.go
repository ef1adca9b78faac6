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
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/image"
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
	if err := waitGone(mustAtoi(t, pid), goneTimeout); err != nil {
		t.Fatal(err)
	}
	pidfile := filepath.Join(t.TempDir(), "pid")
	rc := exec.Command(ckptBin, "restore", "-D", img, "--pidfile", pidfile, "-v4", "-o", "restore.log")
	got, done := restoreInBackground(t, rc, pidfile)
	if strconv.Itoa(got) != pid {
		t.Errorf("restored as pid %d, want %s", got, pid)
	}
	_ = exec.Command("kill", "-TERM", pid).Run()
	code := exitCode(<-done)
	log, _ := os.ReadFile(filepath.Join(img, "restore.log"))
	if !strings.Contains(string(log), "vDSO: trampolines") {
		t.Errorf("restore did not take the trampoline path: %s", lastLines(string(log), 5))
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
