//go:build linux && amd64

package kerndat

import (
	"github.com/ckpt/ckpt/internal/sockbpf"
)

const nameSockBPF = "BPF iterator over UDP sockets"

// probeSockBPF runs the BPF iterator that reads a UDP socket's
// IP_MULTICAST_IF interface index (package sockbpf). Without it, a dump
// refuses a UDP socket that uses IPv4 multicast.
func probeSockBPF() Result {
	if _, err := sockbpf.UDPMcastIndex(); err != nil {
		return fail(nameSockBPF, false, "%v: a UDP socket that uses IPv4 multicast is refused at dump (its IP_MULTICAST_IF interface index cannot be read)", err)
	}
	return ok(nameSockBPF, "reads the IP_MULTICAST_IF interface index of UDP sockets, which getsockopt does not show", false)
}
