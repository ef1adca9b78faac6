//go:build linux && amd64

package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// commonFlags are the CRIU options that dump and restore share.
type commonFlags struct {
	imagesDir string
	workDir   string
	logFile   string
	verbosity int
	shellJob  bool
	fileLocks bool
	linkRemap bool
	// refused are the options accepted by the parser only to be refused
	// by name, each with its message.
	refused map[string]string
}

// criuUnimplemented are CRIU options that ckpt does not implement yet. They
// are accepted by the parser only to be refused by name. Those that
// stand alone (or take an optional =VALUE) are in criuUnimplemented;
// those that take a value (--cgroup-root DIR) in criuUnimplementedValue,
// so that the value is consumed with the option rather than taken for a
// command.
var criuUnimplemented = []string{
	"tcp-established", "tcp-close", "ext-unix-sk",
	"manage-cgroups", "evasive-devices", "track-mem", "page-server",
	"lazy-pages", "auto-dedup", "cpu-cap", "exec-cmd", "display-stats",
	"stream", "tls", "tls-no-cn-verify", "force-irmap", "weak-sysctls",
	"skip-in-flight", "allow-uprobes", "mntns-compat-mode", "leave-stopped",
	"orphan-pts-master", "remove-tmpfs-mount", "unprivileged", "shell-job-legacy",
	"tcp-skip-in-flight", "network-lock-method", "timens", "log-pid",
	"check-only", "restore-sibling", "ms",
}

// criuUnimplementedValue are CRIU options that take a value (criu(8)).
var criuUnimplementedValue = []string{
	"cgroup-root", "inherit-fd", "external", "freeze-cgroup",
	"prev-images-dir", "address", "port", "network-lock", "root",
	"irmap-scan-path", "skip-mnt", "enable-fs", "action-script", "veth-pair",
	"empty-ns", "lsm-profile", "status-fd", "tls-cacert", "tls-cacrl",
	"tls-cert", "tls-key", "join-ns", "ext-mount-map", "pre-dump-mode",
	"images-dir-fd", "cgroup-props", "cgroup-props-file",
	"cgroup-dump-controller", "cgroup-yard", "lsm-mount-context",
	"file-validation", "ps-socket", "config",
}

func (c *commonFlags) register(fs *pflag.FlagSet) {
	fs.StringVarP(&c.imagesDir, "images-dir", "D", ".", "directory for the image files")
	fs.StringVarP(&c.workDir, "work-dir", "W", "", "directory for the log file (default: the images directory)")
	fs.StringVarP(&c.logFile, "log-file", "o", "", "write the log to this file (relative to the work directory)")
	fs.CountVarP(&c.verbosity, "verbosity", "v", "verbosity: -v, -vv, ... or -v0..-v4")
	fs.BoolVarP(&c.shellJob, "shell-job", "j", false, "the task's stdio is a tty or pipe of the shell: inherit it at restore")
	fs.BoolVarP(&c.fileLocks, "file-locks", "l", false, "dump the file locks (POSIX, OFD, flock) the tree holds, and take them again at restore")
	// CRIU's --link-remap: a dump links a file unlinked while it keeps
	// other links at DIR/link_remap.ID, which the restore removes
	// (internal/kinds/fd/linked.go); without it ckpt's dump changes
	// nothing on disk. A restore takes it and needs nothing of it: the
	// images say which encoding the dump used.
	fs.BoolVar(&c.linkRemap, "link-remap", false, "dump: link a file unlinked while it keeps other links at link_remap.ID in its directory, as CRIU does, for the restore to remove (the dump restores once, and CRIU restores it); without it the dump changes nothing on disk, restores any number of times, and CRIU refuses it. Restore: accepted")
	for _, name := range criuUnimplemented {
		c.refuse(fs, name, fmt.Sprintf("option --%s is not implemented by ckpt yet", name), true)
	}
	for _, name := range criuUnimplementedValue {
		c.refuse(fs, name, fmt.Sprintf("option --%s is not implemented by ckpt yet", name), false)
	}
}

// refuse registers a hidden option name that check refuses with msg,
// unless the command registered name itself. noValue lets the option
// stand alone (--name); without it, it takes a value as CRIU's does.
func (c *commonFlags) refuse(fs *pflag.FlagSet, name, msg string, noValue bool) {
	if fs.Lookup(name) != nil {
		return
	}
	if c.refused == nil {
		c.refused = map[string]string{}
	}
	fs.String(name, "", "refused: "+msg)
	if noValue {
		fs.Lookup(name).NoOptDefVal = "true"
	}
	_ = fs.MarkHidden(name)
	c.refused[name] = msg
}

// check refuses the options registered by refuse, by name.
func (c *commonFlags) check(cmd *cobra.Command) error {
	for name, msg := range c.refused {
		if cmd.Flags().Changed(name) {
			return errors.New(msg)
		}
	}
	return nil
}

// logger is where a command's log goes: progress (with -v) and, always
// when -o names a file, the summary of what was done and the error of a
// failed command.
type logger struct {
	w       io.Writer // stderr, or the -o file
	file    bool      // w is the -o file
	verbose bool
	closer  func()
}

func (l *logger) line(format string, args ...any) {
	fmt.Fprintf(l.w, "%s %s\n", time.Now().Format("15:04:05.000000"), strings.TrimRight(fmt.Sprintf(format, args...), "\n"))
}

// progress logs a step, with -v.
func (l *logger) progress(format string, args ...any) {
	if l.verbose {
		l.line(format, args...)
	}
}

// result logs what was done: always into the -o file, on stderr with -v.
func (l *logger) result(format string, args ...any) {
	if l.verbose || l.file {
		l.line(format, args...)
	}
}

// fail logs the error of a failed command into the -o file (main prints
// it on stderr) and returns it.
func (l *logger) fail(err error) error {
	if err != nil && l.file {
		var ee exitError
		if !errors.As(err, &ee) {
			l.line("Error: %v", err)
		}
	}
	return err
}

func (l *logger) close() { l.closer() }

// logger opens the log following -v and -o.
func (c *commonFlags) logger() (*logger, error) {
	l := &logger{w: os.Stderr, closer: func() {}, verbose: c.verbosity >= 1}
	if c.logFile != "" && c.logFile != "-" {
		path := c.logFile
		if !filepath.IsAbs(path) {
			dir := c.workDir
			if dir == "" {
				dir = c.imagesDir
			}
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return nil, fmt.Errorf("work directory: %w", err)
			}
			path = filepath.Join(dir, path)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return nil, fmt.Errorf("log file: %w", err)
		}
		l.w, l.file = f, true
		l.closer = func() { f.Close() }
	}
	return l, nil
}
