//go:build linux && amd64

package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ckpt/ckpt"
)

// netUnlockCmd lifts the network lock a `dump --tcp-established` left,
// for a dump that is not going to be restored.
func netUnlockCmd() *cobra.Command {
	var dir, netns string
	cmd := &cobra.Command{
		Use:   "net-unlock -D DIR",
		Short: "Lift the network lock a dump with --tcp-established left on its connections, when it will not be restored",
		Long: `A dump with --tcp-established drops the packets of each connection to a
peer outside the tree (nftables rules in table inet ckpt) until the
restore brings the connection back. When the restore is not going to
happen, net-unlock removes the rules of the dump's connections, and only
those (other dumps' locks stay), so that their peers see resets instead
of silence.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cs, err := ckpt.NetUnlock(ckpt.NetUnlockOptions{ImagesDir: dir, NetNs: netns})
			if err != nil {
				return fmt.Errorf("net-unlock %s: %w", dir, err)
			}
			out := cmd.OutOrStdout()
			if len(cs) == 0 {
				fmt.Fprintf(out, "no connection of the dump in %s is locked\n", dir)
				return nil
			}
			for _, c := range cs {
				fmt.Fprintf(out, "unlocked %s\n", c)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&dir, "images-dir", "D", ".", "directory of the dump")
	cmd.Flags().StringVar(&netns, "netns", "", "network namespace to unlock in, as a file (/proc/PID/ns/net, /run/netns/NAME); default ckpt's")
	return cmd
}
