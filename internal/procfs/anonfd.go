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
