package procfs

import (
	"reflect"
	"testing"
)

func TestParseMapsLines(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want VMA
	}{
		{
			name: "file",
			in:   "5561dd12e000-5561dd133000 r-xp 00002000 fe:00 247026                     /usr/bin/cat\n",
			want: VMA{Start: 0x5561dd12e000, End: 0x5561dd133000, Read: true, Exec: true,
				Offset: 0x2000, Major: 0xfe, Minor: 0, Inode: 247026, Path: "/usr/bin/cat"},
		},
		{
			name: "anonymous with trailing space",
			in:   "7f392687e000-7f39268a0000 rw-p 00000000 00:00 0 \n",
			want: VMA{Start: 0x7f392687e000, End: 0x7f39268a0000, Read: true, Write: true},
		},
		{
			name: "anonymous without trailing space or newline",
			in:   "7f392687e000-7f39268a0000 rw-p 00000000 00:00 0",
			want: VMA{Start: 0x7f392687e000, End: 0x7f39268a0000, Read: true, Write: true},
		},
		{
			name: "shared",
			in:   "7f3926ae6000-7f3926aed000 r--s 00000000 fe:00 325737                     /usr/lib/x86_64-linux-gnu/gconv/gconv-modules.cache\n",
			want: VMA{Start: 0x7f3926ae6000, End: 0x7f3926aed000, Read: true, Shared: true,
				Major: 0xfe, Inode: 325737, Path: "/usr/lib/x86_64-linux-gnu/gconv/gconv-modules.cache"},
		},
		{
			name: "path with spaces and parens",
			in:   "7fd6146a7000-7fd6146a9000 rw-s 00000000 fe:00 9978578                    /tmp/pfs/dir with space/lib (x).so\n",
			want: VMA{Start: 0x7fd6146a7000, End: 0x7fd6146a9000, Read: true, Write: true, Shared: true,
				Major: 0xfe, Inode: 9978578, Path: "/tmp/pfs/dir with space/lib (x).so"},
		},
		{
			name: "path with trailing space kept",
			in:   "1000-2000 r--p 00000000 08:01 5 /a b \n",
			want: VMA{Start: 0x1000, End: 0x2000, Read: true, Major: 8, Minor: 1, Inode: 5, Path: "/a b "},
		},
		{
			name: "deleted",
			in:   "7fd6146a6000-7fd6146a7000 r--p 00000000 fe:00 9978606                    /tmp/pfs/gone.bin (deleted)\n",
			want: VMA{Start: 0x7fd6146a6000, End: 0x7fd6146a7000, Read: true,
				Major: 0xfe, Inode: 9978606, Path: "/tmp/pfs/gone.bin (deleted)"},
		},
		{
			name: "vsyscall, short padding",
			in:   "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]\n",
			want: VMA{Start: 0xffffffffff600000, End: 0xffffffffff601000, Exec: true, Path: "[vsyscall]"},
		},
		{
			name: "no padding when header is wide",
			in:   "7fffffffe000-7ffffffff000 rw-p 123456789abcdef0 103:1a 18446744073709551615 /x\n",
			want: VMA{Start: 0x7fffffffe000, End: 0x7ffffffff000, Read: true, Write: true,
				Offset: 0x123456789abcdef0, Major: 0x103, Minor: 0x1a, Inode: 18446744073709551615, Path: "/x"},
		},
		{
			name: "named anon",
			in:   "7f0000000000-7f0000003000 rw-p 00000000 00:00 0                          [anon:my name]\n",
			want: VMA{Start: 0x7f0000000000, End: 0x7f0000003000, Read: true, Write: true, Path: "[anon:my name]"},
		},
		{
			name: "short addresses",
			in:   "00400000-0040b000 r-xp 00000000 08:02 173521      /usr/bin/dbus-daemon\n",
			want: VMA{Start: 0x400000, End: 0x40b000, Read: true, Exec: true, Major: 8, Minor: 2, Inode: 173521, Path: "/usr/bin/dbus-daemon"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseMaps([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || !reflect.DeepEqual(got[0], tt.want) {
				t.Fatalf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseMapsErrors(t *testing.T) {
	tests := []struct {
		name, in, sub string
	}{
		{"missing fields", "1000-2000 r--p 00000000 08:01\n", "line 1: too few fields"},
		{"no dash", "10002000 r--p 00000000 08:01 5\n", "missing '-'"},
		{"bad hex", "10g0-2000 r--p 00000000 08:01 5\n", "start address"},
		{"inverted", "2000-1000 r--p 00000000 08:01 5\n", "start not below end"},
		{"empty range", "1000-1000 r--p 00000000 08:01 5\n", "start not below end"},
		{"bad perms len", "1000-2000 r--pp 00000000 08:01 5\n", "want 4 characters"},
		{"bad perms char", "1000-2000 rw?p 00000000 08:01 5\n", "bad character"},
		{"perms order", "1000-2000 wr-p 00000000 08:01 5\n", "bad character"},
		{"bad share", "1000-2000 rw-x 00000000 08:01 5\n", "'s' or 'p'"},
		{"bad offset", "1000-2000 rw-p zz 08:01 5\n", "offset"},
		{"bad dev", "1000-2000 rw-p 00000000 0801 5\n", "device"},
		{"bad minor", "1000-2000 rw-p 00000000 08:x1 5\n", "device minor"},
		{"bad inode", "1000-2000 rw-p 00000000 08:01 -5\n", "inode"},
		{"overflow", "11111111111111111-2000 rw-p 00000000 08:01 5\n", "start address"},
		{"garbage second line", "1000-2000 rw-p 00000000 08:01 5\nhello world\n", "line 2"},
		{"blank line", "1000-2000 rw-p 00000000 08:01 5\n\n3000-4000 rw-p 00000000 08:01 5\n", "line 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseMaps([]byte(tt.in))
			wantErr(t, err, tt.sub)
		})
	}
}

func TestParseMapsEmpty(t *testing.T) {
	v, err := ParseMaps(nil)
	if err != nil || len(v) != 0 {
		t.Fatalf("got %v, %v", v, err)
	}
}

func TestParseMapsReal(t *testing.T) {
	vmas, err := ParseMaps(readTestdata(t, "maps_python.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(vmas) != 123 {
		t.Fatalf("got %d VMAs, want 123", len(vmas))
	}
	byPath := map[string]VMA{}
	for i, v := range vmas {
		if i > 0 && v.Start < vmas[i-1].End {
			t.Errorf("VMA %d overlaps previous", i)
		}
		byPath[v.Path] = v
	}
	checks := []struct {
		path             string
		special, deleted bool
		shared           bool
	}{
		{"[heap]", false, false, false},
		{"[stack]", false, false, false},
		{"[vdso]", true, false, false},
		{"[vvar]", true, false, false},
		{"[vvar_vclock]", true, false, false},
		{"[vsyscall]", true, false, false},
		{"/dev/zero (deleted)", false, true, true},
		{"/memfd:my memfd (deleted)", false, true, true},
		{"/tmp/pfs/gone.bin (deleted)", false, true, false},
		{"/tmp/pfs/dir with space/lib (x).so", false, false, true},
	}
	for _, c := range checks {
		v, ok := byPath[c.path]
		if !ok {
			t.Errorf("no VMA with path %q", c.path)
			continue
		}
		if v.IsSpecial() != c.special || v.Deleted() != c.deleted || v.Shared != c.shared {
			t.Errorf("%q: special=%v deleted=%v shared=%v, want %v %v %v",
				c.path, v.IsSpecial(), v.Deleted(), v.Shared, c.special, c.deleted, c.shared)
		}
	}
	if s := byPath["[stack]"].Size(); s != 0x21000 {
		t.Errorf("[stack] size %#x, want 0x21000", s)
	}
	if first := vmas[0]; first.Path != "/root/.pyenv/versions/3.11.7/bin/python3.11" || first.Inode != 18500 {
		t.Errorf("first VMA %+v", first)
	}
}

func TestVMAMethods(t *testing.T) {
	tests := []struct {
		path             string
		special, deleted bool
	}{
		{"", false, false},
		{"[heap]", false, false},
		{"[stack]", false, false},
		{"[anon:foo]", false, false},
		{"[anon_shmem:foo]", false, false},
		{"[vdso]", true, false},
		{"[vvar]", true, false},
		{"[vvar_vclock]", true, false},
		{"[vsyscall]", true, false},
		{"[uprobes]", true, false},
		{"/lib/x.so", false, false},
		{"/lib/x.so (deleted)", false, true},
		{"/SYSV00000000 (deleted)", false, true},
		{"/x(deleted)", false, false},
	}
	for _, tt := range tests {
		v := VMA{Start: 0x1000, End: 0x3000, Path: tt.path}
		if v.IsSpecial() != tt.special {
			t.Errorf("%q: IsSpecial=%v", tt.path, v.IsSpecial())
		}
		if v.Deleted() != tt.deleted {
			t.Errorf("%q: Deleted=%v", tt.path, v.Deleted())
		}
		if v.Size() != 0x2000 {
			t.Errorf("Size=%#x", v.Size())
		}
	}
}
