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
	// refused are the options accepted by the parser only to be refused
	// by name, each with its message.
	refused map[string]string
}

// criuUnimplemented are CRIU options that ckpt does not implement yet. They
// are accepted by the parser only to be refused by name.
var criuUnimplemented = []string{
	"tcp-established", "tcp-close", "ext-unix-sk", "file-locks", "link-remap",
	"ghost-limit", "manage-cgroups", "cgroup-root", "evasive-devices",
	"inherit-fd", "external", "freeze-cgroup", "track-mem", "prev-images-dir",
	"page-server", "address", "port", "lazy-pages", "auto-dedup", "cpu-cap",
	"network-lock", "root", "irmap-scan-path", "skip-mnt", "enable-fs",
	"action-script", "exec-cmd", "veth-pair", "empty-ns", "lsm-profile",
	"display-stats", "status-fd", "stream", "tls", "tls-cacert", "tls-cert",
	"tls-key", "join-ns", "ext-mount-map", "force-irmap", "weak-sysctls",
	"skip-in-flight", "allow-uprobes", "mntns-compat-mode", "pre-dump-mode",
	"leave-stopped", "orphan-pts-master", "remove-tmpfs-mount", "unprivileged",
	"shell-job-legacy", "tcp-skip-in-flight", "images-dir-fd", "cgroup-props",
	"cgroup-props-file", "cgroup-dump-controller", "cgroup-yard", "lsm-mount-context",
	"network-lock-method", "timens", "file-validation",
}

func (c *commonFlags) register(fs *pflag.FlagSet) {
	fs.StringVarP(&c.imagesDir, "images-dir", "D", ".", "directory for the image files")
	fs.StringVarP(&c.workDir, "work-dir", "W", "", "directory for the log file (default: the images directory)")
	fs.StringVarP(&c.logFile, "log-file", "o", "", "write the log to this file (relative to the work directory)")
	fs.CountVarP(&c.verbosity, "verbosity", "v", "verbosity: -v, -vv, ... or -v0..-v4")
	fs.BoolVarP(&c.shellJob, "shell-job", "j", false, "the task's stdio is a tty or pipe of the shell: inherit it at restore")
	for _, name := range criuUnimplemented {
		c.refuse(fs, name, fmt.Sprintf("option --%s is not implemented by ckpt yet", name), true)
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

// logger returns a printf-style logger following -v and -o, and a closer.
func (c *commonFlags) logger() (func(string, ...any), func(), error) {
	var w io.Writer = os.Stderr
	closer := func() {}
	if c.logFile != "" && c.logFile != "-" {
		path := c.logFile
		if !filepath.IsAbs(path) {
			dir := c.workDir
			if dir == "" {
				dir = c.imagesDir
			}
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return nil, nil, fmt.Errorf("work directory: %w", err)
			}
			path = filepath.Join(dir, path)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return nil, nil, fmt.Errorf("log file: %w", err)
		}
		w = f
		closer = func() { f.Close() }
	}
	verbose := c.verbosity >= 1
	logf := func(format string, args ...any) {
		if verbose {
			fmt.Fprintf(w, "%s %s\n", time.Now().Format("15:04:05.000000"), strings.TrimRight(fmt.Sprintf(format, args...), "\n"))
		}
	}
	return logf, closer, nil
}
