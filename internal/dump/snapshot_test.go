//go:build linux && amd64

package dump

import "testing"

func TestSnapshotEnv(t *testing.T) {
	for v, want := range map[string]snapshotMode{"": snapshotAuto, "auto": snapshotAuto, "on": snapshotAuto, "off": snapshotOff, "always": snapshotAlways} {
		t.Setenv("CKPT_SNAPSHOT", v)
		if got, err := snapshotEnv(); err != nil || got != want {
			t.Errorf("CKPT_SNAPSHOT=%q: %v, %v; want %v", v, got, err, want)
		}
	}
	t.Setenv("CKPT_SNAPSHOT", "yes")
	if _, err := snapshotEnv(); err == nil {
		t.Error("CKPT_SNAPSHOT=yes accepted")
	}
}

func TestSnapshotWanted(t *testing.T) {
	big := &scanArea{anon: snapshotMin}
	small := &scanArea{anon: snapshotMin / 2}
	frozen := &scanArea{anon: 8 * snapshotMin, frozen: true}
	for _, tc := range []struct {
		name  string
		opts  Options
		areas []*scanArea
		want  bool
	}{
		{"leave running, 1 MiB", Options{LeaveRunning: true}, []*scanArea{big}, true},
		{"leave running, two halves", Options{LeaveRunning: true}, []*scanArea{small, small}, true},
		{"leave running, too little", Options{LeaveRunning: true}, []*scanArea{small, frozen}, false},
		{"killed", Options{}, []*scanArea{big}, false},
		{"off", Options{LeaveRunning: true, snapshot: snapshotOff}, []*scanArea{big}, false},
		{"always, small", Options{LeaveRunning: true, snapshot: snapshotAlways}, []*scanArea{small}, true},
		{"always, killed", Options{snapshot: snapshotAlways}, []*scanArea{small}, true},
		{"always, only frozen areas", Options{snapshot: snapshotAlways}, []*scanArea{frozen}, false},
	} {
		if got := tc.opts.snapshotWanted(tc.areas); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
