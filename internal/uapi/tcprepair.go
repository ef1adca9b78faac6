//go:build linux && amd64

package uapi

// TCP repair mode (include/uapi/linux/tcp.h; Documentation in
// net/ipv4/tcp.c do_tcp_setsockopt): a socket in repair mode can be read
// and refilled queue by queue, given sequence numbers and options, and
// connected or closed without a packet on the wire.
const (
	TCP_REPAIR         = 19
	TCP_REPAIR_QUEUE   = 20
	TCP_QUEUE_SEQ      = 21
	TCP_REPAIR_OPTIONS = 22
	TCP_TIMESTAMP      = 24
	TCP_REPAIR_WINDOW  = 29

	TCP_REPAIR_ON  = 1
	TCP_REPAIR_OFF = 0

	// TCP_REPAIR_QUEUE values.
	TCP_NO_QUEUE   = 0
	TCP_RECV_QUEUE = 1
	TCP_SEND_QUEUE = 2

	// struct tcp_repair_opt opt_code values (TCP option kinds,
	// include/net/tcp.h).
	TCPOPT_MSS       = 2
	TCPOPT_WINDOW    = 3 // opt_val: snd_wscale | rcv_wscale << 16
	TCPOPT_SACK_PERM = 4
	TCPOPT_TIMESTAMP = 8

	// tcp_info.tcpi_options bits.
	TCPI_OPT_TIMESTAMPS = 1
	TCPI_OPT_SACK       = 2
	TCPI_OPT_WSCALE     = 4

	// Offsets in struct tcp_info: tcpi_options, then a byte with
	// tcpi_snd_wscale in its low 4 bits and tcpi_rcv_wscale in its high 4.
	TcpInfoOptions = 5
	TcpInfoWscale  = 6

	// SizeofTcpRepairWindow is struct tcp_repair_window: u32 snd_wl1,
	// snd_wnd, max_window, rcv_wnd, rcv_wup.
	SizeofTcpRepairWindow = 20

	// SIOCOUTQNSD is the bytes of the send queue not sent yet
	// (include/uapi/linux/sockios.h); SIOCINQ and SIOCOUTQ are FIONREAD
	// and TIOCOUTQ.
	SIOCINQ     = 0x541B
	SIOCOUTQ    = 0x5411
	SIOCOUTQNSD = 0x894B
)
