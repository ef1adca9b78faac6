//go:build linux && amd64

package e2e

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/internal/fault"
	"github.com/ckpt/ckpt/internal/kinds/ns"
	"github.com/ckpt/ckpt/internal/model"
)

// sysvCount counts the SysV objects of ckpt's IPC namespace.
func sysvCount(t *testing.T) int {
	t.Helper()
	n := 0
	for _, f := range []string{"shm", "sem", "msg"} {
		b, err := os.ReadFile("/proc/sysvipc/" + f)
		if err != nil {
			t.Fatal(err)
		}
		n += len(strings.Split(strings.TrimSpace(string(b)), "\n")) - 1
	}
	return n
}

func sysvCounts(sv *model.SysV) string {
	if sv == nil {
		return "none"
	}
	return strconv.Itoa(len(sv.Shm)) + " segments, " + strconv.Itoa(len(sv.Sem)) + " sets, " + strconv.Itoa(len(sv.Msg)) + " queues"
}

// TestSysVHostIDTaken: a restore whose SysV segment id in the host's IPC
// namespace is taken by another segment is refused, naming both, before
// it makes any object.
func TestSysVHostIDTaken(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	img := dumpOne(t, "sysv_host", false)
	defer func() {
		if err := ns.RemoveHostSysV(img); err != nil {
			t.Error(err)
		}
	}()
	d, err := model.Load(img)
	if err != nil {
		t.Fatal(err)
	}
	sv := d.SysV[model.HostIPC]
	// sysv_host's segments A, N and P, its set and S2, its queue and W.
	if sv == nil || len(sv.Shm) != 3 || len(sv.Sem) != 2 || len(sv.Msg) != 2 {
		t.Fatalf("the dump holds the host's SysV objects: %s; want 3 segments, 2 sets, 2 queues", sysvCounts(sv))
	}
	var id int
	for _, o := range sv.Shm {
		if o.Entry.GetDesc().GetKey() != 0 {
			id = int(o.Entry.GetDesc().GetId())
		}
	}
	// Another segment takes the id of segment A.
	if _, err := unix.SysvShmCtl(id, unix.IPC_RMID, nil); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("/proc/sys/kernel/shm_next_id", []byte(strconv.Itoa(id)), 0); err != nil {
		t.Fatal(err)
	}
	other, err := unix.SysvShmGet(0x77000000|os.Getpid()&0xffffff, 4096, unix.IPC_CREAT|unix.IPC_EXCL|0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.SysvShmCtl(other, unix.IPC_RMID, nil)
	if other != id {
		t.Fatalf("the other segment got id %d, not %d", other, id)
	}
	before := sysvCount(t)
	out, err := exec.Command(ckptBin, "restore", "-D", img, "-d").CombinedOutput()
	if err == nil {
		t.Fatalf("restore succeeded with segment %d taken: %s", id, out)
	}
	want := "SysV shared memory segment " + strconv.Itoa(id)
	if !strings.Contains(string(out), want) || !strings.Contains(string(out), "taken by another object") || !strings.Contains(string(out), "ipcrm -m "+strconv.Itoa(id)) {
		t.Errorf("the refusal does not name %q and what to do: %s", want, out)
	}
	if after := sysvCount(t); after != before {
		t.Errorf("the refused restore left %d SysV objects, there were %d", after, before)
	}
}

// TestSysVHostUndo: a restore that fails after it made the host's SysV
// objects again removes them.
func TestSysVHostUndo(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	img := dumpOne(t, "sysv_host", false)
	if err := ns.RemoveHostSysV(img); err != nil {
		t.Fatal(err)
	}
	before := sysvCount(t)
	for _, step := range []string{fault.RestoreCloned, fault.RestoreRebuild} {
		c := exec.Command(ckptBin, "restore", "-D", img, "-d")
		c.Env = append(os.Environ(), "CKPT_FAULT=panic-at="+step)
		out, err := c.CombinedOutput()
		mustNamePanic(t, "restore", out, err, step)
		reapAdopted()
		if after := sysvCount(t); after != before {
			t.Errorf("a restore that panicked at %s left %d SysV objects, there were %d", step, after, before)
			ns.RemoveHostSysV(img)
		}
	}
}
