//go:build linux && amd64

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

func runArgs(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// CRIU's global options: --version, -V, --no-default-config.
func TestVersionAndGlobalOptions(t *testing.T) {
	for _, a := range []string{"--version", "-V"} {
		code, out, errs := runArgs(t, a)
		if code != 0 || !strings.HasPrefix(out, "Version: ") {
			t.Errorf("ckpt %s: exit %d, %q %q", a, code, out, errs)
		}
	}
	for _, args := range [][]string{
		{"--no-default-config", "check", "--feature", "list"},
		{"check", "--no-default-config", "--feature", "list"},
	} {
		code, out, errs := runArgs(t, args...)
		if code != 0 || !strings.Contains(out, "compat_cr") {
			t.Errorf("ckpt %v: exit %d, %q %q", args, code, out, errs)
		}
	}
}

// check --feature answers CRIU's names that ckpt probes, and refuses
// others as unknown with a non-zero exit.
func TestCheckFeature(t *testing.T) {
	code, _, errs := runArgs(t, "check", "--feature", "no_such_feature")
	if code == 0 || !strings.Contains(errs, `unknown feature "no_such_feature"`) {
		t.Errorf("unknown feature: exit %d, %q", code, errs)
	}
	if os.Geteuid() != 0 {
		t.Skip("the probes need root")
	}
	code, out, errs := runArgs(t, "check", "--feature", "clone3_set_tid")
	if !(code == 0 && out == "clone3_set_tid is supported\n") && !(code == 1 && strings.HasPrefix(out, "clone3_set_tid is not supported")) {
		t.Errorf("check --feature clone3_set_tid: exit %d, %q %q", code, out, errs)
	}
}

// Options that CRIU gives a value are refused by name with it.
func TestRefusedValueOptions(t *testing.T) {
	cmds := map[string]*cobra.Command{"dump": dumpCmd(), "restore": restoreCmd()}
	for _, cmd := range []string{"dump", "restore"} {
		for _, o := range append(append([]string{}, criuUnimplementedValue...), "cgroup-root") {
			if implements(cmds[cmd], o) {
				continue
			}
			code, _, errs := runArgs(t, cmd, "-D", t.TempDir(), "--"+o, "v")
			if code == 0 || !strings.Contains(errs, "--"+o+" is not implemented") {
				t.Errorf("%s --%s v: exit %d, %q", cmd, o, code, errs)
			}
		}
	}
	// --ghost-limit takes a size at dump and is refused by name at restore.
	if code, _, errs := runArgs(t, "dump", "-t", "1", "-D", t.TempDir(), "--ghost-limit", "v"); code == 0 || !strings.Contains(errs, "--ghost-limit") || !strings.Contains(errs, "not a size") {
		t.Errorf("dump --ghost-limit v: exit %d, %q", code, errs)
	}
	if code, _, errs := runArgs(t, "restore", "-D", t.TempDir(), "--ghost-limit", "1M"); code == 0 || !strings.Contains(errs, "--ghost-limit is a dump option") {
		t.Errorf("restore --ghost-limit 1M: exit %d, %q", code, errs)
	}
}

// implements says whether cmd has option name of its own, not one
// registered only to be refused.
func implements(cmd *cobra.Command, name string) bool {
	f := cmd.Flags().Lookup(name)
	return f != nil && !strings.HasPrefix(f.Usage, "refused: ")
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "4096": 4096, "1K": 1 << 10, "2M": 2 << 20, "1g": 1 << 30} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "M", "-1", "1T", "x1M", "99999999999G"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) accepted", in)
		}
	}
}

// The -o log file holds the error of a failed command without -v.
func TestLogFileError(t *testing.T) {
	dir := t.TempDir()
	code, _, errs := runArgs(t, "restore", "-D", dir, "-o", "r.log")
	if code == 0 {
		t.Fatalf("restore of an empty dir succeeded")
	}
	b, _ := os.ReadFile(filepath.Join(dir, "r.log"))
	if !strings.Contains(string(b), "Error: ") || !strings.Contains(string(b), "holds no dump") {
		t.Errorf("r.log: %q (stderr %q)", b, errs)
	}
}
