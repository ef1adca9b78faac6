package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ckpt/ckpt/internal/dump"
	"github.com/ckpt/ckpt/internal/restore"
)

func dumpCmd() *cobra.Command {
	var c commonFlags
	var pid int
	var leaveRunning bool
	var cpuCap string
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
			if !slices.Contains(restore.CPUCapValues, cpuCap) {
				return fmt.Errorf("--cpu-cap=%s: want one of %s", cpuCap, strings.Join(restore.CPUCapValues, ", "))
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
	// Accepted as CRIU accepts it at dump; the dump always writes
	// cpuinfo.img, and restore --cpu-cap decides what it checks.
	cmd.Flags().StringVar(&cpuCap, "cpu-cap", restore.CPUCapIns, "accepted for CRIU's sake: the CPU is always recorded, and restore --cpu-cap checks it")
	c.register(cmd.Flags())
	cmd.Flags().IntVarP(&pid, "tree", "t", 0, "PID of the task to dump")
	cmd.Flags().BoolVarP(&leaveRunning, "leave-running", "R", false, "let the task go on after the dump")
	return cmd
}
