//go:build linux && amd64

package task

import "testing"

func TestParseVmLck(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"Name:\tx\nVmPeak:\t  100 kB\nVmLck:\t       8 kB\nVmPin:\t 0 kB\n", 8, true},
		{"VmLck:\t       0 kB\n", 0, true},
		{"VmLck:\t 1048576 kB", 1048576, true},
		{"Name:\tkthread\nThreads:\t1\n", 0, false}, // a kernel thread has no Vm* lines
		{"VmLck:\t 12 MB\n", 0, false},
		{"VmLck:\t x kB\n", 0, false},
	} {
		got, err := parseVmLck([]byte(tc.in))
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseVmLck(%q) = %d, %v; want %d, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}
