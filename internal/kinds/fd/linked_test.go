//go:build linux && amd64

package fd

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestLinked(t *testing.T) {
	dir := t.TempDir()
	tmp, name := filepath.Join(dir, "sem.tmp"), filepath.Join(dir, "sem.x")
	if err := os.WriteFile(tmp, []byte("value"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(tmp, name); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(tmp); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(name, &st); err != nil {
		t.Fatal(err)
	}
	if got, err := LinkedName(tmp, &st); err != nil || got != name {
		t.Fatalf("LinkedName = %q, %v; want %q", got, err, name)
	}
	if _, err := CheckLinked(1, "test", filepath.Join(t.TempDir(), "x"), &st); err == nil {
		t.Error("CheckLinked: no error for a file with no other name in its directory")
	}
	for _, taken := range []bool{false, true} {
		if taken {
			// Another file has the old name now.
			if err := os.WriteFile(tmp, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		f, err := openLinked(tmp, name)
		if err != nil {
			t.Fatalf("openLinked (old name taken: %v): %v", taken, err)
		}
		link, _ := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", f.Fd()))
		var o unix.Stat_t
		if err := unix.Fstat(int(f.Fd()), &o); err != nil || o.Ino != st.Ino {
			t.Errorf("openLinked opened inode %d, want %d (%v)", o.Ino, st.Ino, err)
		}
		if !taken && link != tmp+deletedMark {
			t.Errorf("the fd shows %q, want %q", link, tmp+deletedMark)
		}
		f.Close()
		ents, _ := os.ReadDir(dir)
		want := 1
		if taken {
			want = 2
		}
		if len(ents) != want {
			t.Errorf("old name taken %v: %d files left in the directory, want %d", taken, len(ents), want)
		}
	}
}
