package procfs

import (
	"reflect"
	"testing"
)

func TestParseFdInfo(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want FdInfo
	}{
		{
			name: "regular file",
			in:   []byte("pos:\t0\nflags:\t0100000\nmnt_id:\t23\nino:\t3\n"),
			want: FdInfo{Pos: 0, Flags: 0o100000, MntID: 23, Ino: 3, Extra: map[string]string{}},
		},
		{
			name: "large pos, no trailing newline",
			in:   []byte("pos:\t9223372036854775807\nflags:\t02\nmnt_id:\t1\nino:\t18446744073709551615"),
			want: FdInfo{Pos: 1<<63 - 1, Flags: 2, MntID: 1, Ino: 1<<64 - 1, Extra: map[string]string{}},
		},
		{
			name: "eventfd (real)",
			in:   readTestdata(t, "fdinfo_eventfd.txt"),
			want: FdInfo{Flags: 0o2000002, MntID: 17, Ino: 26, Extra: map[string]string{
				"eventfd-count": "3", "eventfd-id": "2", "eventfd-semaphore": "0"}},
		},
		{
			name: "epoll with repeated tfd (real)",
			in:   readTestdata(t, "fdinfo_epoll.txt"),
			want: FdInfo{Flags: 0o2000002, MntID: 17, Ino: 26, Extra: map[string]string{
				"tfd": "12 events:       19 data:     7fd60000000c  pos:0 ino:21f6 sdev:f\n" +
					"9 events:       19 data:     7fd600000009  pos:0 ino:1a sdev:10"}},
		},
		{
			name: "memfd (real)",
			in:   readTestdata(t, "fdinfo_memfd.txt"),
			want: FdInfo{Flags: 0o2100002, MntID: 0, Ino: 1048, Extra: map[string]string{}},
		},
		{
			name: "timerfd",
			in: []byte("pos:\t0\nflags:\t02\nmnt_id:\t15\nino:\t1057\nclockid: 1\nticks: 0\n" +
				"settime flags: 01\nit_value: (0, 499999)\nit_interval: (0, 0)\n"),
			want: FdInfo{Flags: 2, MntID: 15, Ino: 1057, Extra: map[string]string{
				"clockid": "1", "ticks": "0", "settime flags": "01",
				"it_value": "(0, 499999)", "it_interval": "(0, 0)"}},
		},
		{
			name: "line without colon continues previous key",
			in:   []byte("pos:\t0\nflags:\t02\nmnt_id:\t15\nino:\t1\nPollList:\n  op=1, task_works=0\n\n"),
			want: FdInfo{Flags: 2, MntID: 15, Ino: 1, Extra: map[string]string{"PollList": "\nop=1, task_works=0"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseFdInfo(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, tt.want) {
				t.Fatalf("got  %#v\nwant %#v", *got, tt.want)
			}
		})
	}
}

func TestParseFdInfoErrors(t *testing.T) {
	tests := []struct{ name, in, sub string }{
		{"empty", "", "missing \"pos\""},
		{"missing ino", "pos:\t0\nflags:\t02\nmnt_id:\t15\n", "missing \"ino\""},
		{"missing flags", "pos:\t0\nmnt_id:\t15\nino:\t1\n", "missing \"flags\""},
		{"bad pos", "pos:\tx\nflags:\t02\nmnt_id:\t15\nino:\t1\n", "line 1: pos"},
		{"non-octal flags", "pos:\t0\nflags:\t09\nmnt_id:\t15\nino:\t1\n", "line 2: flags"},
		{"flags overflow", "pos:\t0\nflags:\t077777777777\nmnt_id:\t15\nino:\t1\n", "flags"},
		{"bad mnt_id", "pos:\t0\nflags:\t0\nmnt_id:\t1.5\nino:\t1\n", "line 3: mnt_id"},
		{"negative ino", "pos:\t0\nflags:\t0\nmnt_id:\t1\nino:\t-1\n", "line 4: ino"},
		{"duplicate pos", "pos:\t0\npos:\t1\nflags:\t0\nmnt_id:\t1\nino:\t1\n", "line 2: duplicate \"pos\""},
		{"garbage first line", "garbage\npos:\t0\n", "line 1: no ':'"},
		{"continuation of required key", "pos:\t0\nflags:\t0\nmnt_id:\t1\nino:\t1\n0\n", "line 5: no ':'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseFdInfo([]byte(tt.in))
			wantErr(t, err, tt.sub)
		})
	}
}
