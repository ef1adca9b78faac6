package procfs

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// addTestdata adds the named testdata files as fuzz seeds.
func addTestdata(f *testing.F, names ...string) {
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join("testdata", n))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// headLines returns the first n lines of testdata/name; fuzz seeds are kept
// small because the fuzzer spends long minimizing inputs derived from big
// seeds.
func headLines(f *testing.F, name string, n int) []byte {
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		f.Fatal(err)
	}
	lines := strings.SplitAfter(string(b), "\n")
	if len(lines) > n {
		lines = lines[:n]
	}
	return []byte(strings.Join(lines, ""))
}

// formatVMA renders v in the kernel's maps line format.
func formatVMA(v VMA) string {
	perm := func(b bool, c byte) byte {
		if b {
			return c
		}
		return '-'
	}
	share := byte('p')
	if v.Shared {
		share = 's'
	}
	return fmt.Sprintf("%08x-%08x %c%c%c%c %08x %02x:%02x %d %s\n", v.Start, v.End,
		perm(v.Read, 'r'), perm(v.Write, 'w'), perm(v.Exec, 'x'), share,
		v.Offset, v.Major, v.Minor, v.Inode, v.Path)
}

func FuzzParseMaps(f *testing.F) {
	f.Add(headLines(f, "maps_python.txt", 8))
	f.Add([]byte("7fd6146a7000-7fd6146a9000 rw-s 00000000 fe:00 9978578                    /tmp/dir with space/lib (x).so (deleted)\n"))
	f.Add([]byte("7f392687e000-7f39268a0000 rw-p 00000000 00:00 0 \nffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]"))
	f.Add([]byte("1000-2000 r--p 00000000 08:01 5"))
	f.Fuzz(func(t *testing.T, data []byte) {
		vmas, err := ParseMaps(data)
		if err != nil {
			if vmas != nil {
				t.Fatal("VMAs returned with error")
			}
			return
		}
		for _, v := range vmas {
			if v.Start >= v.End {
				t.Fatalf("Start %#x >= End %#x", v.Start, v.End)
			}
			if strings.ContainsRune(v.Path, '\n') || strings.HasPrefix(v.Path, " ") {
				t.Fatalf("bad path %q", v.Path)
			}
			_ = v.IsSpecial()
			_ = v.Deleted()
			// Formatting a parsed VMA and parsing it again is lossless.
			again, err := ParseMaps([]byte(formatVMA(v)))
			if err != nil {
				t.Fatalf("reparse %q: %v", formatVMA(v), err)
			}
			if len(again) != 1 || !reflect.DeepEqual(again[0], v) {
				t.Fatalf("round trip: %+v -> %+v", v, again)
			}
		}
	})
}

func FuzzParseSmaps(f *testing.F) {
	f.Add(headLines(f, "smaps_python.txt", 26))
	f.Add([]byte("1000-2000 rw-p 00000000 00:00 0 \nRss: 4 kB\nAnonymous: 4 kB\nVmFlags: rd wr gd \n"))
	f.Add([]byte("VmFlags: rd\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		es, err := ParseSmaps(data)
		if err != nil {
			return
		}
		for _, e := range es {
			if e.VMA.Start >= e.VMA.End {
				t.Fatalf("Start %#x >= End %#x", e.VMA.Start, e.VMA.End)
			}
			if e.Rss%1024 != 0 || e.Anonymous%1024 != 0 {
				t.Fatalf("Rss/Anonymous not whole kB: %+v", e)
			}
			for _, fl := range e.Flags {
				if fl == "" || strings.ContainsAny(fl, " \t\n") || !e.HasFlag(fl) {
					t.Fatalf("bad flag %q", fl)
				}
			}
		}
	})
}

func FuzzParseStatus(f *testing.F) {
	addTestdata(f, "status_python.txt", "status_zombie.txt", "status_kthread.txt")
	f.Add([]byte(statusSample))
	f.Add([]byte("Name:\tx\\\\y\\n\nUid:\t1\t2\t3\t4\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseStatus(data)
		if err != nil {
			if s != nil {
				t.Fatal("status returned with error")
			}
			return
		}
		if s.Seccomp < 0 || s.Seccomp > 2 {
			t.Fatalf("Seccomp %d", s.Seccomp)
		}
		if s.State == "" || s.Groups == nil || !strings.Contains(s.SigQ, "/") {
			t.Fatalf("required field empty: %+v", s)
		}
		if s.Umask != 0 && !s.HasUmask {
			t.Fatalf("Umask %o without HasUmask", s.Umask)
		}
	})
}

