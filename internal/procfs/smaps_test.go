package procfs

import (
	"reflect"
	"testing"
)

func TestParseSmapsReal(t *testing.T) {
	es, err := ParseSmaps(readTestdata(t, "smaps_python.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 9 {
		t.Fatalf("got %d entries, want 9", len(es))
	}
	tests := []struct {
		path      string
		flags     []string
		rss, anon uint64
	}{
		{"/root/.pyenv/versions/3.11.7/bin/python3.11", []string{"rd", "mr", "mw", "me"}, 4 << 10, 0},
		{"[heap]", []string{"rd", "wr", "mr", "mw", "me", "ac"}, 1732 << 10, 1732 << 10},
		{"/tmp/pfs/dir with space/lib (x).so", []string{"rd", "wr", "sh", "mr", "mw", "me", "ms"}, 0, 0},
		{"/dev/zero (deleted)", []string{"rd", "wr", "sh", "mr", "mw", "me", "ms"}, 4 << 10, 0},
		{"[vdso]", []string{"rd", "ex", "mr", "mw", "me", "de"}, 4 << 10, 0},
		{"[stack]", []string{"rd", "wr", "mr", "mw", "me", "gd", "ac"}, 60 << 10, 60 << 10},
		{"[vsyscall]", []string{"ex"}, 0, 0},
	}
	for _, tt := range tests {
		var e *SmapsEntry
		for i := range es {
			if es[i].VMA.Path == tt.path {
				e = &es[i]
			}
		}
		if e == nil {
			t.Errorf("no entry %q", tt.path)
			continue
		}
		if !reflect.DeepEqual(e.Flags, tt.flags) || e.Rss != tt.rss || e.Anonymous != tt.anon {
			t.Errorf("%q: flags %v rss %d anon %d, want %v %d %d", tt.path, e.Flags, e.Rss, e.Anonymous, tt.flags, tt.rss, tt.anon)
		}
	}
	stack := es[7]
	if stack.VMA.Path != "[stack]" || !stack.HasFlag("gd") || stack.HasFlag("dd") || stack.HasFlag("g") {
		t.Errorf("stack entry %+v", stack)
	}
}

func TestParseSmapsCrafted(t *testing.T) {
	in := "1000-2000 rw-p 00000000 00:00 0 \n" +
		"Size:                  4 kB\n" +
		"Rss:                   4 kB\n" +
		"Anonymous:             4 kB\n" +
		"THPeligible:           0\n" +
		"ProtectionKey:         0\n" +
		"VmFlags: rd wr mr mw me dc dd \n" +
		"3000-5000 r--s 00001000 08:01 42                         /a file (deleted)\n" +
		"Rss:                   0 kB\n" +
		"7f0000000000-7f0000400000 rw-p 00000000 00:10 5             /anon_hugepage (deleted)\n" +
		"KernelPageSize:     2048 kB\n" +
		"MMUPageSize:        2048 kB\n" +
		"VmFlags: rd wr mr mw me de ht \n"
	es, err := ParseSmaps([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []SmapsEntry{
		{VMA: VMA{Start: 0x1000, End: 0x2000, Read: true, Write: true},
			Flags: []string{"rd", "wr", "mr", "mw", "me", "dc", "dd"}, Rss: 4096, Anonymous: 4096},
		{VMA: VMA{Start: 0x3000, End: 0x5000, Read: true, Shared: true, Offset: 0x1000, Major: 8, Minor: 1, Inode: 42, Path: "/a file (deleted)"}},
		{VMA: VMA{Start: 0x7f0000000000, End: 0x7f0000400000, Read: true, Write: true, Minor: 0x10, Inode: 5, Path: "/anon_hugepage (deleted)"},
			Flags: []string{"rd", "wr", "mr", "mw", "me", "de", "ht"}, KernelPageSize: 2 << 20},
	}
	if !reflect.DeepEqual(es, want) {
		t.Fatalf("got %+v\nwant %+v", es, want)
	}
	if !es[0].HasFlag("dc") || es[1].HasFlag("rd") {
		t.Error("HasFlag wrong")
	}
}

func TestParseSmapsErrors(t *testing.T) {
	tests := []struct{ name, in, sub string }{
		{"field before header", "Rss: 4 kB\n", "line 1: field \"Rss:\" before first VMA header"},
		{"bad header", "1000-2000 rw-p 00000000 00:00 0\nRss: 4 kB\nxyz\n", "line 3"},
		{"bad rss unit", "1000-2000 rw-p 00000000 00:00 0\nRss: 4 MB\n", "line 2: Rss"},
		{"bad rss number", "1000-2000 rw-p 00000000 00:00 0\nRss: x kB\n", "Rss"},
		{"bad page size", "1000-2000 rw-p 00000000 00:00 0\nKernelPageSize: 4 pages\n", "KernelPageSize"},
		{"rss overflow", "1000-2000 rw-p 00000000 00:00 0\nAnonymous: 18446744073709551615 kB\n", "overflows"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseSmaps([]byte(tt.in))
			wantErr(t, err, tt.sub)
		})
	}
}
