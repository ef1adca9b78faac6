//go:build linux && amd64

package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ckpt/ckpt"
)

func restoreCmd() *cobra.Command {
	var c commonFlags
	var detach bool
	var pidfile, cpuCap string
	var tcpClose, lazyPages bool
	cmd := &cobra.Command{
		Use:   "restore -D DIR",
		Short: "Restore a dumped task; without -d, wait for it and exit with its status",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := c.check(cmd); err != nil {
				return err
			}
			log, err := c.logger()
			if err != nil {
				return err
			}
			defer log.close()
			meter, endLine := log.progressLine("restore")
			p, err := ckpt.Restore(ckpt.RestoreOptions{ImagesDir: c.imagesDir, ShellJob: c.shellJob, FileLocks: c.fileLocks, CPUCap: cpuCap, Logf: log.progress, TcpClose: tcpClose, Progress: meter, LazyPages: lazyPages})
			endLine()
			if err != nil {
				return log.fail(err)
			}
			log.result("restored task %d from %s in %v", p.Pid, c.imagesDir, p.Took)
			if pidfile != "" {
				if err := os.WriteFile(pidfile, []byte(strconv.Itoa(p.Pid)+"\n"), 0o644); err != nil {
					return log.fail(fmt.Errorf("pidfile: %w", err))
				}
			}
			if detach {
				return nil
			}
			ws, err := p.Wait()
			if err != nil {
				return log.fail(fmt.Errorf("wait for restored task %d: %w", p.Pid, err))
			}
			if ws.Signaled() {
				msg := fmt.Sprintf("restored task %d was killed by signal %d (%v)", p.Pid, int(ws.Signal()), ws.Signal())
				fmt.Fprintf(os.Stderr, "ckpt: %s\n", msg)
				log.result("%s", msg)
				return exitError{128 + int(ws.Signal())}
			}
			log.result("restored task %d exited with status %d", p.Pid, ws.ExitStatus())
			if code := ws.ExitStatus(); code != 0 {
				return exitError{code}
			}
			return nil
		},
	}
	// Before register, which refuses the CRIU options left unimplemented.
	cmd.Flags().StringVar(&cpuCap, "cpu-cap", ckpt.CPUCapIns, "CPU check: ins refuses a dump from a CPU with instruction-set features this one lacks; fpu checks only the xsave state in use ("+strings.Join(ckpt.CPUCapValues, ", ")+")")
	// CRIU's --timeout bounds the freeze at dump; a restore has none.
	c.refuse(cmd.Flags(), "timeout", "--timeout is a dump option (how long to wait for the tree to stop); restore takes none", false)
	cmd.Flags().BoolVar(&lazyPages, "lazy-pages", false, "leave private anonymous memory to the lazy-pages server (ckpt lazy-pages -D DIR, started first): the tree runs at once and its pages come in on first touch and in the background")
	cmd.Flags().BoolVar(&tcpClose, "tcp-close", false, "restore the dumped established TCP connections closed")
	cmd.Flags().Bool("tcp-established", false, "accepted as CRIU does; the images say which TCP connections were dumped with their state")
	// CRIU wants --ext-unix-sk at restore too; here the images say which
	// sockets were connected outside the tree.
	cmd.Flags().Bool("ext-unix-sk", false, "accepted as CRIU does; the images say which unix sockets lead outside the tree")
	c.refuse(cmd.Flags(), "ghost-limit", "--ghost-limit is a dump option (the largest unlinked file the dump saves); restore takes none", false)
	c.register(cmd.Flags())
	cmd.Flags().BoolVarP(&detach, "restore-detached", "d", false, "return once the task runs, without waiting for it")
	cmd.Flags().StringVar(&pidfile, "pidfile", "", "write the restored task's PID to this file")
	return cmd
}
