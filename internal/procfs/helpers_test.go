package procfs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// readTestdata returns the contents of testdata/name.
func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// wantErr checks that err is non-nil and, if sub is not empty, mentions sub.
func wantErr(t *testing.T, err error, sub string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got nil error, want error containing %q", sub)
	}
	if sub != "" && !strings.Contains(err.Error(), sub) {
		t.Fatalf("error %q does not contain %q", err, sub)
	}
}
