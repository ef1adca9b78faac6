//go:build linux && amd64

package main

import (
	"os"

	"github.com/ckpt/ckpt"
)

// progressLine starts the line that shows how much memory a dump or a
// restore has copied, on stderr if it is a terminal. With -v and no -o
// file the log goes to stderr, and the line would be cut by its lines:
// none is shown then. stop erases it.
func (l *logger) progressLine(verb string) (p *ckpt.Progress, stop func()) {
	if l.verbose && !l.file {
		return nil, func() {}
	}
	p = &ckpt.Progress{}
	return p, ckpt.ShowProgress(os.Stderr, verb, p)
}
