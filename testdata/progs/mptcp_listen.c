/* ckpt-test: */
/*
 * mptcp_listen: MPTCP listening sockets come back as MPTCP (what Go's
 * net.Listen makes since Go 1.24): an IPv4 listener on 127.0.0.1
 * (SO_REUSEADDR, TCP_NODELAY, backlog 4), an IPv6 one on ::1
 * (IPV6_V6ONLY) and an MPTCP socket only bound. After the restore: the
 * same protocol (SO_PROTOCOL), ports, states, backlog and options; a
 * plain TCP client and an MPTCP client connect to the IPv4 listener and
 * a plain TCP client to the IPv6 one, each connection carrying bytes
 * both ways.
 */
#include "ckpt_test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP 262 /* include/uapi/linux/in.h */
#endif

static int geti(int fd, int level, int opt)
{
	int v = -1;
	socklen_t l = sizeof v;
	CHECK_SYS(getsockopt(fd, level, opt, &v, &l) == 0, "getsockopt(%d, %d)", level, opt);
	return v;
}

static void seti(int fd, int level, int opt, int v)
{
	CHECK_SYS(setsockopt(fd, level, opt, &v, sizeof v) == 0, "setsockopt(%d, %d, %d)", level, opt, v);
}

static int port_of(int fd)
{
	struct sockaddr_storage ss;
	socklen_t l = sizeof ss;
	CHECK_SYS(getsockname(fd, (struct sockaddr *)&ss, &l) == 0, "getsockname");
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

static void tcp_state(int fd, int *state, unsigned *backlog)
{
	struct tcp_info ti;
	socklen_t l = sizeof ti;
	memset(&ti, 0, sizeof ti);
	CHECK_SYS(getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &l) == 0, "TCP_INFO");
	*state = ti.tcpi_state;
	*backlog = ti.tcpi_sacked; /* a listener's backlog */
}

static int connect_to(int fam, int proto, int port)
{
	int c = socket(fam, SOCK_STREAM, proto);
	CHECK_SYS(c >= 0, "socket(%d, %d)", fam, proto);
	if (fam == AF_INET) {
		struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
		inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
		CHECK_SYS(connect(c, (struct sockaddr *)&sin, sizeof sin) == 0, "connect to 127.0.0.1:%d", port);
	} else {
		struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port)};
		inet_pton(AF_INET6, "::1", &sin6.sin6_addr);
		CHECK_SYS(connect(c, (struct sockaddr *)&sin6, sizeof sin6) == 0, "connect to [::1]:%d", port);
	}
	return c;
}

/* A client of this process talks to the listener l: ping, pong. */
static void talk(int l, int fam, int proto, const char *what)
{
	int c = connect_to(fam, proto, port_of(l));
	CHECK_SYS(write(c, "ping", 4) == 4, "%s: write ping", what);
	struct pollfd p = {.fd = l, .events = POLLIN};
	CHECK_SYS(poll(&p, 1, 10000) == 1, "%s: no connection came", what);
	int a = accept(l, NULL, NULL);
	CHECK_SYS(a >= 0, "%s: accept", what);
	char buf[8] = {0};
	CHECK_SYS(read(a, buf, 4) == 4 && memcmp(buf, "ping", 4) == 0, "%s: read ping", what);
	CHECK_SYS(write(a, "pong", 4) == 4, "%s: write pong", what);
	memset(buf, 0, sizeof buf);
	CHECK_SYS(read(c, buf, 4) == 4 && memcmp(buf, "pong", 4) == 0, "%s: read pong", what);
	close(a);
	close(c);
}

int main(void)
{
	ckpt_block_term();
	int l4 = socket(AF_INET, SOCK_STREAM, IPPROTO_MPTCP);
	CHECK_SYS(l4 >= 0, "socket(AF_INET, IPPROTO_MPTCP) (net.mptcp.enabled?)");
	seti(l4, SOL_SOCKET, SO_REUSEADDR, 1);
	seti(l4, IPPROTO_TCP, TCP_NODELAY, 1);
	struct sockaddr_in sin = {.sin_family = AF_INET};
	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	CHECK_SYS(bind(l4, (struct sockaddr *)&sin, sizeof sin) == 0, "bind 127.0.0.1");
	CHECK_SYS(listen(l4, 4) == 0, "listen");

	int l6 = socket(AF_INET6, SOCK_STREAM, IPPROTO_MPTCP);
	CHECK_SYS(l6 >= 0, "socket(AF_INET6, IPPROTO_MPTCP)");
	seti(l6, IPPROTO_IPV6, IPV6_V6ONLY, 1);
	struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6};
	inet_pton(AF_INET6, "::1", &sin6.sin6_addr);
	CHECK_SYS(bind(l6, (struct sockaddr *)&sin6, sizeof sin6) == 0, "bind ::1");
	CHECK_SYS(listen(l6, 3) == 0, "listen6");

	int b4 = socket(AF_INET, SOCK_STREAM, IPPROTO_MPTCP);
	CHECK_SYS(b4 >= 0 && bind(b4, (struct sockaddr *)&sin, sizeof sin) == 0, "bind only");

	int p4 = port_of(l4), p6 = port_of(l6), pb = port_of(b4);
	ckpt_log("ports %d %d %d", p4, p6, pb);

	ckpt_ready();
	ckpt_wait_term();

	CHECK(geti(l4, SOL_SOCKET, SO_PROTOCOL) == IPPROTO_MPTCP && geti(l6, SOL_SOCKET, SO_PROTOCOL) == IPPROTO_MPTCP &&
		      geti(b4, SOL_SOCKET, SO_PROTOCOL) == IPPROTO_MPTCP,
	      "protocols %d %d %d, want MPTCP (%d)", geti(l4, SOL_SOCKET, SO_PROTOCOL), geti(l6, SOL_SOCKET, SO_PROTOCOL),
	      geti(b4, SOL_SOCKET, SO_PROTOCOL), IPPROTO_MPTCP);
	CHECK(port_of(l4) == p4 && port_of(l6) == p6 && port_of(b4) == pb, "ports %d %d %d, were %d %d %d", port_of(l4),
	      port_of(l6), port_of(b4), p4, p6, pb);
	int st;
	unsigned bl;
	tcp_state(l4, &st, &bl);
	CHECK(st == TCP_LISTEN && bl == 4, "IPv4 listener: state %d backlog %u", st, bl);
	tcp_state(l6, &st, &bl);
	CHECK(st == TCP_LISTEN && bl == 3, "IPv6 listener: state %d backlog %u", st, bl);
	CHECK(geti(l4, SOL_SOCKET, SO_ACCEPTCONN) == 1 && geti(b4, SOL_SOCKET, SO_ACCEPTCONN) == 0, "SO_ACCEPTCONN");
	CHECK(geti(l4, SOL_SOCKET, SO_REUSEADDR) == 1 && geti(l6, SOL_SOCKET, SO_REUSEADDR) == 0, "SO_REUSEADDR");
	CHECK(geti(l4, IPPROTO_TCP, TCP_NODELAY) == 1 && geti(l6, IPPROTO_TCP, TCP_NODELAY) == 0, "TCP_NODELAY");
	CHECK(geti(l6, IPPROTO_IPV6, IPV6_V6ONLY) == 1, "IPV6_V6ONLY");

	talk(l4, AF_INET, 0, "TCP client to the IPv4 listener");
	talk(l4, AF_INET, IPPROTO_MPTCP, "MPTCP client to the IPv4 listener");
	talk(l6, AF_INET6, 0, "TCP client to the IPv6 listener");
	ckpt_pass();
}
