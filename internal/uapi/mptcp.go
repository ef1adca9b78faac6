//go:build linux && amd64

package uapi

// MPTCP socket options (include/uapi/linux/mptcp.h). MPTCP_INFO works on
// an MPTCP connection; on one fallen back to TCP the option goes to the
// TCP subflow (net/mptcp/sockopt.c, __mptcp_tcp_fallback), which fails
// it with EOPNOTSUPP (IPv4) or ENOPROTOOPT (IPv6) (checked on 6.18).
const (
	SOL_MPTCP  = 284
	MPTCP_INFO = 1
)
