//go:build linux && amd64

package fd

import "testing"

func TestParseMQStatus(t *testing.T) {
	for _, c := range []struct {
		in   string
		want mqStatus
		ok   bool
	}{
		{"QSIZE:7          NOTIFY:0     SIGNO:10    NOTIFY_PID:23165 \n", mqStatus{7, 0, 10, 23165}, true},
		{"QSIZE:0          NOTIFY:0     SIGNO:0     NOTIFY_PID:0     \n", mqStatus{}, true},
		{"QSIZE:12 NOTIFY:2 SIGNO:0 NOTIFY_PID:9 EXTRA:1\n", mqStatus{12, 2, 0, 9}, true},
		{"QSIZE:7 NOTIFY:0 SIGNO:10\n", mqStatus{}, false},
		{"QSIZE:x NOTIFY:0 SIGNO:10 NOTIFY_PID:1\n", mqStatus{}, false},
		{"garbage", mqStatus{}, false},
		{"", mqStatus{}, false},
	} {
		got, err := parseMQStatus(c.in)
		if (err == nil) != c.ok || (c.ok && got != c.want) {
			t.Errorf("parseMQStatus(%q) = %+v, %v; want %+v ok=%v", c.in, got, err, c.want, c.ok)
		}
	}
}
