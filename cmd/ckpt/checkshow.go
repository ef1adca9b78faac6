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
	if !kerndat.RequiredOK(rs) {
		return exitError{1}
	}
	return nil
}
