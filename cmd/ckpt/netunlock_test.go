//go:build linux && amd64

package main

import (
	"strings"
	"testing"
)

// net-unlock needs a dump: without one it fails, naming the directory.
func TestNetUnlockNoDump(t *testing.T) {
	dir := t.TempDir()
	code, out, errs := runArgs(t, "net-unlock", "-D", dir)
	if code != 1 || out != "" || !strings.Contains(errs, "net-unlock "+dir+":") {
		t.Errorf("exit %d, %q %q", code, out, errs)
	}
	code, _, errs = runArgs(t, "net-unlock", "extra")
	if code != 1 || !strings.Contains(errs, "unknown command") && !strings.Contains(errs, "accepts 0 arg") {
		t.Errorf("an argument: exit %d, %q", code, errs)
	}
}
