//go:build linux && amd64

package ns

import (
	"fmt"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/internal/procfs"
)

func mounts(t *testing.T, s string) []procfs.Mount {
	t.Helper()
	ms, err := procfs.ParseMountinfo([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

const curInfo = `27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
22 27 0:21 / /proc rw,relatime shared:2 - proc proc rw
25 27 0:23 / /dev/shm rw,relatime shared:3 - tmpfs tmpfs rw,size=100k
30 25 0:27 / /dev/shm rw,relatime - tmpfs tmpfs rw,size=200k
`

func opsString(ops []mountOp) string {
	var out []string
	for _, o := range ops {
		out = append(out, fmt.Sprintf("%v [ns %d]", o, o.pidNS))
	}
	return strings.Join(out, "; ")
}

func TestPlanMounts(t *testing.T) {
	cur := mounts(t, curInfo)
	for _, tc := range []struct {
		name, want string
		procNS     map[int]uint32
		ops        string // "" for none; a prefix "error: " for a refusal
	}{
		{"same", curInfo, nil, ""},
		{"all private (unshare -m)", `127 100 254:0 / / rw,relatime - ext4 /dev/vda rw
122 127 0:21 / /proc rw,relatime - proc proc rw
125 127 0:23 / /dev/shm rw,relatime - tmpfs tmpfs rw,size=100k
130 125 0:27 / /dev/shm rw,relatime - tmpfs tmpfs rw,size=200k
`, nil, fmt.Sprintf("set propagation %#x of / [ns 0]", unix.MS_REC|unix.MS_PRIVATE)},
		{"new mounts, one lacking, a bind, a proc of another PID namespace, flags", `127 100 254:0 / / rw,relatime - ext4 /dev/vda rw
122 127 0:21 / /proc rw,relatime - proc proc rw
125 127 0:23 / /dev/shm ro,nosuid,relatime - tmpfs tmpfs rw,size=100k
140 127 0:50 / /mnt/t rw,nosuid,nodev - tmpfs ckpt rw,size=1024k,mode=700
141 127 254:0 /srv/data /mnt/b\040x ro,relatime - ext4 /dev/vda rw
142 122 0:51 / /proc rw,relatime - proc proc rw
143 140 0:50 /sub /mnt/t2 rw,relatime - tmpfs ckpt rw,size=1024k,mode=700
`, map[int]uint32{142: 5}, strings.Join([]string{
			fmt.Sprintf("set propagation %#x of / [ns 0]", unix.MS_REC|unix.MS_PRIVATE),
			"umount /dev/shm [ns 0]",
			"remount /dev/shm ro,nosuid,relatime [ns 0]",
			"mount tmpfs ckpt on /mnt/t (size=1024k,mode=700) [ns 0]",
			"bind /srv/data on /mnt/b x [ns 0]",
			"remount /mnt/b x ro,relatime [ns 0]",
			"mount proc proc on /proc () [ns 5]",
			"bind /mnt/t/sub on /mnt/t2 [ns 0]",
			"remount /mnt/t2 rw,relatime [ns 0]",
		}, "; ")},
		{"unmount under a peer of the restorer's", `127 100 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
122 127 0:21 / /proc rw,relatime shared:2 - proc proc rw
125 127 0:23 / /dev/shm rw,relatime shared:3 - tmpfs tmpfs rw,size=100k
`, nil, "error: its parent /dev/shm is shared with the restorer's namespace"},
		{"mount under a peer of the restorer's", curInfo + "140 27 0:50 / /mnt/t rw - tmpfs x rw\n", nil, "error: which is shared with the restorer's namespace"},
		{"a filesystem that cannot be made", `127 100 254:0 / / rw,relatime - ext4 /dev/vda rw
122 127 0:21 / /proc rw,relatime - proc proc rw
125 127 0:23 / /dev/shm rw,relatime - tmpfs tmpfs rw,size=100k
130 125 0:27 / /dev/shm rw,relatime - tmpfs tmpfs rw,size=200k
131 127 0:60 / /dev/mqueue rw - mqueue mqueue rw
`, nil, "error: mount /dev/mqueue (mqueue mqueue): not in the restorer's namespace, and only proc, sysfs and empty tmpfs"},
		{"another root", "127 100 0:70 / / rw - tmpfs rootfs rw\n", nil, "error: its root filesystem"},
		{"a new peer group", `127 100 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
122 127 0:21 / /proc rw,relatime shared:9 - proc proc rw
125 127 0:23 / /dev/shm rw,relatime shared:3 - tmpfs tmpfs rw,size=100k
130 125 0:27 / /dev/shm rw,relatime - tmpfs tmpfs rw,size=200k
`, nil, fmt.Sprintf("set propagation %#x of /proc [ns 0]; set propagation %#x of /proc [ns 0]", unix.MS_PRIVATE, unix.MS_SHARED)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ops, err := planMounts(cur, mounts(t, tc.want), tc.procNS, 0)
			if want, ok := strings.CutPrefix(tc.ops, "error: "); ok {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("got %v (ops %s), want an error with %q", err, opsString(ops), want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := opsString(ops); got != tc.ops {
				t.Errorf("ops\n%s\nwant\n%s", got, tc.ops)
			}
		})
	}
}

// A mount survives the trip through its image entry.
func TestMountEntryRoundTrip(t *testing.T) {
	for _, m := range mounts(t, `27 1 254:0 / / ro,nosuid,nodev,noexec,relatime shared:1 master:4 - ext4 /dev/vda ro,discard
140 127 0:50 /a\040b /mnt/t rw,noatime unbindable - tmpfs ckpt rw,size=1024k
`) {
		e, err := toEntry(m)
		if err != nil {
			t.Fatal(err)
		}
		if got := fromEntry(e); fmt.Sprint(got) != fmt.Sprint(m) {
			t.Errorf("round trip\n%+v\nwant\n%+v", got, m)
		}
	}
	if _, err := toEntry(procfs.Mount{Options: "rw,lazytime"}); err == nil {
		t.Error("unknown option accepted")
	}
}
