//go:build linux && amd64

package image

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestWriteAtCached: what it writes in pieces reads back whole at its
// offset, and an error says how much went.
func TestWriteAtCached(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "img"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 3*CacheWriteMax+100)
	for i := range b {
		b[i] = byte(i * 7)
	}
	if n, err := WriteAtCached(f, b, 4096); n != len(b) || err != nil {
		t.Fatalf("WriteAtCached: %d, %v; want %d, nil", n, err, len(b))
	}
	got := make([]byte, len(b))
	if err := ReadFullAt(f, got, 4096); err != nil || !bytes.Equal(got, b) {
		t.Fatalf("read back: %v, equal %v", err, bytes.Equal(got, b))
	}
	r, err := os.Open(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if n, err := WriteAtCached(r, b, 0); n != 0 || err == nil {
		t.Errorf("write to a read-only file: %d, %v; want 0 and an error", n, err)
	}
}
