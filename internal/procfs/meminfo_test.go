//go:build linux && amd64

package procfs

import "testing"

func TestParseMemAvailable(t *testing.T) {
	good := "MemTotal:       24541312 kB\nMemFree:        23000000 kB\nMemAvailable:   23480412 kB\nBuffers:            1234 kB\n"
	if v, err := ParseMemAvailable([]byte(good)); err != nil || v != 23480412<<10 {
		t.Fatalf("ParseMemAvailable = %d, %v; want %d", v, err, uint64(23480412)<<10)
	}
	for _, bad := range []string{
		"",
		"MemTotal: 1 kB\n",
		"MemAvailable: x kB\n",
		"MemAvailable: 12 MB\n",
		"MemAvailable: 99999999999999999999 kB\n",
		"MemAvailable: 18014398509481984 kB\n",
		"MemAvailable:\n",
	} {
		if v, err := ParseMemAvailable([]byte(bad)); err == nil {
			t.Errorf("ParseMemAvailable(%q) = %d, want an error", bad, v)
		}
	}
}

func FuzzParseMemAvailable(f *testing.F) {
	f.Add([]byte("MemAvailable:   23480412 kB\n"))
	f.Fuzz(func(t *testing.T, data []byte) { _, _ = ParseMemAvailable(data) })
}
