package imgsummary

import (
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/ckpt/ckpt/internal/model"
)

// FuzzLoad writes a valid dump with one of its files replaced by the
// fuzzer's bytes, and reads it with model.Load and Write: neither may
// panic, whatever the bytes.
func FuzzLoad(f *testing.F) {
	valid := synthDump(f, testExe(f))
	names := sortedNames(valid)
	for i, n := range names {
		b := valid[n]
		f.Add(uint8(i), b)
		f.Add(uint8(i), b[:len(b)/2])
		if len(b) > 12 {
			m := append([]byte(nil), b...)
			m[12] ^= 0xff
			f.Add(uint8(i), m)
		}
	}
	// One directory for the whole run: each input replaces one file and
	// puts it back afterwards.
	dir := f.TempDir()
	writeDump(f, dir, valid)
	var mu sync.Mutex
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		mu.Lock()
		defer mu.Unlock()
		name := names[int(which)%len(names)]
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := os.WriteFile(path, valid[name], 0o600); err != nil {
				t.Fatal(err)
			}
		}()
		if im, err := model.Load(dir); err == nil && im == nil {
			t.Fatal("model.Load: nil images and no error")
		}
		_ = Write(io.Discard, dir)
	})
}
