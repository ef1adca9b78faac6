//go:build linux && amd64

package main

import (
	"fmt"
	"io"

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
