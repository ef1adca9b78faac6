//go:build linux && amd64

package fd

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestProcPid(t *testing.T) {
	for path, want := range map[string]int{
		"/proc/123/stat": 123, "/proc/123": 123, "/proc/7/task/8/comm": 7,
		"/proc/self/status": 0, "/proc/sys/kernel/hostname": 0, "/proc/meminfo": 0,
		"/proc/0123/stat": 0, "/proc/-1/stat": 0, "/proc/": 0, "/tmp/proc/12/stat": 0, "/proc/12x/stat": 0,
	} {
		if got := procPid(path); got != want {
			t.Errorf("procPid(%q) = %d, want %d", path, got, want)
		}
	}
}

func TestProcTid(t *testing.T) {
	for path, want := range map[string]int{
		"/proc/7/task/8/comm": 8, "/proc/7/task/7": 7, "/proc/7/task": 0, "/proc/7/stat": 0,
		"/proc/self/task/8/stat": 0, "/proc/7/task/08/stat": 0,
	} {
		if got := procTid(path); got != want {
			t.Errorf("procTid(%q) = %d, want %d", path, got, want)
		}
	}
}

func TestNsNames(t *testing.T) {
	for name, flag := range nsFlags {
		if got, ok := nsName(flag); !ok || got != name {
			t.Errorf("nsName(%#x) = %q, %v; want %q", flag, got, ok, name)
		}
	}
	if _, ok := nsName(unix.CLONE_NEWUTS | unix.CLONE_NEWNET); ok {
		t.Error("nsName of two flags")
	}
	if nsFlags["pid_for_children"] != 0 {
		t.Error("pid_for_children is not a kind of namespace")
	}
}
