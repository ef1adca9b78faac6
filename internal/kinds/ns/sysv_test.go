//go:build linux && amd64

package ns

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	ipcdesc "github.com/checkpoint-restore/go-criu/v8/crit/images/ipc-desc"
	ipcshm "github.com/checkpoint-restore/go-criu/v8/crit/images/ipc-shm"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/image"
	"github.com/ckpt/ckpt/internal/model"
)

// A segment's content goes to the dump's shared memory pages under its
// IPC id, streamed from its file; where another object of the dump has
// that name already, whole after its entry. The files are closed.
func TestSaveShm(t *testing.T) {
	dir := t.TempDir()
	file := func(name string, b []byte) *os.File {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	d := &model.Dump{Dir: image.Dir{Path: dir}, ShmemPagesBase: 1}
	other := file("other", bytes.Repeat([]byte{1}, 4096))
	defer other.Close()
	if err := d.SaveShmem(5, other, 4096); err != nil {
		t.Fatal(err)
	}
	// The name is taken: a second object under it is refused.
	if err := d.SaveShmem(5, other, 4096); err == nil {
		t.Error("SaveShmem of a second object 5: no error")
	}
	content := append(bytes.Repeat([]byte{2}, 8192), 3, 4, 5)
	seg := func(id uint32, f *os.File) model.SysVShm {
		return model.SysVShm{Entry: &ipcshm.IpcShmEntry{Desc: &ipcdesc.IpcDescEntry{Id: proto.Uint32(id)}, Size: proto.Uint64(uint64(len(content)))}, Src: f}
	}
	s := &model.SysV{Shm: []model.SysVShm{seg(5, file("seg5", content)), seg(6, file("seg6", content))}}
	if err := saveShm(d, s); err != nil {
		t.Fatal(err)
	}
	if o := s.Shm[0]; o.InPages || !bytes.Equal(o.Data, content) || o.Src != nil {
		t.Errorf("segment 5 (name taken): InPages %v, %d bytes of data, file %v; want its content whole", o.InPages, len(o.Data), o.Src)
	}
	if o := s.Shm[1]; !o.InPages || o.Data != nil || o.Src != nil {
		t.Errorf("segment 6: InPages %v, %d bytes of data, file %v; want its content in the pages", o.InPages, len(o.Data), o.Src)
	}
	var pages []byte
	for _, sh := range d.Shmem {
		if sh.Ino == 6 {
			b, err := os.ReadFile(filepath.Join(dir, image.PagesName(sh.PagesID)))
			if err != nil {
				t.Fatal(err)
			}
			pages = b
		}
	}
	if len(pages) < len(content) || !bytes.Equal(pages[:len(content)], content) {
		t.Errorf("segment 6's pages image: %d bytes, want its %d bytes first", len(pages), len(content))
	}
}
