package procfs

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestParseTimers(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "timers.txt"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseTimers(b)
	if err != nil {
		t.Fatal(err)
	}
	want := []PosixTimer{
		{ID: 101, Signo: 34, SigevValue: 0x1234, Notify: 1, NotifyPid: 32327, ClockID: 1},
		{ID: 4, Signo: 14, SigevValue: 0xf7e1a2c0, Notify: 2 | 4, NotifyPid: 32329, ClockID: 7},
		{ID: 3, Signo: 35, Notify: 4, NotifyPid: 32327, ClockID: -6},
		{ID: 0, Signo: 34, SigevValue: 0x7ffd1234abcd, Notify: 0, NotifyPid: 32327, ClockID: 0},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseTimers:\n got %+v\nwant %+v", got, want)
	}
	var all string
	for _, tm := range got {
		all += tm.Format()
	}
	if all != string(b) {
		t.Errorf("Format does not give back the file:\n%s", all)
	}
	if ts, err := ParseTimers(nil); err != nil || ts != nil {
		t.Errorf("empty file: %v, %v", ts, err)
	}
	for _, bad := range []string{
		"ID: 1\n",
		"ID: 1\nsignal: 34/0\nnotify: signal/pid.1\n",
		"ID: -1\nsignal: 34/0\nnotify: signal/pid.1\nClockID: 0\n",
		"ID: 1\nsignal: 34\nnotify: signal/pid.1\nClockID: 0\n",
		"ID: 1\nsignal: 34/0\nnotify: later/pid.1\nClockID: 0\n",
		"ID: 1\nsignal: 34/0\nnotify: signal/pgid.1\nClockID: 0\n",
		"ID: 1\nsignal: 34/0\nnotify: signal/pid\nClockID: 0\n",
		"ID: 1\nsignal: 34/0\nClockID: 0\nnotify: signal/pid.1\n",
		"ID: 1\nsignal: 34/xyz\nnotify: signal/pid.1\nClockID: 0\n",
	} {
		if _, err := ParseTimers([]byte(bad)); err == nil {
			t.Errorf("ParseTimers(%q) succeeded", bad)
		}
	}
}
