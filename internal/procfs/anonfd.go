//go:build linux && amd64

package procfs

import (
	"fmt"
	"strconv"
	"strings"
)

// Eventfd is what /proc/PID/fdinfo shows of an eventfd (fs/eventfd.c,
// eventfd_show_fdinfo): the counter in hex, and since Linux 6.4 whether
// it is a semaphore.
type Eventfd struct {
	Count     uint64
	Semaphore bool
	// SemaphoreKnown is false before Linux 6.4, whose fdinfo does not
	// say whether the eventfd is a semaphore.
	SemaphoreKnown bool
}

// ParseEventfd reads the eventfd lines of a parsed fdinfo.
func ParseEventfd(fi *FdInfo) (Eventfd, error) {
	var e Eventfd
	c, ok := fi.Extra["eventfd-count"]
	if !ok {
		return e, fmt.Errorf("fdinfo: no eventfd-count line")
	}
	v, err := strconv.ParseUint(strings.TrimSpace(c), 16, 64)
	if err != nil {
		return e, fmt.Errorf("fdinfo: eventfd-count %q: %w", c, err)
	}
	e.Count = v
	if s, ok := fi.Extra["eventfd-semaphore"]; ok {
		e.Semaphore = strings.TrimSpace(s) == "1"
		e.SemaphoreKnown = true
	}
	return e, nil
}

// EpollTarget is one file an epoll instance watches, from a "tfd:" line
// of its fdinfo (fs/eventpoll.c, ep_show_fdinfo).
type EpollTarget struct {
	Fd     int
	Events uint32
	Data   uint64
	Pos    int64
	Ino    uint64
	Sdev   uint64
}

// ParseEpollTargets reads the "tfd:" lines of a parsed epoll fdinfo.
func ParseEpollTargets(fi *FdInfo) ([]EpollTarget, error) {
	raw, ok := fi.Extra["tfd"]
	if !ok {
		return nil, nil
	}
	var out []EpollTarget
	for _, l := range strings.Split(raw, "\n") {
		var t EpollTarget
		if _, err := fmt.Sscanf(strings.TrimSpace(l), "%d events: %x data: %x pos:%d ino:%x sdev:%x",
			&t.Fd, &t.Events, &t.Data, &t.Pos, &t.Ino, &t.Sdev); err != nil {
			return nil, fmt.Errorf("fdinfo: tfd line %q: %w", clip(l), err)
		}
		out = append(out, t)
	}
	return out, nil
}

// Timerfd is what /proc/PID/fdinfo shows of a timerfd (fs/timerfd.c,
// timerfd_show): the clock, expirations not yet read, the flags of the
// last timerfd_settime, and the time left and interval.
type Timerfd struct {
	ClockID               int
	Ticks                 uint64
	SettimeFlags          uint32
	ValueSec, ValueNsec   uint64
	IntervalSec, IntvNsec uint64
}

// ParseTimerfd reads the timerfd lines of a parsed fdinfo.
func ParseTimerfd(fi *FdInfo) (Timerfd, error) {
	var t Timerfd
	get := func(k string) (string, error) {
		v, ok := fi.Extra[k]
		if !ok {
			return "", fmt.Errorf("fdinfo: no %s line", k)
		}
		return strings.TrimSpace(v), nil
	}
	v, err := get("clockid")
	if err == nil {
		t.ClockID, err = strconv.Atoi(v)
	}
	if err != nil {
		return t, fmt.Errorf("timerfd clockid: %w", err)
	}
	if v, err = get("ticks"); err == nil {
		t.Ticks, err = strconv.ParseUint(v, 10, 64)
	}
	if err != nil {
		return t, fmt.Errorf("timerfd ticks: %w", err)
	}
	if v, err = get("settime flags"); err == nil {
		var f uint64
		f, err = strconv.ParseUint(v, 8, 32)
		t.SettimeFlags = uint32(f)
	}
	if err != nil {
		return t, fmt.Errorf("timerfd settime flags: %w", err)
	}
	if v, err = get("it_value"); err == nil {
		_, err = fmt.Sscanf(v, "(%d, %d)", &t.ValueSec, &t.ValueNsec)
	}
	if err != nil {
		return t, fmt.Errorf("timerfd it_value: %w", err)
	}
	if v, err = get("it_interval"); err == nil {
		_, err = fmt.Sscanf(v, "(%d, %d)", &t.IntervalSec, &t.IntvNsec)
	}
	if err != nil {
		return t, fmt.Errorf("timerfd it_interval: %w", err)
	}
	return t, nil
}

// ParseSignalfd reads the mask of a signalfd (fs/signalfd.c,
// signalfd_show_fdinfo: "sigmask:" in hex).
func ParseSignalfd(fi *FdInfo) (uint64, error) {
	v, ok := fi.Extra["sigmask"]
	if !ok {
		return 0, fmt.Errorf("fdinfo: no sigmask line")
	}
	m, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
	if err != nil {
		return 0, fmt.Errorf("signalfd sigmask %q: %w", v, err)
	}
	return m, nil
}
