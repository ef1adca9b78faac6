package fd

import (
	"testing"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/timerfd"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/uapi"
)

// Interval-only timers (fired, not read since: fdinfo shows no time left)
// and value+interval timers come back armed; only a timer with neither
// stays disarmed.
func TestTimerfdArm(t *testing.T) {
	ts := func(s, ns uint64) uapi.Timespec { return uapi.Timespec{Sec: int64(s), Nsec: int64(ns)} }
	for _, c := range []struct {
		vs, vns, is, ins uint64
		want             uapi.Itimerspec
		armed            bool
	}{
		{0, 0, 4, 0, uapi.Itimerspec{Interval: ts(4, 0), Value: ts(4, 0)}, true},
		{0, 0, 0, 500, uapi.Itimerspec{Interval: ts(0, 500), Value: ts(0, 500)}, true},
		{1, 2, 4, 0, uapi.Itimerspec{Interval: ts(4, 0), Value: ts(1, 2)}, true},
		{0, 7, 0, 0, uapi.Itimerspec{Value: ts(0, 7)}, true},
		{0, 0, 0, 0, uapi.Itimerspec{}, false},
	} {
		e := &timerfd.TimerfdEntry{Vsec: proto.Uint64(c.vs), Vnsec: proto.Uint64(c.vns), Isec: proto.Uint64(c.is), Insec: proto.Uint64(c.ins)}
		got, armed := armAs(e)
		if armed != c.armed || (armed && got != c.want) {
			t.Errorf("value %d.%09d interval %d.%09d: armed %v with %+v, want %v with %+v", c.vs, c.vns, c.is, c.ins, armed, got, c.armed, c.want)
		}
	}
}

// A fired, unread periodic timer is written with one interval left, so
// that CRIU, which arms a timerfd with the image's values, keeps it armed.
func TestTimerfdLeftInImage(t *testing.T) {
	e := &timerfd.TimerfdEntry{Vsec: proto.Uint64(0), Vnsec: proto.Uint64(0), Isec: proto.Uint64(4), Insec: proto.Uint64(5)}
	leftInImage(e)
	if e.GetVsec() != 4 || e.GetVnsec() != 5 {
		t.Errorf("value %d.%09d, want the interval 4.000000005", e.GetVsec(), e.GetVnsec())
	}
	e = &timerfd.TimerfdEntry{Vsec: proto.Uint64(0), Vnsec: proto.Uint64(0), Isec: proto.Uint64(0), Insec: proto.Uint64(0)}
	leftInImage(e)
	if e.GetVsec() != 0 || e.GetVnsec() != 0 {
		t.Errorf("a disarmed timer got value %d.%09d", e.GetVsec(), e.GetVnsec())
	}
}
