//go:build linux && amd64

// Command ckpt checkpoints and restores Linux processes (x86_64 and ia32).
// This file and its siblings are the CLI only: flags, output, exit codes.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"runtime/debug"

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

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// run runs the command line args and returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	root := &cobra.Command{
		Use:           "ckpt",
		Short:         "Checkpoint and restore Linux processes, native x86_64 and 32-bit alike",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version(),
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	// As CRIU's: "Version: ..." for --version and -V.
	root.Flags().BoolP("version", "V", false, "print the version and exit")
	root.SetVersionTemplate("{{.Version}}\n")
	// CRIU reads configuration files unless told not to; ckpt reads none.
	root.PersistentFlags().Bool("no-default-config", false, "accepted as CRIU's; ckpt reads no configuration file")
	root.AddCommand(checkCmd(), dumpCmd(), preDumpCmd(), restoreCmd(), showCmd(), netUnlockCmd(), lazyPagesCmd(), trackHolderCmd(), pageServerCmd())
	root.SetArgs(normalizeArgs(args))
	if err := root.Execute(); err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			return ee.code
		}
		fmt.Fprintln(stderr, "ckpt:", err)
		return 1
	}
	return 0
}

// version is what --version prints: the module version and the commit
// ckpt was built from, when the build recorded them.
func version() string {
	v, rev := "(devel)", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				rev = s.Value
			}
		}
	}
	out := "Version: ckpt " + v
	if rev != "" {
		out += "\nGitID: " + rev
	}
	return out
}
