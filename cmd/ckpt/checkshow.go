//go:build linux && amd64

package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/ckpt/ckpt"
)

// show prints the summary of the dump in dir.
func show(w io.Writer, dir string) error { return ckpt.Show(w, dir) }

// check prints one line per kernel probe and a summary, and fails with
// exit status 1 when a probe that checkpoint/restore needs failed.
func check(w io.Writer) error {
	rs := ckpt.Check()
	for _, r := range rs {
		fmt.Fprintln(w, r)
	}
	fmt.Fprintln(w, ckpt.CheckSummary(rs))
	if !ckpt.CheckOK(rs) {
		return exitError{1}
	}
	return nil
}

// checkFeature answers `check --feature NAME` as CRIU's names go: "list"
// lists the names ckpt answers; an unsupported or unknown feature exits 1.
func checkFeature(w io.Writer, name string) error {
	names := ckpt.CheckFeatureNames()
	if name == "list" {
		fmt.Fprintln(w, strings.Join(names, " "))
		return nil
	}
	r, ok := ckpt.CheckFeature(name)
	if !ok {
		return fmt.Errorf("unknown feature %q: ckpt answers %s (see `ckpt check` for all it probes)", name, strings.Join(names, ", "))
	}
	if !r.OK {
		fmt.Fprintf(w, "%s is not supported (%s: %s)\n", name, r.Name, r.Detail)
		return exitError{1}
	}
	fmt.Fprintf(w, "%s is supported\n", name)
	return nil
}
