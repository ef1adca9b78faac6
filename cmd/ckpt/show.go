//go:build linux && amd64

package main

import (
	"github.com/spf13/cobra"
)

func showCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "show DIR",
		Short: "Summarize a dump: tasks, mode, memory, files, sizes",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return show(cmd.OutOrStdout(), args[0])
		},
	}
}

func checkCmd() *cobra.Command {
	var feature string
	cmd := &cobra.Command{
		Use:   "check [--feature NAME]",
		Short: "Tell what this kernel supports for checkpoint/restore; exit 1 if C/R cannot work",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("feature") {
				return checkFeature(cmd.OutOrStdout(), feature)
			}
			return check(cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&feature, "feature", "", "answer for one of CRIU's feature names (list: the names ckpt answers); exit 1 if unsupported or unknown")
	return cmd
}
