//go:build linux && amd64

package main

import (
	"fmt"
	"strings"
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
			st, err := ckpt.Dump(ckpt.DumpOptions{
				Pid: pid, ImagesDir: c.imagesDir, LeaveRunning: leaveRunning, ShellJob: c.shellJob,
				FreezeTimeout: time.Duration(timeout) * time.Second, CPUCap: cpuCap, Logf: logf,
			})
			if err != nil {
				return err
			}
			logf("dumped task %d: %d pages (%d zero pages left out), %d bytes of images, frozen for %v", pid, st.PagesWritten, st.ZeroPages, st.ImageBytes, st.FrozenFor)
			return nil
		},
	}
	// As in CRIU: at dump, "none" leaves out cpuinfo.img; every other
	// value records the CPU, and restore --cpu-cap decides what it checks.
	// Before register, which refuses the CRIU options left unimplemented.
	cmd.Flags().StringVar(&cpuCap, "cpu-cap", ckpt.CPUCapIns, "none: do not record the CPU (cpuinfo.img), so that no restore can compare it; any other value records it ("+strings.Join(ckpt.CPUCapValues, ", ")+")")
	cmd.Flags().IntVar(&timeout, "timeout", 10, "seconds to wait for the tree to stop")
	c.register(cmd.Flags())
	cmd.Flags().IntVarP(&pid, "tree", "t", 0, "PID of the task to dump")
	cmd.Flags().BoolVarP(&leaveRunning, "leave-running", "R", false, "let the task go on after the dump")
	return cmd
}
