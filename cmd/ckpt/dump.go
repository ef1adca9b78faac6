package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/ckpt/ckpt/internal/dump"
)

func dumpCmd() *cobra.Command {
	var c commonFlags
	var pid int
	var leaveRunning bool
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
			logf, closeLog, err := c.logger()
			if err != nil {
				return err
			}
			defer closeLog()
			st, err := dump.Dump(dump.Options{
				Pid: pid, ImagesDir: c.imagesDir, LeaveRunning: leaveRunning,
				ShellJob: c.shellJob, Logf: logf, FreezeTimeout: time.Duration(c.timeout) * time.Second,
			})
			if err != nil {
				return err
			}
			logf("dumped task %d: %d pages (%d zero pages left out), %d bytes of images, frozen for %v", pid, st.PagesWritten, st.ZeroPages, st.ImageBytes, st.FrozenFor)
			return nil
		},
	}
	c.register(cmd.Flags())
	cmd.Flags().IntVarP(&pid, "tree", "t", 0, "PID of the task to dump")
	cmd.Flags().BoolVarP(&leaveRunning, "leave-running", "R", false, "let the task go on after the dump")
	return cmd
}
