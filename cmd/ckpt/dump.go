//go:build linux && amd64

package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/ckpt/ckpt"
)

func dumpCmd() *cobra.Command {
	var c commonFlags
	var pid int
	var leaveRunning bool
	var cpuCap string
	var timeout int
	var extUnixSk, tcpEstablished, tcpClose bool
	var ghostLimit string
	var pageServer, noSync bool
	var ps pageServerFlags
	var tf trackFlags
	cmd := &cobra.Command{
		Use:   "dump -t PID -D DIR",
		Short: "Checkpoint a running task into a directory of images (the task is killed unless --leave-running)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := c.check(cmd); err != nil {
				return err
			}
			if pid <= 0 {
				return fmt.Errorf("dump needs -t PID")
			}
			var psAddr string
			if pageServer {
				if ps.address == "" || ps.port <= 0 || ps.port > 65535 {
					return fmt.Errorf("--page-server needs --address and --port of a running ckpt page-server")
				}
				psAddr = ps.hostPort()
			} else if cmd.Flags().Changed("address") || cmd.Flags().Changed("port") {
				return fmt.Errorf("--address and --port name a page server: add --page-server")
			}
			limit, err := parseSize(ghostLimit)
			if err != nil {
				return fmt.Errorf("--ghost-limit: %w", err)
			}
			log, err := c.logger()
			if err != nil {
				return err
			}
			defer log.close()
			ctx, stop := interruptOnSignals()
			defer stop()
			meter, endLine := log.progressLine("dump")
			st, err := ckpt.Dump(ckpt.DumpOptions{
				Pid: pid, ImagesDir: c.imagesDir, LeaveRunning: leaveRunning, ShellJob: c.shellJob, FileLocks: c.fileLocks, ExtUnixSk: extUnixSk,
				FreezeTimeout: time.Duration(timeout) * time.Second, CPUCap: cpuCap, Logf: log.progress,
				Context: ctx, GhostLimit: limit, LinkRemap: c.linkRemap, TcpEstablished: tcpEstablished, TcpClose: tcpClose, Progress: meter,
				PageServer:    psAddr,
				PrevImagesDir: tf.prevImagesDir, TrackMem: tf.trackMem, Notef: notef, NoSync: noSync,
			})
			endLine()
			if err != nil {
				return log.fail(err)
			}
			what := "killed"
			if leaveRunning {
				what = "left running"
			}
			if psAddr != "" {
				log.result("pages sent to the page server %s; the other images are in %s too", psAddr, c.imagesDir)
			}
			log.result("dumped task %d into %s (the tree %s): %d pages (%d zero pages left out%s), %d bytes of images, frozen for %v", pid, c.imagesDir, what, st.PagesWritten, st.ZeroPages, inParentNote(st), st.ImageBytes, st.FrozenFor)
			return nil
		},
	}
	// As in CRIU: at dump, "none" leaves out cpuinfo.img; every other
	// value records the CPU, and restore --cpu-cap decides what it checks.
	// Before register, which refuses the CRIU options left unimplemented.
	cmd.Flags().StringVar(&cpuCap, "cpu-cap", ckpt.CPUCapIns, "none: do not record the CPU (cpuinfo.img), so that no restore can compare it; any other value records it ("+strings.Join(ckpt.CPUCapValues, ", ")+")")
	cmd.Flags().IntVar(&timeout, "timeout", 10, "seconds to wait for the tree to stop")
	cmd.Flags().BoolVar(&tcpEstablished, "tcp-established", false, "dump established TCP connections with their state and queues (TCP_REPAIR); one to a peer outside the tree stays locked in the network (nftables) until the restore")
	cmd.Flags().BoolVar(&tcpClose, "tcp-close", false, "dump established TCP connections without their state; the restore makes them closed")
	cmd.Flags().BoolVar(&extUnixSk, "ext-unix-sk", false, "dump unix datagram sockets connected to a socket outside the tree; the restore connects them to its name again")
	cmd.Flags().StringVar(&ghostLimit, "ghost-limit", "1M", "largest file, unlinked but still open or mapped, whose contents the dump saves (bytes, or with a K, M or G suffix); a larger one is refused")
	// CRIU takes --pidfile on every command; only restore (and CRIU's
	// daemons) write one.
	c.refuse(cmd.Flags(), "pidfile", "--pidfile is a restore option (the file for the restored task's PID); a dump writes none", false)
	cmd.Flags().BoolVar(&pageServer, "page-server", false, "send the images to a ckpt page-server (--address, --port): the pages images go only there, the others are written in -D too")
	ps.register(cmd, "address of the page server")
	tf.register(cmd)
	c.register(cmd.Flags())
	cmd.Flags().IntVarP(&pid, "tree", "t", 0, "PID of the task to dump")
	cmd.Flags().BoolVarP(&leaveRunning, "leave-running", "R", false, "let the task go on after the dump")
	cmd.Flags().BoolVar(&noSync, "no-sync", false, noSyncUsage)
	return cmd
}

// noSyncUsage is the help of dump's and pre-dump's --no-sync.
const noSyncUsage = "leave the images in the page cache, as CRIU does, instead of syncing them to disk before the tree is killed or let go: faster, but a crash of the machine soon after can lose the dump"

// signalNames are the signals that stop a dump, by the names messages give.
var signalNames = map[os.Signal]string{syscall.SIGINT: "SIGINT", syscall.SIGTERM: "SIGTERM", syscall.SIGHUP: "SIGHUP"}

// interruptOnSignals returns a context that SIGINT, SIGTERM or SIGHUP
// cancels, naming the signal, and a function that stops listening.
func interruptOnSignals() (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		select {
		case sig := <-sigs:
			fmt.Fprintf(os.Stderr, "ckpt: %s: stopping the dump; the tree goes on as it was\n", signalNames[sig])
			cancel(fmt.Errorf("interrupted by %s", signalNames[sig]))
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(sigs)
		close(done)
		cancel(nil)
	}
}

// parseSize reads a size as CRIU's --ghost-limit takes it: a number of
// bytes, or of KiB, MiB or GiB with a K, M or G suffix.
func parseSize(s string) (int64, error) {
	mult := int64(1)
	if n := len(s); n > 0 {
		switch s[n-1] {
		case 'K', 'k':
			mult = 1 << 10
		case 'M', 'm':
			mult = 1 << 20
		case 'G', 'g':
			mult = 1 << 30
		}
		if mult != 1 {
			s = s[:n-1]
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 || v > math.MaxInt64/mult {
		return 0, fmt.Errorf("%q is not a size (bytes, or a number with K, M or G)", s)
	}
	return v * mult, nil
}
