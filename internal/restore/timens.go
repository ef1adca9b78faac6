//go:build linux && amd64

package restore

import (
	"fmt"
	"os"
	"time"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/timens"
	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/internal/procfs"
)

// clockIDs are the clocks a time namespace offsets, as
// /proc/PID/timens_offsets takes them (time_namespaces(7)).
const (
	clockMonotonic = unix.CLOCK_MONOTONIC
	clockBoottime  = unix.CLOCK_BOOTTIME
)

// timeNSOffsets decides whether the tree gets a time namespace of its own,
// and with which offsets. The dumped tree's CLOCK_MONOTONIC and
// CLOCK_BOOTTIME must not go back: after a reboot, or on another machine,
// they are behind the dumped values, and a namespace whose offsets put
// them back there lets the tree go on as if it had only been stopped. On
// the same boot the clocks went on meanwhile, and the tree stays in
// ckpt's time namespace. behind (CKPT_FAULT=clocks-behind=DURATION)
// pretends this machine's clocks are that much further behind, as after a
// reboot.
func timeNSOffsets(c *timens.TimensEntry, behind time.Duration) (*procfs.TimensOffsets, error) {
	if c == nil {
		return nil, nil
	}
	now := func(clk int32) (int64, error) {
		var ts unix.Timespec
		if err := unix.ClockGettime(clk, &ts); err != nil {
			return 0, fmt.Errorf("clock_gettime(%d): %w", clk, err)
		}
		return ts.Nano(), nil
	}
	mono, err := now(clockMonotonic)
	if err != nil {
		return nil, err
	}
	boot, err := now(clockBoottime)
	if err != nil {
		return nil, err
	}
	mono -= int64(behind)
	boot -= int64(behind)
	dumped := func(t *timens.Timespec) int64 { return int64(t.GetTvSec())*1e9 + int64(t.GetTvNsec()) }
	dm, db := dumped(c.GetMonotonic()), dumped(c.GetBoottime())
	if dm <= mono && db <= boot {
		return nil, nil
	}
	// CLOCK_BOOTTIME must stay ahead of CLOCK_MONOTONIC by at least the
	// sleep time this machine has: its offset is the monotonic one plus
	// what the dumped gap between the two has more. Each clock then
	// starts at least at its dumped value.
	offMono := max(0, dm-mono)
	return &procfs.TimensOffsets{Monotonic: offMono, Boottime: offMono + max(0, (db-dm)-(boot-mono))}, nil
}

// writeTimensOffsets sets the offsets of the time namespace that pid made
// for its children; no process may have entered it yet.
func writeTimensOffsets(pid int, o *procfs.TimensOffsets) error {
	line := func(clk int, ns int64) string {
		sec := ns / 1e9
		nsec := ns % 1e9
		if nsec < 0 {
			sec--
			nsec += 1e9
		}
		return fmt.Sprintf("%d %d %d\n", clk, sec, nsec)
	}
	b := line(clockMonotonic, o.Monotonic) + line(clockBoottime, o.Boottime)
	path := fmt.Sprintf("/proc/%d/timens_offsets", pid)
	if err := os.WriteFile(path, []byte(b), 0); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// fmtOffset prints a clock offset with its sign, e.g. +2h0m1.5s.
func fmtOffset(ns int64) string {
	d := time.Duration(ns).Round(time.Millisecond)
	if d >= 0 {
		return "+" + d.String()
	}
	return d.String()
}
