//go:build linux && amd64

// Command ckpt checkpoints and restores Linux processes (x86_64 and ia32).
// This file and its siblings are the CLI only: flags, output, exit codes.
package main

import (
	"errors"
	"fmt"
	"os"
	"regexp"

	"github.com/spf13/cobra"
)

// exitError carries an exit status through cobra.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

var verboseShort = regexp.MustCompile(`^-v([0-9])$`)

// normalizeArgs rewrites CRIU's "-v4" spelling, which pflag cannot parse
// for a flag that may also stand alone.
func normalizeArgs(args []string) []string {
	out := make([]string, 0, len(args))
	for _, a := range args {
		if m := verboseShort.FindStringSubmatch(a); m != nil {
			a = "--verbosity=" + m[1]
		}
		out = append(out, a)
	}
	return out
}

func main() {
	root := &cobra.Command{
		Use:           "ckpt",
		Short:         "Checkpoint and restore Linux processes, native x86_64 and 32-bit alike",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(checkCmd(), dumpCmd(), restoreCmd(), showCmd())
	root.SetArgs(normalizeArgs(os.Args[1:]))
	if err := root.Execute(); err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		fmt.Fprintln(os.Stderr, "ckpt:", err)
		os.Exit(1)
	}
}
