package procfs

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseStatReal(t *testing.T) {
	tests := []struct {
		file string
		want Stat
	}{
		{
			// comm set with prctl(PR_SET_NAME, "a) (b\nc\\d").
			file: "stat_weird_comm.txt",
			want: Stat{
				Pid: 4193, Comm: "a) (b\nc\\d", State: 'R', PPid: 4190, Pgrp: 4190, Session: 2153, Tpgid: -1,
				Flags: 4194304, NumThreads: 1, StartTime: 41574,
				StartCode: 94152154750976, EndCode: 94152154751317, StartStack: 140729299126064,
				StartData: 94152154762672, EndData: 94152154763288, StartBrk: 94152430768128,
				ArgStart: 140729299130385, ArgEnd: 140729299130433,
				EnvStart: 140729299130433, EnvEnd: 140729299132367, ExitSignal: 17,
			},
		},
		{
			file: "stat_zombie.txt",
			want: Stat{
				Pid: 4336, Comm: "sleep", State: 'Z', PPid: 4335, Pgrp: 4327, Session: 2153, Tpgid: -1,
				Flags: 4227084, NumThreads: 1, StartTime: 41941, ExitSignal: 17,
			},
		},
		{
			file: "stat_kthread.txt",
			want: Stat{Pid: 2, Comm: "kthreadd", State: 'S', Tpgid: -1, Flags: 2129984, NumThreads: 1, StartTime: 19},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := ParseStat(readTestdata(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, tt.want) {
				t.Fatalf("got  %+v\nwant %+v", *got, tt.want)
			}
		})
	}
}

// statLine builds a stat line for pid 42 with the given comm and the
// fields from 3 on; field n (1-based, n >= 3) is tail[n-3].
func statLine(comm string, tail []string) string {
	return "42 (" + comm + ") " + strings.Join(tail, " ") + "\n"
}

func statTail() []string {
	f := make([]string, 50) // fields 3..52
	for i := range f {
		f[i] = "0"
	}
	f[0] = "S"
	f[4] = "-1"  // tty_nr (7)
	f[35] = "17" // exit_signal (38)
	return f
}

func TestParseStatCrafted(t *testing.T) {
	tests := []struct {
		name, comm string
		edit       func(f []string) []string
		check      func(t *testing.T, s *Stat)
	}{
		{"paren space paren", ") (", nil, func(t *testing.T, s *Stat) {
			if s.Comm != ") (" || s.State != 'S' || s.Pid != 42 {
				t.Errorf("%+v", s)
			}
		}},
		{"fake fields in comm", "x) R 1 2 3 (y", nil, func(t *testing.T, s *Stat) {
			if s.Comm != "x) R 1 2 3 (y" || s.PPid != 0 {
				t.Errorf("%+v", s)
			}
		}},
		{"empty comm", "", nil, func(t *testing.T, s *Stat) {
			if s.Comm != "" {
				t.Errorf("%+v", s)
			}
		}},
		{"only parens", "))((", nil, func(t *testing.T, s *Stat) {
			if s.Comm != "))((" {
				t.Errorf("%+v", s)
			}
		}},
		{"negative tty and exit signal", "a", func(f []string) []string {
			f[35] = "-1"
			return f
		}, func(t *testing.T, s *Stat) {
			if s.TtyNr != -1 || s.ExitSignal != -1 {
				t.Errorf("%+v", s)
			}
		}},
		{"only 51 fields", "a", func(f []string) []string { return f[:49] }, func(t *testing.T, s *Stat) {}},
		{"extra future fields", "a", func(f []string) []string { return append(f, "5", "6") }, func(t *testing.T, s *Stat) {}},
		{"max addresses", "a", func(f []string) []string {
			f[48] = "18446744073709551615" // env_end (51)
			return f
		}, func(t *testing.T, s *Stat) {
			if s.EnvEnd != ^uint64(0) {
				t.Errorf("%+v", s)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := statTail()
			if tt.edit != nil {
				f = tt.edit(f)
			}
			s, err := ParseStat([]byte(statLine(tt.comm, f)))
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, s)
		})
	}
}

func TestParseStatErrors(t *testing.T) {
	full := statTail()
	tests := []struct{ name, in, sub string }{
		{"empty", "", "no \"(comm)\""},
		{"no parens", "42 foo S 1\n", "no \"(comm)\""},
		{"reversed parens", "42 )foo( S\n", "no \"(comm)\""},
		{"bad pid", "x" + statLine("a", full), "field 1 (pid)"},
		{"negative pid", "-" + statLine("a", full), "not positive"},
		{"no space before paren", "42(a) " + strings.Join(full, " "), "space before"},
		{"no space after comm", "42 (a)" + strings.Join(full, " "), "space after"},
		{"missing fields", statLine("a", full[:48]), "50 fields, want at least 51"},
		{"truncated", "42 (a) S 1 2 3", "fields, want at least 51"},
		{"bad state", statLine("a", append([]string{"SS"}, full[1:]...)), "field 3 (state)"},
		{"bad ppid", statLine("a", append([]string{"S", "x"}, full[2:]...)), "field 4 (ppid)"},
		{"double space", strings.Replace(statLine("a", full), " 0 0", " 0  0", 1), "stat field"},
		{"negative address", statLine("a", func() []string {
			f := statTail()
			f[23] = "-5" // startcode (26)
			return f
		}()), "field 26 (startcode)"},
		{"overflow", statLine("a", func() []string {
			f := statTail()
			f[19] = "18446744073709551616" // starttime (22)
			return f
		}()), "field 22 (starttime)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseStat([]byte(tt.in))
			wantErr(t, err, tt.sub)
		})
	}
}
