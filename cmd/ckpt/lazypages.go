//go:build linux && amd64

package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/ckpt/ckpt"
)

func lazyPagesCmd() *cobra.Command {
	var c commonFlags
	cmd := &cobra.Command{
		Use:   "lazy-pages -D DIR",
		Short: "Serve the memory of a restore with --lazy-pages (start it first); exits once every page is in",
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
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			sigs := make(chan os.Signal, 1)
			signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
			defer signal.Stop(sigs)
			go func() {
				if sig, ok := <-sigs; ok {
					fmt.Fprintf(os.Stderr, "ckpt: %v: stopping the lazy-pages server; tasks whose pages are not all in are killed\n", sig)
					cancel(fmt.Errorf("interrupted by %v", sig))
				}
			}()
			st, err := ckpt.ServeLazyPages(ckpt.LazyPagesOptions{ImagesDir: c.imagesDir, Context: ctx, Logf: log.progress})
			if st != nil {
				log.result("lazy-pages: %d tasks (%d forked, %d gone early): %d faults (%d pages), %d pages pushed, %d zero pages; all in %v after the first task",
					st.Tasks, st.Forks, st.Gone, st.Faults, st.FaultPages, st.PushedPages, st.ZeroPages, st.AllIn.Round(time.Microsecond))
			}
			return log.fail(err)
		},
	}
	c.register(cmd.Flags())
	return cmd
}
