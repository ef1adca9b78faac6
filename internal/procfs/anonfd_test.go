package procfs

import "testing"

func TestParseEventfdAndEpoll(t *testing.T) {
	fi, err := ParseFdInfo([]byte("pos:\t0\nflags:\t02004002\nmnt_id:\t15\nino:\t1057\neventfd-count:                7\neventfd-id: 12\neventfd-semaphore: 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	e, err := ParseEventfd(fi)
	if err != nil || e.Count != 7 || !e.Semaphore || !e.SemaphoreKnown {
		t.Fatalf("eventfd: %+v %v", e, err)
	}
	// Before Linux 6.4: no eventfd-semaphore line.
	e, err = ParseEventfd(&FdInfo{Extra: map[string]string{"eventfd-count": "a"}})
	if err != nil || e.Count != 10 || e.Semaphore || e.SemaphoreKnown {
		t.Fatalf("eventfd without a semaphore line: %+v %v", e, err)
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

func TestParseTimerfdAndSignalfd(t *testing.T) {
	fi, err := ParseFdInfo([]byte("pos:\t0\nflags:\t02004002\nmnt_id:\t15\nino:\t1057\nclockid: 1\nticks: 3\nsettime flags: 01\nit_value: (3599, 999000123)\nit_interval: (3600, 0)\n"))
	if err != nil {
		t.Fatal(err)
	}
	tf, err := ParseTimerfd(fi)
	if err != nil {
		t.Fatal(err)
	}
	if tf.ClockID != 1 || tf.Ticks != 3 || tf.SettimeFlags != 1 || tf.ValueSec != 3599 || tf.ValueNsec != 999000123 || tf.IntervalSec != 3600 {
		t.Fatalf("timerfd: %+v", tf)
	}
	fi, err = ParseFdInfo([]byte("pos:\t0\nflags:\t02\nmnt_id:\t15\nino:\t1057\nsigmask:\t0000000000000201\n"))
	if err != nil {
		t.Fatal(err)
	}
	if m, err := ParseSignalfd(fi); err != nil || m != 0x201 {
		t.Fatalf("signalfd: %#x %v", m, err)
	}
	if _, err := ParseTimerfd(&FdInfo{Extra: map[string]string{}}); err == nil {
		t.Error("empty timerfd accepted")
	}
}
