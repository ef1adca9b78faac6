package procfs

import (
	"bytes"
	"testing"
)

func TestParseInotify(t *testing.T) {
	fi, err := ParseFdInfo([]byte("pos:\t0\nflags:\t04000\nmnt_id:\t17\nino:\t1038\n" +
		"inotify wd:3 ino:13 sdev:fe00000 mask:80000002 ignored_mask:0 fhandle-bytes:8 fhandle-type:1 f_handle:1300000000000000\n" +
		"inotify wd:2 ino:2e1 sdev:fe00000 mask:4000002 ignored_mask:0\n"))
	if err != nil {
		t.Fatal(err)
	}
	ws, err := ParseInotify(fi)
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != 2 || ws[0].Wd != 3 || ws[0].Ino != 0x13 || ws[0].Sdev != 0xfe00000 || ws[0].Mask != 0x80000002 ||
		ws[0].HandleType != 1 || !bytes.Equal(ws[0].Handle, []byte{0x13, 0, 0, 0, 0, 0, 0, 0}) ||
		ws[1].Wd != 2 || ws[1].Ino != 0x2e1 || ws[1].Handle != nil {
		t.Fatalf("watches: %+v", ws)
	}
	if ws, err := ParseInotify(&FdInfo{Extra: map[string]string{}}); err != nil || ws != nil {
		t.Errorf("no watches: %v %v", ws, err)
	}
	for _, bad := range []string{"", "zz ino:1 sdev:1 mask:1", "1 ino:1 mask:1", "1 ino:1 sdev:1 mask:1 mask:2",
		"1 ino:1 sdev:1 mask:1 fhandle-bytes:4 f_handle:00", "1 ino:1 sdev:1 mask:1 f_handle:0g", "1 ino sdev:1 mask:1", "-1 ino:1 sdev:1 mask:1"} {
		if _, err := ParseInotify(&FdInfo{Extra: map[string]string{"inotify wd": bad}}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func FuzzParseInotify(f *testing.F) {
	f.Add([]byte("pos:\t0\nflags:\t04000\nmnt_id:\t17\nino:\t1038\n" +
		"inotify wd:3 ino:13 sdev:fe00000 mask:80000002 ignored_mask:0 fhandle-bytes:8 fhandle-type:1 f_handle:1300000000000000\n"))
	f.Add([]byte("pos:\t0\nflags:\t0\nmnt_id:\t1\nino:\t1\ninotify wd:1 ino:1 sdev:1 mask:1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fi, err := ParseFdInfo(data)
		if err != nil {
			return
		}
		ws, err := ParseInotify(fi)
		if err != nil {
			return
		}
		for _, w := range ws {
			if w.Wd < 0 {
				t.Fatalf("negative wd %d", w.Wd)
			}
		}
	})
}
