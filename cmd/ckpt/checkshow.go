package main

import (
	"fmt"
	"io"

	"github.com/ckpt/ckpt/internal/imgsummary"
	"github.com/ckpt/ckpt/internal/kerndat"
)

// show prints the summary of the dump in dir.
func show(w io.Writer, dir string) error { return imgsummary.Write(w, dir) }

// check prints one line per kernel probe and fails with exit status 1
// when a probe that checkpoint/restore needs failed.
func check(w io.Writer) error {
	rs := kerndat.Probe()
	for _, r := range rs {
		fmt.Fprintln(w, r)
	}
	native := kerndat.RequiredOK(rs)
	compat := native
	for _, r := range rs {
		if r.Name == kerndat.CompatProbe && !r.OK {
			compat = false
		}
	}
	fmt.Fprintf(w, "summary: native (x86_64) checkpoint/restore: %s; ia32 (compat): %s\n", yesNo(native), yesNo(compat))
	if !native {
		return exitError{1}
	}
	return nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
