package procfs

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseStatusReal(t *testing.T) {
	tests := []struct {
		file string
		want Status
	}{
		{
			file: "status_python.txt",
			want: Status{
				Name: "a) (b\nc\\d", Umask: 0o22, HasUmask: true, State: "R (running)",
				Tgid: 4193, Pid: 4193, PPid: 4190, Groups: []uint32{}, NSpid: []int{4193}, NSpgid: []int{4190}, NSsid: []int{2153},
				SigQ: "0/96364", SigIgn: 0x1001000, SigCgt: 0x2,
				CapPrm: 0x1fffeffffff, CapEff: 0x1fffeffffff, CapBnd: 0x1fffeffffff,
				Threads: 1,
			},
		},
		{
			file: "status_zombie.txt",
			want: Status{
				Name: "sleep", State: "Z (zombie)",
				Tgid: 4336, Pid: 4336, PPid: 4335, Groups: []uint32{}, NSpid: []int{4336}, NSpgid: []int{4327}, NSsid: []int{2153},
				SigQ: "1/96364", SigIgn: 0x6,
				CapPrm: 0x1fffeffffff, CapEff: 0x1fffeffffff, CapBnd: 0x1fffeffffff,
				Threads: 1,
			},
		},
		{
			file: "status_kthread.txt",
			want: Status{
				Name: "kthreadd", Umask: 0o22, HasUmask: true, State: "S (sleeping)",
				Tgid: 2, Pid: 2, PPid: 0, Groups: []uint32{}, NSpid: []int{2}, NSpgid: []int{0}, NSsid: []int{0},
				SigQ: "1/96364", SigIgn: 0xffffffffffffffff,
				CapPrm: 0x1ffffffffff, CapEff: 0x1ffffffffff, CapBnd: 0x1ffffffffff,
				Threads: 1,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := ParseStatus(readTestdata(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, tt.want) {
				t.Fatalf("got  %+v\nwant %+v", *got, tt.want)
			}
		})
	}
}

// statusSample is a crafted status with groups, nested PID namespaces,
// seccomp, no_new_privs and distinct IDs.
const statusSample = "Name:\t my prog \n" +
	"Umask:\t0077\n" +
	"State:\tt (tracing stop)\n" +
	"Tgid:\t100\n" +
	"Ngid:\t0\n" +
	"Pid:\t101\n" +
	"PPid:\t1\n" +
	"TracerPid:\t55\n" +
	"Uid:\t1000\t1001\t1002\t1003\n" +
	"Gid:\t2000\t2001\t2002\t2003\n" +
	"FDSize:\t64\n" +
	"Groups:\t4 24 27 4294967294 \n" +
	"NStgid:\t100\t7\t1\n" +
	"NSpid:\t101\t8\t2\n" +
	"Threads:\t3\n" +
	"SigQ:\t2/15000\n" +
	"SigPnd:\t0000000000000100\n" +
	"ShdPnd:\t0000000000004000\n" +
	"SigBlk:\tfffffffe7ffbfeff\n" +
	"SigIgn:\t0000000000001000\n" +
	"SigCgt:\t0000000180000002\n" +
	"CapInh:\t0000000000000000\n" +
	"CapPrm:\t00000000a80425fb\n" +
	"CapEff:\t00000000a80425fb\n" +
	"CapBnd:\t00000000a80425fb\n" +
	"CapAmb:\t0000000000000400\n" +
	"NoNewPrivs:\t1\n" +
	"Seccomp:\t2\n" +
	"Seccomp_filters:\t1\n"

func TestParseStatusCrafted(t *testing.T) {
	got, err := ParseStatus([]byte(statusSample))
	if err != nil {
		t.Fatal(err)
	}
	want := Status{
		Name: " my prog ", Umask: 0o77, HasUmask: true, State: "t (tracing stop)",
		Tgid: 100, Pid: 101, PPid: 1, TracerPid: 55,
		Uid: [4]uint32{1000, 1001, 1002, 1003}, Gid: [4]uint32{2000, 2001, 2002, 2003},
		Groups: []uint32{4, 24, 27, 4294967294}, NSpid: []int{101, 8, 2},
		SigQ: "2/15000", SigPnd: 0x100, ShdPnd: 0x4000, SigBlk: 0xfffffffe7ffbfeff, SigIgn: 0x1000, SigCgt: 0x180000002,
		CapPrm: 0xa80425fb, CapEff: 0xa80425fb, CapBnd: 0xa80425fb, CapAmb: 0x400,
		NoNewPrivs: true, Seccomp: 2, Threads: 3,
	}
	if !reflect.DeepEqual(*got, want) {
		t.Fatalf("got  %+v\nwant %+v", *got, want)
	}
}

func TestParseStatusNoTrailingNewline(t *testing.T) {
	s, err := ParseStatus([]byte(strings.TrimSuffix(statusSample, "\n")))
	if err != nil || s.Pid != 101 {
		t.Fatalf("got %+v, %v", s, err)
	}
}

func TestParseStatusErrors(t *testing.T) {
	replace := func(old, new string) string {
		if !strings.Contains(statusSample, old) {
			panic("sample lacks " + old)
		}
		return strings.Replace(statusSample, old, new, 1)
	}
	tests := []struct{ name, in, sub string }{
		{"empty", "", "missing \"Name\""},
		{"missing pid", replace("Pid:\t101\n", ""), "missing \"Pid\""},
		{"missing CapAmb", replace("CapAmb:\t0000000000000400\n", ""), "missing \"CapAmb\""},
		{"no colon", replace("FDSize:\t64\n", "FDSize 64\n"), "line 11: no ':'"},
		{"duplicate", replace("PPid:\t1\n", "PPid:\t1\nPPid:\t2\n"), "line 8: duplicate key \"PPid\""},
		{"bad pid", replace("Pid:\t101\n", "Pid:\tabc\n"), "line 6: Pid"},
		{"pid overflow", replace("Pid:\t101\n", "Pid:\t99999999999\n"), "Pid"},
		{"three uids", replace("Uid:\t1000\t1001\t1002\t1003\n", "Uid:\t1\t2\t3\n"), "Uid: want 4 values, got 3"},
		{"negative gid", replace("Gid:\t2000\t2001\t2002\t2003\n", "Gid:\t-1\t2\t3\t4\n"), "Gid"},
		{"bad group", replace("Groups:\t4 24 27 4294967294 \n", "Groups:\t4 x\n"), "Groups"},
		{"group overflow", replace("Groups:\t4 24 27 4294967294 \n", "Groups:\t4294967296\n"), "Groups"},
		{"bad umask", replace("Umask:\t0077\n", "Umask:\t0089\n"), "Umask"},
		{"bad mask", replace("SigBlk:\tfffffffe7ffbfeff\n", "SigBlk:\tfffffffe7ffbfeffff\n"), "SigBlk"},
		{"bad cap", replace("CapEff:\t00000000a80425fb\n", "CapEff:\tzz\n"), "CapEff"},
		{"bad nnp", replace("NoNewPrivs:\t1\n", "NoNewPrivs:\t2\n"), "NoNewPrivs"},
		{"bad seccomp", replace("Seccomp:\t2\n", "Seccomp:\t7\n"), "Seccomp"},
		{"empty nspid", replace("NSpid:\t101\t8\t2\n", "NSpid:\t\n"), "NSpid"},
		{"bad sigq", replace("SigQ:\t2/15000\n", "SigQ:\t2\n"), "SigQ"},
		{"empty state", replace("State:\tt (tracing stop)\n", "State:\t\n"), "State"},
		{"bad escape", replace("Name:\t my prog \n", "Name:\tx\\q\n"), "unknown escape"},
		{"dangling backslash", replace("Name:\t my prog \n", "Name:\tx\\\n"), "dangling"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseStatus([]byte(tt.in))
			wantErr(t, err, tt.sub)
		})
	}
}

func TestUnescapeComm(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{`a\nb`, "a\nb"},
		{`a\\nb`, `a\nb`},
		{`\t\v\f\r\a\e\"`, "\t\v\f\r\a\x1b\""},
	}
	for _, tt := range tests {
		got, err := unescapeComm(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("unescapeComm(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}
