//go:build linux && amd64

package fd

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/fdinfo"
	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/internal/model"
)

// The dump links a linked file at link_remap.ID in its old directory,
// once per inode, and writes CRIU's entry for that link; a dump that
// fails removes it.
func TestLinkRemap(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "sem.x")
	if err := os.WriteFile(name, []byte("value"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	old := filepath.Join(dir, "sem.tmp") // the unlinked name
	src := fmt.Sprintf("/proc/self/fd/%d", f.Fd())
	d := &model.Dump{}
	d.AddFile(RegEntry(d.NextFileID(), "/bin/true", unix.O_RDONLY, 0, &st))
	// An earlier dump's link has the first name.
	if err := os.WriteFile(filepath.Join(dir, "link_remap.2"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	id, err := LinkRemap(d, old, src, &st)
	if err != nil {
		t.Fatal(err)
	}
	if id != 2 {
		t.Errorf("LinkRemap = %d, want the next id 2", id)
	}
	e := d.Files[id]
	reg := e.GetReg()
	if e.GetType() != fdinfo.FdTypes_REG || e.GetId() != id || reg.GetId() != id || reg.GetFlags() != 0 || reg.GetPos() != 0 || reg.Size != nil || reg.GetFown() == nil {
		t.Errorf("link entry %v: want CRIU's (REG, id %d, flags 0, pos 0, no size, fown)", e, id)
	}
	link := reg.GetName()
	if filepath.Dir(link) != dir || !strings.HasPrefix(filepath.Base(link), "link_remap.2.") || !IsLinkRemap(link) {
		t.Errorf("link %s: want link_remap.2.N in %s (link_remap.2 is taken)", link, dir)
	}
	var o unix.Stat_t
	if err := unix.Stat(link, &o); err != nil || o.Ino != st.Ino {
		t.Errorf("link %s is inode %d, want %d (%v)", link, o.Ino, st.Ino, err)
	}
	// A second entry of the inode (a mapping of it) shares the link.
	if again, err := LinkRemap(d, old, src, &st); err != nil || again != id || len(d.Files) != 2 {
		t.Errorf("LinkRemap again = %d, %v with %d files; want %d, no new entry", again, err, len(d.Files), id)
	}
	if IsLinkRemap(name) {
		t.Errorf("IsLinkRemap(%s)", name)
	}
	d.RemoveMadeLinks()
	if _, err := os.Lstat(link); !os.IsNotExist(err) {
		t.Errorf("RemoveMadeLinks left %s (%v)", link, err)
	}
}

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
	if _, err := CheckLinked(1, "test", filepath.Join(dir, "gone", "x"), &st, true); err == nil {
		t.Error("CheckLinked --link-remap: no error for a file whose directory is gone")
	}
	if other, err := CheckLinked(1, "test", tmp, &st, true); err != nil || other != "" {
		t.Errorf("CheckLinked --link-remap = %q, %v", other, err)
	}
	// Without --link-remap the dump finds the other name, or refuses the
	// file naming the option.
	if other, err := CheckLinked(1, "test", tmp, &st, false); err != nil || other != name {
		t.Errorf("CheckLinked = %q, %v; want %q", other, err, name)
	}
	if _, err := CheckLinked(1, "test", filepath.Join(t.TempDir(), "x"), &st, false); err == nil || !strings.Contains(err.Error(), "--link-remap") {
		t.Errorf("CheckLinked of a file with no other name in its directory: %v, want a refusal naming --link-remap", err)
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

// A restore opens a linked file through the dump's link and removes that
// link once the tree runs; a target that is not a dump's link (an older
// dump named the file's other name) stays.
func TestLinkRemapRestore(t *testing.T) {
	dir := t.TempDir()
	for _, target := range []string{"link_remap.2", "sem.x"} {
		link := filepath.Join(dir, target)
		if err := os.WriteFile(link, []byte("value"), 0o600); err != nil {
			t.Fatal(err)
		}
		var st unix.Stat_t
		if err := unix.Stat(link, &st); err != nil {
			t.Fatal(err)
		}
		d := &model.Dump{}
		id := d.AddFile(RegEntry(d.NextFileID(), filepath.Join(dir, "sem.tmp"), unix.O_RDWR, 0, &st))
		to := d.AddFile(linkRemapEntry(d.NextFileID(), link, &st))
		d.SetLinked(id, to)
		k := &regKind{}
		p, err := k.Path(d, id)
		if err != nil {
			t.Fatalf("%s: Path: %v", target, err)
		}
		var o unix.Stat_t
		if err := unix.Stat(p, &o); err != nil || o.Ino != st.Ino {
			t.Errorf("%s: Path %s is inode %d, want %d (%v)", target, p, o.Ino, st.Ino, err)
		}
		k.removeLinkRemaps(t.Logf)
		k.closeLinked()
		_, err = os.Lstat(link)
		if gone := os.IsNotExist(err); gone != IsLinkRemap(link) {
			t.Errorf("%s after the restore: removed %v, want %v", target, gone, IsLinkRemap(link))
		}
	}
}

// A dump without --link-remap records the other name in the file's own
// entry (model.RegLinkedAt): the restore opens the file through it and
// leaves it, so the dump restores again.
func TestLinkedAtRestore(t *testing.T) {
	dir := t.TempDir()
	other := filepath.Join(dir, "sem.x")
	if err := os.WriteFile(other, []byte("value"), 0o600); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(other, &st); err != nil {
		t.Fatal(err)
	}
	d := &model.Dump{}
	id := d.AddFile(RegEntry(d.NextFileID(), filepath.Join(dir, "sem.tmp"), unix.O_RDWR, 0, &st))
	d.SetLinkedAt(id, other)
	if at, err := model.RegLinkedAt(d.Files[id].GetReg()); err != nil || at != other {
		t.Fatalf("RegLinkedAt = %q, %v; want %q", at, err, other)
	}
	for round := 0; round < 2; round++ {
		k := &regKind{}
		p, err := k.Path(d, id)
		if err != nil {
			t.Fatalf("restore %d: Path: %v", round, err)
		}
		var o unix.Stat_t
		if err := unix.Stat(p, &o); err != nil || o.Ino != st.Ino {
			t.Errorf("restore %d: Path %s is inode %d, want %d (%v)", round, p, o.Ino, st.Ino, err)
		}
		k.removeLinkRemaps(t.Logf)
		k.closeLinked()
		if _, err := os.Lstat(other); err != nil {
			t.Fatalf("restore %d removed the other name %s: %v", round, other, err)
		}
		if _, err := os.Lstat(filepath.Join(dir, "sem.tmp")); !os.IsNotExist(err) {
			t.Errorf("restore %d left the unlinked name linked (%v)", round, err)
		}
	}
}