func FuzzParseStat(f *testing.F) {
	addTestdata(f, "stat_weird_comm.txt", "stat_zombie.txt", "stat_kthread.txt")
	f.Add([]byte(statLine(") (", statTail())))
	f.Add([]byte("1 (a) S 0"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseStat(data)
		if err != nil {
			if s != nil {
				t.Fatal("stat returned with error")
			}
			return
		}
		if s.Pid <= 0 {
			t.Fatalf("pid %d", s.Pid)
		}
		// The comm runs to the last ')', so nothing after it has one.
		c := "(" + s.Comm + ")"
		i := strings.Index(string(data), c)
		if i < 0 || strings.ContainsRune(string(data[i+len(c):]), ')') {
			t.Fatalf("comm %q not delimited by the last ')'", s.Comm)
		}
	})
}

func FuzzParseFdInfo(f *testing.F) {
	addTestdata(f, "fdinfo_epoll.txt", "fdinfo_eventfd.txt", "fdinfo_memfd.txt")
	f.Add([]byte("pos:\t0\nflags:\t02\nmnt_id:\t15\nino:\t1\nPollList:\n  op=1\n"))
	f.Add([]byte("pos:\t-1\nflags:\t0\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fi, err := ParseFdInfo(data)
		if err != nil {
			if fi != nil {
				t.Fatal("fdinfo returned with error")
			}
			return
		}
		if fi.Extra == nil {
			t.Fatal("nil Extra")
		}
		for _, k := range []string{"pos", "flags", "mnt_id", "ino"} {
			if _, ok := fi.Extra[k]; ok {
				t.Fatalf("%q in Extra", k)
			}
		}
	})
}

func FuzzParseLimits(f *testing.F) {
	addTestdata(f, "limits_python.txt")
	f.Add([]byte("Limit Soft Limit Hard Limit Units\nMax cpu time 1 2 seconds\n"))
	f.Add([]byte("Limit\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := ParseLimits(data)
		if err != nil {
			if l != nil {
				t.Fatal("limits returned with error")
			}
			return
		}
		if len(l) != len(limitRows) {
			t.Fatalf("%d limits, want %d", len(l), len(limitRows))
		}
		for _, r := range limitRows {
			if _, ok := l[r.res]; !ok {
				t.Fatalf("missing %s", r.name)
			}
		}
	})
}

func FuzzParseAuxv(f *testing.F) {
	b, err := os.ReadFile(filepath.Join("testdata", "auxv_x86_64.bin"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b, true)
	f.Add(auxvBytes(4, 32, 0xf7f00000, 6, 4096, 0, 0), false)
	f.Add([]byte{1, 2, 3}, true)
	f.Fuzz(func(t *testing.T, data []byte, wide bool) {
		ws := 4
		if wide {
			ws = 8
		}
		es, err := ParseAuxv(data, ws)
		if err != nil {
			return
		}
		if len(es)*2*ws > len(data) {
			t.Fatalf("%d entries from %d bytes", len(es), len(data))
		}
		for _, e := range es {
			if e.Type == 0 {
				t.Fatal("AT_NULL in result")
			}
			if ws == 4 && (e.Type>>32 != 0 || e.Value>>32 != 0) {
				t.Fatalf("32-bit entry %+v exceeds 32 bits", e)
			}
		}
	})
}

func FuzzParsePersonality(f *testing.F) {
	f.Add([]byte("00000000\n"))
	f.Add([]byte("00400008\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePersonality(data)
		if err != nil {
			return
		}
		if q, err := ParsePersonality([]byte(fmt.Sprintf("%08x\n", p))); err != nil || q != p {
			t.Fatalf("round trip %#x -> %#x, %v", p, q, err)
		}
	})
}

func FuzzParseTimensOffsets(f *testing.F) {
	f.Add([]byte("monotonic           0         0\nboottime            0         0\n"))
	f.Add([]byte("1 86400 5\n7 -3 999999999\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		o, err := ParseTimensOffsets(data)
		if err != nil {
			return
		}
		line := func(name string, ns int64) string {
			sec, nsec := ns/1e9, ns%1e9
			if nsec < 0 {
				sec, nsec = sec-1, nsec+1e9
			}
			return fmt.Sprintf("%s %d %d\n", name, sec, nsec)
		}
		q, err := ParseTimensOffsets([]byte(line("monotonic", o.Monotonic) + line("boottime", o.Boottime)))
		if err != nil || q != o {
			t.Fatalf("round trip %+v -> %+v, %v", o, q, err)
		}
	})
}

func FuzzParseTimers(f *testing.F) {
	addTestdata(f, "timers.txt")
	f.Add([]byte("ID: 0\nsignal: 14/0000000000000000\nnotify: signal/pid.1\nClockID: 0\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ts, err := ParseTimers(data)
		if err != nil {
			if ts != nil {
				t.Fatal("timers returned with error")
			}
			return
		}
		// Formatting the parsed timers and parsing them again is lossless.
		var s string
		for _, tm := range ts {
			s += tm.Format()
		}
		again, err := ParseTimers([]byte(s))
		if err != nil || !reflect.DeepEqual(again, ts) {
			t.Fatalf("round trip %+v -> %+v, %v", ts, again, err)
		}
	})
}
