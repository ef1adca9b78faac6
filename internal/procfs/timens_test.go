package procfs

import "testing"

func TestParseTimensOffsets(t *testing.T) {
	o, err := ParseTimensOffsets([]byte("monotonic      86400         5\nboottime          -3 999999999\n"))
	if err != nil {
		t.Fatal(err)
	}
	if o.Monotonic != 86400*1e9+5 || o.Boottime != -3*1e9+999999999 {
		t.Errorf("got %+v", o)
	}
	if o, err := ParseTimensOffsets([]byte("1 0 0\n7 2 0\n")); err != nil || o.Boottime != 2e9 {
		t.Errorf("numeric clock ids: %+v %v", o, err)
	}
	for _, bad := range []string{"", "monotonic 0 0\n", "monotonic 0 0\nrealtime 0 0\n", "monotonic x 0\nboottime 0 0\n",
		"monotonic 0 1000000000\nboottime 0 0\n", "monotonic 99999999999999999999 0\nboottime 0 0\n", "monotonic 0\nboottime 0 0\n"} {
		if _, err := ParseTimensOffsets([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
