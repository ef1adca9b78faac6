//go:build linux && amd64

package dump

import (
	"errors"
	"fmt"
	"os"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/timens"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/ckerr"
	"github.com/ckpt/ckpt/internal/procfs"
)

// clocks returns CLOCK_MONOTONIC and CLOCK_BOOTTIME as the tree sees
// them: ckpt's own clocks plus the offsets of the tree's time namespace.
// Every process of the tree must be in the root's time namespace and give
// its children that one too; the restore brings back one namespace.
func (tr *tree) clocks() (*timens.TimensEntry, error) {
	root := tr.tasks[0]
	rootNS, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/time", root.pid))
	if errors.Is(err, os.ErrNotExist) {
		rootNS = "" // a kernel without time namespaces
	} else if err != nil {
		return nil, fmt.Errorf("task %d: time namespace: %w", root.pid, err)
	}
	if rootNS != "" {
		for _, t := range tr.tasks {
			if t.zombie {
				continue
			}
			own, err1 := os.Readlink(fmt.Sprintf("/proc/%d/ns/time", t.pid))
			kids, err2 := os.Readlink(fmt.Sprintf("/proc/%d/ns/time_for_children", t.pid))
			if err := errors.Join(err1, err2); err != nil {
				return nil, fmt.Errorf("task %d: time namespace: %w", t.pid, err)
			}
			if own != rootNS {
				return nil, ckerr.Unsupported(t.pid, fmt.Sprintf("the time namespace of task %d", t.pid), fmt.Sprintf("it differs from that of its tree's root %d: nested time namespaces are not supported yet", root.pid))
			}
			if kids != own {
				return nil, ckerr.Unsupported(t.pid, fmt.Sprintf("the time namespace task %d made for its children (unshare CLONE_NEWTIME)", t.pid), "not supported yet")
			}
		}
	}
	var off procfs.TimensOffsets
	if self, _ := os.Readlink("/proc/self/ns/time"); rootNS != "" && rootNS != self {
		if off, err = procfs.ReadTimensOffsets(root.pid); err != nil {
			return nil, err
		}
	}
	now := func(clk int32, offset int64) (*timens.Timespec, error) {
		var ts unix.Timespec
		if err := unix.ClockGettime(clk, &ts); err != nil {
			return nil, fmt.Errorf("clock_gettime(%d): %w", clk, err)
		}
		ns := ts.Nano() + offset
		return &timens.Timespec{TvSec: proto.Uint64(uint64(ns / 1e9)), TvNsec: proto.Uint64(uint64(ns % 1e9))}, nil
	}
	mono, err := now(unix.CLOCK_MONOTONIC, off.Monotonic)
	if err != nil {
		return nil, err
	}
	boot, err := now(unix.CLOCK_BOOTTIME, off.Boottime)
	if err != nil {
		return nil, err
	}
	return &timens.TimensEntry{Monotonic: mono, Boottime: boot}, nil
}
