//go:build linux && amd64

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestMcastIndexUnknown: where the BPF iterator that reads a UDP
// socket's IP_MULTICAST_IF interface index cannot run (forced with
// CKPT_FAULT=no-sockbpf, as on a kernel without BTF), a socket that uses
// multicast is refused by name, and the program goes on untouched and
// passes its own checks.
func TestMcastIndexUnknown(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	work := t.TempDir()
	cmd, logPath := startProg(t, "udp_mcast", work, false)
	pid := cmd.Process.Pid
	alive := true
	defer func() {
		if alive {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()
	// Stable and settled snapshots: a task in sigwaitinfo shows the
	// signals it waits for unblocked, and one the dump interrupted shows
	// them blocked until it is back in the call.
	before, err := stableSnapshot(pid)
	if err != nil {
		t.Fatal(err)
	}
	c := exec.Command(ckptBin, "dump", "-t", fmt.Sprint(pid), "-D", filepath.Join(work, "img"))
	c.Env = append(os.Environ(), "CKPT_FAULT=no-sockbpf")
	out, err := c.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "a UDP socket (IPv4)") || !strings.Contains(string(out), "IP_MULTICAST_IF") || !strings.Contains(string(out), "no-sockbpf") {
		t.Fatalf("dump without BPF iterators: %v: %s", err, out)
	}
	t.Logf("refused: %s", out)
	_, d, err := settledSnapshot(pid, before, false)
	if err != nil {
		t.Fatalf("task after the refused dump: %v", err)
	}
	if d != "" {
		t.Errorf("the refused dump changed the task: %s", d)
	}
	r := &Run{}
	if err := r.finish(pid, logPath, &alive); err != nil {
		t.Errorf("task after the refused dump: %v", err)
	}
	_ = cmd.Wait()
}
