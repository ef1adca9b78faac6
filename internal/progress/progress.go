//go:build linux

// Package progress counts the bytes of memory a dump or a restore has
// copied and shows them on a terminal as one line that updates itself
// ("dump: 412 MiB of 1.0 GiB, 830 MiB/s") and is erased at the end.
// The dump and restore paths only count (Meter); the CLI decides whether
// a line is shown (Show), and shows none when stderr is not a terminal,
// so that logs and pipes get nothing extra.
package progress

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Meter counts bytes done of a total. Its methods are safe on a nil
// Meter (they do nothing) and from several goroutines.
type Meter struct {
	mu          sync.Mutex
	done, total uint64
	// probe, while set, says how many bytes of the step under way are
	// done (for a copy that runs where the counter cannot be told, as
	// the growth of the file it writes).
	probe  func() uint64
	commit bool // the probe's last value counts as done at its end
}

// AddTotal adds n bytes to the total.
func (m *Meter) AddTotal(n uint64) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.total += n
	m.mu.Unlock()
}

// Add notes n more bytes done.
func (m *Meter) Add(n uint64) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.done += n
	m.mu.Unlock()
}

// Track counts probe() as done while a step runs; the returned end
// counts its last value for good and stops asking.
func (m *Meter) Track(probe func() uint64) (end func()) {
	if m == nil {
		return func() {}
	}
	return m.watch(probe, true)
}

// Watch shows probe() as done while a step runs, which counts its bytes
// with Add itself once they are known for sure (probe then no longer
// counts them); the returned end stops asking and counts nothing.
func (m *Meter) Watch(probe func() uint64) (end func()) {
	if m == nil {
		return func() {}
	}
	return m.watch(probe, false)
}

func (m *Meter) watch(probe func() uint64, commit bool) (end func()) {
	m.mu.Lock()
	m.probe, m.commit = probe, commit
	m.mu.Unlock()
	return func() {
		m.mu.Lock()
		if m.probe != nil && m.commit {
			m.done += m.probe()
		}
		m.probe = nil
		m.mu.Unlock()
	}
}

// Snapshot returns the bytes done and the total; done is never above
// the total.
func (m *Meter) Snapshot() (done, total uint64) {
	if m == nil {
		return 0, 0
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	done = m.done
	if m.probe != nil {
		done += m.probe()
	}
	return min(done, m.total), m.total
}

// Size formats n bytes with a binary unit: "512 KiB", "412 MiB",
// "1.0 GiB" (one decimal below 10 of a unit, none above).
func Size(n uint64) string {
	units := []string{"KiB", "MiB", "GiB", "TiB"}
	if n < 1<<10 {
		return fmt.Sprintf("%d B", n)
	}
	v, u := float64(n)/(1<<10), 0
	for v >= 1<<10 && u < len(units)-1 {
		v /= 1 << 10
		u++
	}
	if v < 10 {
		return fmt.Sprintf("%.1f %s", v, units[u])
	}
	return fmt.Sprintf("%.0f %s", v, units[u])
}

// Format is the text of the line: what is done of the total, and the
// rate in bytes per second (left out when not known yet, rate <= 0).
func Format(verb string, done, total uint64, rate float64) string {
	s := fmt.Sprintf("%s: %s of %s", verb, Size(done), Size(total))
	if rate > 0 {
		s += fmt.Sprintf(", %s/s", Size(uint64(rate)))
	}
	return s
}

// IsTerminal reports whether f is a terminal (TCGETS works on it).
func IsTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

const (
	// Interval is how often the line is redrawn: a few times a second.
	Interval = 250 * time.Millisecond
	// Delay is how long a copy runs before the line first shows: a
	// short dump shows none.
	Delay = 500 * time.Millisecond
)

// Show draws m's line on f every Interval, from Delay on, while the
// copy runs, if f is a terminal; stop erases the line (if one was
// drawn) and returns once nothing more is written. When f is not a
// terminal, Show starts nothing and writes nothing.
func Show(f *os.File, verb string, m *Meter) (stop func()) {
	if m == nil || !IsTerminal(f) {
		return func() {}
	}
	return show(f, verb, m, Delay, Interval)
}

// show is Show on any writer, with its timing as arguments (tests).
func show(w io.Writer, verb string, m *Meter, delay, every time.Duration) (stop func()) {
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		start := time.Now()
		drawn := false
		// The rate counts from the first bytes seen: the steps before
		// the copy (freezing, reading /proc) are not part of it.
		var t0 time.Time
		var d0 uint64
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-quit:
				if drawn {
					io.WriteString(w, "\r\x1b[K")
				}
				return
			case now := <-t.C:
				if now.Sub(start) < delay {
					continue
				}
				d, total := m.Snapshot()
				if total == 0 {
					continue
				}
				var rate float64
				if t0.IsZero() {
					if d > 0 {
						t0, d0 = now, d
					}
				} else if dt := now.Sub(t0).Seconds(); dt > 0 {
					rate = float64(d-d0) / dt
				}
				// \r back to the start of the line, \x1b[K (EL) erases
				// what a longer line before left.
				io.WriteString(w, "\r"+Format(verb, d, total, rate)+"\x1b[K")
				drawn = true
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(quit)
			<-done
		})
	}
}
