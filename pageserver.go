//go:build linux && amd64

package ckpt

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/ckpt/ckpt/internal/pageserver"
)

// PageServerOptions control a page server.
type PageServerOptions struct {
	// ImagesDir receives the dump's images; it is created if missing.
	ImagesDir string
	// Listener is where the dump connects (see ListenPageServer).
	Listener net.Listener
	// Logf, if set, receives progress messages.
	Logf func(format string, args ...any)
	// Context, if set, stops the wait for a dump when it is done.
	Context context.Context
}

// ListenPageServer listens on addr (host:port; port 0 picks a free one,
// which the listener's Addr tells).
func ListenPageServer(addr string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("page server: %w", err)
	}
	return l, nil
}

// ServePages is CRIU's page server: it accepts one dump made with
// DumpOptions.PageServer, writes the images it sends into ImagesDir
// and returns once they are all synced there (nil), or once the dump
// failed or its connection ended (an error; nothing of that dump is
// left in ImagesDir). The listener is closed when it returns.
func ServePages(opts PageServerOptions) error {
	l := opts.Listener
	defer l.Close()
	if opts.Context != nil {
		stop := context.AfterFunc(opts.Context, func() { l.Close() })
		defer stop()
	}
	conn, err := l.Accept()
	if err != nil {
		if opts.Context != nil && opts.Context.Err() != nil {
			return fmt.Errorf("page server: %w", context.Cause(opts.Context))
		}
		return fmt.Errorf("page server: accept: %w", err)
	}
	defer conn.Close()
	l.Close() // one dump, as CRIU's page server
	if opts.Logf != nil {
		opts.Logf("page server: dump connected from %s", conn.RemoteAddr())
	}
	s := &pageserver.Server{Dir: opts.ImagesDir, Logf: opts.Logf, IdleTimeout: 10 * time.Minute}
	return s.ServeConn(conn)
}
