package procfs

import "testing"

func TestParsePersonality(t *testing.T) {
	tests := []struct {
		in   string
		want uint32
	}{
		{"00000000\n", 0},
		{"00400000\n", 0x400000}, // READ_IMPLIES_EXEC
		{"00000008\n", 8},        // PER_LINUX32
		{"0040000\n", 0x40000},   // ADDR_NO_RANDOMIZE, no zero padding
		{"ffffffff", 0xffffffff},
	}
	for _, tt := range tests {
		got, err := ParsePersonality([]byte(tt.in))
		if err != nil || got != tt.want {
			t.Errorf("ParsePersonality(%q) = %#x, %v; want %#x", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "\n", "xyz\n", "100000000\n", "-1\n", "0 0\n", "00000000\n\n"} {
		if _, err := ParsePersonality([]byte(bad)); err == nil {
			t.Errorf("ParsePersonality(%q) succeeded", bad)
		}
	}
}
