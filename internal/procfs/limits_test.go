package procfs

import (
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseLimitsReal(t *testing.T) {
	l, err := ParseLimits(readTestdata(t, "limits_python.txt"))
	if err != nil {
		t.Fatal(err)
	}
	inf := RlimInfinity
	want := map[int]Rlimit{
		unix.RLIMIT_CPU:        {inf, inf},
		unix.RLIMIT_FSIZE:      {inf, inf},
		unix.RLIMIT_DATA:       {inf, inf},
		unix.RLIMIT_STACK:      {8388608, inf},
		unix.RLIMIT_CORE:       {0, inf},
		unix.RLIMIT_RSS:        {inf, inf},
		unix.RLIMIT_NPROC:      {96364, 96364},
		unix.RLIMIT_NOFILE:     {20000, 20000},
		unix.RLIMIT_MEMLOCK:    {8388608, 8388608},
		unix.RLIMIT_AS:         {inf, inf},
		unix.RLIMIT_LOCKS:      {inf, inf},
		unix.RLIMIT_SIGPENDING: {96364, 96364},
		unix.RLIMIT_MSGQUEUE:   {819200, 819200},
		unix.RLIMIT_NICE:       {0, 0},
		unix.RLIMIT_RTPRIO:     {0, 0},
		unix.RLIMIT_RTTIME:     {inf, inf},
	}
	if len(l) != len(want) {
		t.Fatalf("got %d limits, want %d", len(l), len(want))
	}
	for k, v := range want {
		if l[k] != v {
			t.Errorf("resource %d: got %+v, want %+v", k, l[k], v)
		}
	}
}

// limitsSample returns the real sample with line n (1-based) replaced by
// repl, or removed if repl is "".
func limitsSample(t *testing.T, n int, repl string) string {
	lines := strings.SplitAfter(string(readTestdata(t, "limits_python.txt")), "\n")
	if repl == "" {
		lines = append(lines[:n-1], lines[n:]...)
	} else {
		lines[n-1] = repl
	}
	return strings.Join(lines, "")
}

func TestParseLimitsVariants(t *testing.T) {
	// Column widths do not matter and the last line may lack its newline.
	in := "Limit Soft Limit Hard Limit Units\n"
	for _, r := range limitRows {
		in += r.name + "\t7 unlimited\n"
	}
	in = strings.TrimSuffix(in, "\n")
	l, err := ParseLimits([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range limitRows {
		if l[r.res] != (Rlimit{7, RlimInfinity}) {
			t.Errorf("%s: %+v", r.name, l[r.res])
		}
	}
}

func TestParseLimitsErrors(t *testing.T) {
	tests := []struct{ name, in, sub string }{
		{"empty", "", "empty"},
		{"no header", limitsSample(t, 1, ""), "line 1: want header"},
		{"missing row", limitsSample(t, 9, ""), "missing \"Max open files\""},
		{"unknown row", limitsSample(t, 9, "Max open fiels            20000                20000                files     \n"), "line 9: unknown limit \"Max open fiels\""},
		{"duplicate row", limitsSample(t, 9, "Max processes             1                    1                    processes \n"), "line 9: duplicate"},
		{"bad soft", limitsSample(t, 5, "Max stack size            8M                   unlimited            bytes     \n"), "line 5"},
		{"bad hard", limitsSample(t, 5, "Max stack size            8                    -1                   bytes     \n"), "line 5"},
		{"one value", limitsSample(t, 5, "Max stack size            8                    bytes     \n"), "line 5"},
		{"too short", limitsSample(t, 5, "x y\n"), "line 5: too few fields"},
		{"overflow", limitsSample(t, 5, "Max stack size            18446744073709551616 unlimited bytes\n"), "Max stack size soft"},
		{"blank line", limitsSample(t, 5, "\n"), "line 5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseLimits([]byte(tt.in))
			wantErr(t, err, tt.sub)
		})
	}
}
