//go:build linux && amd64

package procfs

import (
	"os"
	"testing"
)

func TestParseMountinfo(t *testing.T) {
	in := "22 27 0:21 / /proc rw,relatime - proc proc rw\n" +
		"27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard\n" +
		"90 27 0:50 /sub\\040dir /mnt/a\\134b ro,nosuid master:3 unbindable propagate_from:2 - tmpfs my\\040src rw,size=1024k,mode=700\n"
	ms, err := ParseMountinfo([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 3 {
		t.Fatalf("%d mounts", len(ms))
	}
	m := ms[2]
	if m.ID != 90 || m.Parent != 27 || m.Major != 0 || m.Minor != 50 || m.Root != "/sub dir" || m.Point != `/mnt/a\b` ||
		m.Options != "ro,nosuid" || m.Master != 3 || m.Shared != 0 || !m.Unbindable || m.FSType != "tmpfs" ||
		m.Source != "my src" || m.Super != "rw,size=1024k,mode=700" {
		t.Errorf("parsed %+v", m)
	}
	if ms[1].Shared != 1 || ms[1].Major != 254 {
		t.Errorf("parsed %+v", ms[1])
	}
	for _, bad := range []string{
		"22 27 0:21 / /proc rw,relatime proc proc rw",
		"x 27 0:21 / /proc rw - proc proc rw",
		"22 27 021 / /proc rw - proc proc rw",
		"22 27 0:21 / /proc rw shared:x - proc proc rw",
		"22 27 0:21 /\\04 /proc rw - proc proc rw",
		"22 27 0:21 / /proc rw - proc proc",
	} {
		if _, err := ParseMountinfo([]byte(bad + "\n")); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestReadMountinfoSelf(t *testing.T) {
	ms, err := ReadMountinfo(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.Point == "/" {
			return
		}
	}
	t.Error("no / mount")
}

func FuzzParseMountinfo(f *testing.F) {
	f.Add([]byte("22 27 0:21 / /proc rw,relatime - proc proc rw\n"))
	f.Add([]byte("90 27 0:50 /a\\040b /m ro master:3 - tmpfs s rw\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = ParseMountinfo(b)
	})
}
