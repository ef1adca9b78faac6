//go:build linux

package bench

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ckpt/ckpt"
	"github.com/ckpt/ckpt/test/testsupport"
)

// leaveRunning is one dump --leave-running of the target, as the task
// saw it.
type leaveRunning struct {
	mode   string        // CKPT_SNAPSHOT: "" (the default) or "off"
	wall   time.Duration // ckpt.Dump
	frozen time.Duration // DumpStats.FrozenFor
	gap    time.Duration // the task's longest heartbeat gap over the dump
	snaps  int           // processes whose pages came from a snapshot
}

// freezeModes are the CKPT_SNAPSHOT values each run measures: the
// default (a copy-on-write snapshot, the tree let go before the pages
// are copied) and off (the tree frozen for the whole dump).
var freezeModes = []string{"", "off"}

// dumpLeaveRunning dumps the running target with LeaveRunning and
// CKPT_SNAPSHOT=mode into a directory of its own, removed afterwards,
// and reads the longest gap its heartbeat thread saw meanwhile.
func dumpLeaveRunning(t *target, dir, mode string) (*leaveRunning, error) {
	images := filepath.Join(dir, "images-R"+mode)
	if err := os.Mkdir(images, 0o700); err != nil {
		return nil, err
	}
	defer os.RemoveAll(images)
	mem, err := os.OpenFile(fmt.Sprintf("/proc/%d/mem", t.pid()), os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer mem.Close()
	// The gap before the dump starts is the thread's own noise: cleared,
	// and a moment given to the heartbeat to go on.
	var word [8]byte
	if _, err := mem.WriteAt(word[:], int64(t.gap)); err != nil {
		return nil, fmt.Errorf("clear the heartbeat gap: %w", err)
	}
	time.Sleep(20 * time.Millisecond)
	old, had := os.LookupEnv("CKPT_SNAPSHOT")
	os.Setenv("CKPT_SNAPSHOT", mode)
	defer func() {
		if had {
			os.Setenv("CKPT_SNAPSHOT", old)
		} else {
			os.Unsetenv("CKPT_SNAPSHOT")
		}
	}()
	// The engine's log says which processes had a snapshot (the dump
	// package's Stats.Snapshots, which DumpStats does not carry).
	var mu sync.Mutex
	snaps := 0
	logf := func(format string, args ...any) {
		if strings.Contains(format, "copy-on-write snapshot in child") {
			mu.Lock()
			snaps++
			mu.Unlock()
		}
	}
	start := time.Now()
	st, err := ckpt.Dump(ckpt.DumpOptions{Pid: t.pid(), ImagesDir: images, LeaveRunning: true, Logf: logf})
	r := &leaveRunning{mode: mode, wall: time.Since(start)}
	if err != nil {
		return nil, fmt.Errorf("ckpt.Dump --leave-running, CKPT_SNAPSHOT=%q: %w", mode, err)
	}
	mu.Lock()
	r.frozen, r.snaps = st.FrozenFor, snaps
	mu.Unlock()
	// The heartbeat notes the gap when it wakes after the freeze.
	time.Sleep(20 * time.Millisecond)
	if _, err := mem.ReadAt(word[:], int64(t.gap)); err != nil {
		return nil, fmt.Errorf("read the heartbeat gap: %w", err)
	}
	r.gap = time.Duration(binary.LittleEndian.Uint64(word[:]))
	if s := testsupport.State(t.pid()); s != 'S' && s != 'R' {
		return nil, fmt.Errorf("target %d is in state %q after dump --leave-running", t.pid(), s)
	}
	if kids := childrenOf(t.pid()); len(kids) != 0 {
		return nil, fmt.Errorf("target %d has children %v after dump --leave-running", t.pid(), kids)
	}
	return r, nil
}

func (r *leaveRunning) name() string {
	if r.mode == "" {
		return "snapshot"
	}
	return "CKPT_SNAPSHOT=" + r.mode
}

// childrenOf lists the children of every thread of pid.
func childrenOf(pid int) []string {
	var kids []string
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	for _, tk := range tasks {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, tk.Name()))
		kids = append(kids, strings.Fields(string(b))...)
	}
	return kids
}
