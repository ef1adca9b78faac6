//go:build linux && amd64

package ns

import (
	"strings"
	"testing"

	ipcvar "github.com/checkpoint-restore/go-criu/v8/crit/images/ipc-var"
)

// Every IPC setting goes from its /proc/sys text into the image entry
// and back unchanged; a *_next_id of -1 (the initial value, which cannot
// be written) is left out of the entry, as CRIU leaves it out.
func TestIPCSysctlsRoundTrip(t *testing.T) {
	sample := map[string]string{
		"kernel/sem":                "250\t32000\t32\t128",
		"kernel/msgmax":             "8192",
		"kernel/msgmnb":             "16384",
		"kernel/msgmni":             "32000",
		"kernel/auto_msgmni":        "0",
		"kernel/shmmax":             "18446744073692774399",
		"kernel/shmall":             "18446744073692774399",
		"kernel/shmmni":             "4096",
		"kernel/shm_rmid_forced":    "1",
		"fs/mqueue/queues_max":      "256",
		"fs/mqueue/msg_max":         "10",
		"fs/mqueue/msgsize_max":     "8192",
		"fs/mqueue/msg_default":     "10",
		"fs/mqueue/msgsize_default": "8192",
		"kernel/msg_next_id":        "-1",
		"kernel/sem_next_id":        "12",
		"kernel/shm_next_id":        "777",
	}
	e := &ipcvar.IpcVarEntry{}
	for _, s := range ipcSysctls() {
		v, ok := sample[s.path]
		if !ok {
			t.Fatalf("no sample for %s", s.path)
		}
		if err := s.set(e, v); err != nil {
			t.Fatalf("%s: %v", s.path, err)
		}
	}
	for _, s := range ipcSysctls() {
		if s.path == "kernel/msg_next_id" {
			if has(e, s.path) {
				t.Errorf("msg_next_id -1 kept as %#x", e.GetMsgNextId())
			}
			continue
		}
		if !has(e, s.path) {
			t.Errorf("%s: not in the entry", s.path)
		}
		if got := s.get(e); got != sample[s.path] {
			t.Errorf("%s: %q, want %q", s.path, got, sample[s.path])
		}
	}
	for _, s := range ipcSysctls() {
		if s.path == "kernel/sem" {
			if err := s.set(e, "1 2 3"); err == nil || !strings.Contains(err.Error(), "want 4") {
				t.Errorf("three sem values: %v", err)
			}
		}
		if s.path == "kernel/msgmax" {
			if err := s.set(e, "x"); err == nil {
				t.Error("msgmax x: no error")
			}
		}
	}
}

// A /proc/sysvipc/shm row becomes an ipc_desc_entry: the key signed in
// decimal, the perms in octal with SHM_DEST kept.
func TestSysVDesc(t *testing.T) {
	row := map[string]string{"key": "-1", "shmid": "32769", "perms": "1640", "uid": "1000", "gid": "1001", "cuid": "0", "cgid": "0"}
	e, err := desc(row, "shmid")
	if err != nil {
		t.Fatal(err)
	}
	if e.GetKey() != 0xffffffff || e.GetId() != 32769 || e.GetMode() != 0o1640 || e.GetUid() != 1000 || e.GetGid() != 1001 {
		t.Errorf("entry %v", e)
	}
	row["perms"] = "rw"
	if _, err := desc(row, "shmid"); err == nil {
		t.Error("perms \"rw\" parsed")
	}
}
