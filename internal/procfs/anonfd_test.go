package procfs

import "testing"

func TestParseEventfdAndEpoll(t *testing.T) {
	fi, err := ParseFdInfo([]byte("pos:\t0\nflags:\t02004002\nmnt_id:\t15\nino:\t1057\neventfd-count:                7\neventfd-id: 12\neventfd-semaphore: 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	e, err := ParseEventfd(fi)
	if err != nil || e.Count != 7 || !e.Semaphore {
		t.Fatalf("eventfd: %+v %v", e, err)
	}
	fi, err = ParseFdInfo([]byte("pos:\t0\nflags:\t02\nmnt_id:\t15\nino:\t1057\n" +
		"tfd:        6 events:       19 data:                0  pos:0 ino:1057 sdev:f\n" +
		"tfd:        9 events: 80000001 data:     7fffdeadbeef  pos:12 ino:2a sdev:e\n"))
	if err != nil {
		t.Fatal(err)
	}
	ts, err := ParseEpollTargets(fi)
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 2 || ts[0].Fd != 6 || ts[0].Events != 0x19 || ts[1].Data != 0x7fffdeadbeef || ts[1].Events != 0x80000001 || ts[1].Ino != 0x2a || ts[1].Pos != 12 {
		t.Fatalf("targets: %+v", ts)
	}
	if _, err := ParseEventfd(&FdInfo{Extra: map[string]string{"eventfd-count": "zz"}}); err == nil {
		t.Error("bad count accepted")
	}
	if _, err := ParseEpollTargets(&FdInfo{Extra: map[string]string{"tfd": "garbage"}}); err == nil {
		t.Error("bad tfd line accepted")
	}
}
