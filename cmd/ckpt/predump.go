//go:build linux && amd64

package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/ckpt/ckpt"
)

// trackFlags are CRIU's pre-copy options, which pre-dump and dump share.
type trackFlags struct {
	prevImagesDir string
	trackMem      bool
}

func (t *trackFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&t.prevImagesDir, "prev-images-dir", "", "images directory of the previous dump of a pre-copy chain (relative to -D, or absolute): pages unchanged since are left there (needs --track-mem)")
	cmd.Flags().BoolVar(&t.trackMem, "track-mem", false, "track the tree's writes (userfaultfd write protection, PAGEMAP_SCAN): with --prev-images-dir only the pages written since that dump are saved")
}

// notef prints a note for the user on stderr.
func notef(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "ckpt: note: "+format+"\n", args...)
}

func inParentNote(st *ckpt.DumpStats) string {
	if st.PagesInParent == 0 {
		return ""
	}
	return fmt.Sprintf(", %d pages left in the parent dump", st.PagesInParent)
}

func preDumpCmd() *cobra.Command {
	var c commonFlags
	var pid, timeout int
	var tf trackFlags
	var noSync bool
	cmd := &cobra.Command{
		Use:   "pre-dump -t PID -D DIR [--prev-images-dir REL]",
		Short: "Save the memory of a running tree and track its writes, for a later dump --track-mem to save only what changed (the tree goes on)",
		Long: `pre-dump saves the memory of the tree (pagemap, pages and mm images, as
CRIU's pre-dump, plus the rest of a dump) and leaves it running with its
writes tracked. A later "pre-dump --prev-images-dir" or
"dump --prev-images-dir --track-mem" saves only the pages written since and
links to this directory ("parent"); restore follows the chain.

The tracking lives in a small background ckpt process that holds the
tasks' userfaultfds and listens on ` + "DIR/.ckpt-track.sock" + `; the next dump of
the chain takes them and it exits. It also exits when every tracked task
has exited, or on SIGTERM; a dump that finds it gone saves every page.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := c.check(cmd); err != nil {
				return err
			}
			if pid <= 0 {
				return fmt.Errorf("pre-dump needs -t PID")
			}
			log, err := c.logger()
			if err != nil {
				return err
			}
			defer log.close()
			ctx, stop := interruptOnSignals()
			defer stop()
			meter, endLine := log.progressLine("pre-dump")
			st, err := ckpt.Dump(ckpt.DumpOptions{
				Pid: pid, ImagesDir: c.imagesDir, PreDump: true, LeaveRunning: true, TrackMem: true,
				PrevImagesDir: tf.prevImagesDir, ShellJob: c.shellJob, FileLocks: c.fileLocks,
				FreezeTimeout: time.Duration(timeout) * time.Second, Logf: log.progress, Notef: notef,
				Context: ctx, Progress: meter, NoSync: noSync,
			})
			endLine()
			if err != nil {
				return log.fail(err)
			}
			log.result("pre-dumped task %d into %s (the tree left running, writes tracked): %d pages (%d zero pages left out%s), %d bytes of images, frozen for %v", pid, c.imagesDir, st.PagesWritten, st.ZeroPages, inParentNote(st), st.ImageBytes, st.FrozenFor)
			return nil
		},
	}
	cmd.Flags().IntVar(&timeout, "timeout", 10, "seconds to wait for the tree to stop")
	tf.register(cmd)
	// A pre-dump always tracks and always leaves the tree running.
	cmd.Flags().Lookup("track-mem").Hidden = true
	cmd.Flags().BoolP("leave-running", "R", true, "accepted as CRIU's: a pre-dump always leaves the tree running")
	_ = cmd.Flags().MarkHidden("leave-running")
	c.register(cmd.Flags())
	cmd.Flags().IntVarP(&pid, "tree", "t", 0, "PID of the task to pre-dump")
	cmd.Flags().BoolVar(&noSync, "no-sync", false, noSyncUsage)
	return cmd
}

// trackHolderCmd runs the process a pre-dump leaves to hold the write
// tracking (see ckpt.RunTrackHolder); not for users.
func trackHolderCmd() *cobra.Command {
	return &cobra.Command{
		Use:                ckpt.TrackHolderCommand,
		Hidden:             true,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return ckpt.RunTrackHolder(args)
		},
	}
}
