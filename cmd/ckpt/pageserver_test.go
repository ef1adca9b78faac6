//go:build linux && amd64

package main

import (
	"strings"
	"testing"
)

// The page server's options are checked before anything is done.
func TestPageServerOptions(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"dump", "-t", "1", "-D", t.TempDir(), "--page-server"}, "--page-server needs --address and --port"},
		{[]string{"dump", "-t", "1", "-D", t.TempDir(), "--page-server", "--address", "127.0.0.1"}, "--page-server needs --address and --port"},
		{[]string{"dump", "-t", "1", "-D", t.TempDir(), "--address", "127.0.0.1", "--port", "1"}, "add --page-server"},
		{[]string{"page-server", "-D", t.TempDir(), "--port", "70000"}, "not a TCP port"},
	} {
		code, _, errs := runArgs(t, c.args...)
		if code == 0 || !strings.Contains(errs, c.want) {
			t.Errorf("ckpt %v: exit %d, %q; want %q", c.args, code, errs, c.want)
		}
	}
}
