//go:build linux && amd64

package main

import (
	"fmt"
	"net"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/ckpt/ckpt"
)

// pageServerFlags are the CRIU spellings that name the page server, on
// page-server (where it listens) and on dump (where it connects).
type pageServerFlags struct {
	address string
	port    int
}

func (f *pageServerFlags) register(cmd *cobra.Command, addrHelp string) {
	cmd.Flags().StringVar(&f.address, "address", "", addrHelp)
	cmd.Flags().IntVar(&f.port, "port", 0, "TCP port of the page server")
}

func (f *pageServerFlags) hostPort() string {
	return net.JoinHostPort(f.address, strconv.Itoa(f.port))
}

func pageServerCmd() *cobra.Command {
	var c commonFlags
	var ps pageServerFlags
	cmd := &cobra.Command{
		Use:   "page-server -D DIR --address ADDR --port PORT",
		Short: "Receive the images of one dump made with --page-server over TCP, into DIR",
		Long: `page-server listens on ADDR:PORT (all addresses without --address; --port 0
picks a free port, printed) for one dump made with
  ckpt dump -t PID -D LOCALDIR --page-server --address ADDR --port PORT
and writes what it sends into DIR: the pages images, streamed while the
tree is frozen, then every other image. It syncs them, moves them into
DIR (inventory.img last) and answers the dump, which succeeds only then;
DIR then holds the whole dump: restore it there with ckpt restore -D DIR.
A dump that fails or whose connection ends leaves nothing in DIR. The
server exits after one dump: 0 if it received it whole.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := c.check(cmd); err != nil {
				return err
			}
			if ps.port < 0 || ps.port > 65535 {
				return fmt.Errorf("--port %d is not a TCP port", ps.port)
			}
			log, err := c.logger()
			if err != nil {
				return err
			}
			defer log.close()
			l, err := ckpt.ListenPageServer(ps.hostPort())
			if err != nil {
				return log.fail(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "page server listening on %s\n", l.Addr())
			ctx, stop := interruptOnSignals()
			defer stop()
			if err := ckpt.ServePages(ckpt.PageServerOptions{ImagesDir: c.imagesDir, Listener: l, Logf: log.progress, Context: ctx}); err != nil {
				return log.fail(err)
			}
			log.result("page server: received a dump into %s", c.imagesDir)
			return nil
		},
	}
	ps.register(cmd, "address to listen on (default: all)")
	c.register(cmd.Flags())
	return cmd
}
