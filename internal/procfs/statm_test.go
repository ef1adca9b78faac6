//go:build linux

package procfs

import (
	"os"
	"testing"
)

func TestParseStatmResident(t *testing.T) {
	n, err := ParseStatmResident([]byte("264278 262210 262 1 0 262347 0\n"))
	if err != nil || n != 262210 {
		t.Fatalf("got %d, %v", n, err)
	}
	for _, bad := range []string{"", "12", "12 x 3", "12 -1 3"} {
		if _, err := ParseStatmResident([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	if n, err := ReadStatmResident(os.Getpid()); err != nil || n == 0 {
		t.Errorf("own statm: %d, %v", n, err)
	}
}

func FuzzParseStatmResident(f *testing.F) {
	f.Add([]byte("1 2 3 4 5 6 7"))
	f.Fuzz(func(t *testing.T, b []byte) { _, _ = ParseStatmResident(b) })
}
