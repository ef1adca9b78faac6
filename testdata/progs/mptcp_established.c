/* ckpt-test: args=--tcp-established */
/*
 * mptcp_established: connections an MPTCP listener accepted from plain
 * TCP clients (MPTCP sockets fallen back to TCP, what a Go 1.24+ server
 * holds) come back with --tcp-established, restored as TCP sockets. An
 * IPv4 MPTCP listener on 127.0.0.1 and an IPv6 one on ::1; a plain TCP
 * client of each in this process. Before READY: the IPv4 client sent
 * 20000 bytes the server has not read, the server sent up to 300000
 * bytes the client has not read (part of them still in the server's send
 * queue, not sent for want of window: the client's SO_RCVBUF is small;
 * TCP_NODELAY and O_NONBLOCK on the server's end); a few bytes each way on the IPv6 connection. After the restore: ports and options are
 * the same, every unread byte reads back in order and no more, both
 * sides talk on, the listeners are still MPTCP (SO_PROTOCOL 262) and
 * accept new clients, plain TCP and MPTCP.
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

#define UP 20000
#define DOWN 300000

static int port_of(int fd, int peer)
{
	struct sockaddr_storage ss;
	socklen_t l = sizeof ss;
	if (peer)
		CHECK_SYS(getpeername(fd, (struct sockaddr *)&ss, &l) == 0, "getpeername");
	else
		CHECK_SYS(getsockname(fd, (struct sockaddr *)&ss, &l) == 0, "getsockname");
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

static int geti(int fd, int level, int opt)
{
	int v = -1;
	socklen_t l = sizeof v;
	CHECK_SYS(getsockopt(fd, level, opt, &v, &l) == 0, "getsockopt(%d, %d)", level, opt);
	return v;
}

/* The loopback address of fam at port (0: any). */
static socklen_t loopback(int fam, int port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof *ss);
	if (fam == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;
		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)port);
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		return sizeof *a;
	}
	struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
	a->sin6_family = AF_INET6;
	a->sin6_port = htons((uint16_t)port);
	a->sin6_addr = in6addr_loopback;
	return sizeof *a;
}

/* A client of protocol prot connected to listener l, and the listener's
 * end; rcvbuf is the client's SO_RCVBUF (0: the default). */
static void connect_to(int fam, int l, int prot, int rcvbuf, int *c, int *s)
{
	struct sockaddr_storage ss;
	socklen_t sl = loopback(fam, port_of(l, 0), &ss);
	*c = socket(fam, SOCK_STREAM, prot);
	CHECK_SYS(*c >= 0, "socket (protocol %d)", prot);
	if (rcvbuf)
		CHECK_SYS(setsockopt(*c, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) == 0, "SO_RCVBUF");
	CHECK_SYS(connect(*c, (struct sockaddr *)&ss, sl) == 0, "connect (protocol %d)", prot);
	*s = accept(l, NULL, NULL);
	CHECK_SYS(*s >= 0, "accept");
}

static int listener(int fam)
{
	struct sockaddr_storage ss;
	socklen_t sl = loopback(fam, 0, &ss);
	int l = socket(fam, SOCK_STREAM, IPPROTO_MPTCP);
	CHECK_SYS(l >= 0, "socket(IPPROTO_MPTCP)");
	CHECK_SYS(bind(l, (struct sockaddr *)&ss, sl) == 0 && listen(l, 4) == 0, "MPTCP listener");
	return l;
}

/* Reads exactly n bytes (waiting up to 10 s for each part). */
static void read_exact(int fd, char *buf, size_t n, const char *what)
{
	size_t got = 0;
	while (got < n) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		CHECK_SYS(poll(&p, 1, 10000) == 1, "%s: %zu of %zu bytes came", what, got, n);
		ssize_t r = recv(fd, buf + got, n - got, MSG_DONTWAIT);
		if (r < 0 && errno == EAGAIN)
			continue;
		CHECK_SYS(r > 0, "%s: read after %zu of %zu bytes", what, got, n);
		got += (size_t)r;
	}
}

static void expect_nothing(int fd, const char *what)
{
	char b;
	ssize_t r = recv(fd, &b, 1, MSG_DONTWAIT);
	CHECK(r < 0 && errno == EAGAIN, "%s: more bytes than sent (%zd)", what, r);
}

static void talk(int a, int b, const char *msg, const char *what)
{
	char buf[64];
	size_t n = strlen(msg);
	CHECK_SYS(write(a, msg, n) == (ssize_t)n, "%s: write", what);
	read_exact(b, buf, n, what);
	CHECK(memcmp(buf, msg, n) == 0, "%s: wrong bytes", what);
	expect_nothing(b, what);
}

static void write_all(int fd, const char *p, size_t n, const char *what)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		CHECK_SYS(w > 0, "%s", what);
		p += w;
		n -= (size_t)w;
	}
}

int main(void)
{
	ckpt_block_term();
	static char up[UP], down[DOWN], back[DOWN];
	for (size_t i = 0; i < UP; i++)
		up[i] = (char)ckpt_pattern(3, i);
	for (size_t i = 0; i < DOWN; i++)
		down[i] = (char)ckpt_pattern(4, i);

	int l4 = listener(AF_INET), l6 = listener(AF_INET6);
	int c4, s4, c6, s6;
	connect_to(AF_INET, l4, IPPROTO_TCP, 32768, &c4, &s4);
	connect_to(AF_INET6, l6, IPPROTO_TCP, 0, &c6, &s6);
	/* A plain TCP client makes the accepted socket an MPTCP socket fallen
	 * back to TCP: getsockopt answers SO_PROTOCOL with TCP. */
	CHECK(geti(s4, SOL_SOCKET, SO_PROTOCOL) == IPPROTO_TCP, "accepted socket: SO_PROTOCOL %d", geti(s4, SOL_SOCKET, SO_PROTOCOL));
	CHECK(geti(l4, SOL_SOCKET, SO_PROTOCOL) == IPPROTO_MPTCP, "listener: SO_PROTOCOL %d", geti(l4, SOL_SOCKET, SO_PROTOCOL));
	int one = 1;
	CHECK_SYS(setsockopt(s4, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0, "TCP_NODELAY");

	write_all(c4, up, UP, "client writes");
	CHECK_SYS(fcntl(s4, F_SETFL, O_NONBLOCK) == 0, "O_NONBLOCK");
	size_t sent = 0;
	while (sent < DOWN) {
		ssize_t w = write(s4, down + sent, DOWN - sent);
		if (w < 0 && errno == EAGAIN)
			break;
		CHECK_SYS(w > 0, "server writes");
		sent += (size_t)w;
	}
	CHECK_SYS(write(c6, "six", 3) == 3 && write(s6, "xis!", 4) == 4, "write v6");
	ckpt_sleep_ms(50);
	int ports[6] = {port_of(c4, 0), port_of(s4, 0), port_of(s4, 1), port_of(c6, 0), port_of(s6, 0), port_of(s6, 1)};
	ckpt_log("%zu of %d bytes written, ports %d->%d, %d->%d", sent, DOWN, ports[0], ports[1], ports[3], ports[4]);

	ckpt_ready();
	ckpt_wait_term();

	int now[6] = {port_of(c4, 0), port_of(s4, 0), port_of(s4, 1), port_of(c6, 0), port_of(s6, 0), port_of(s6, 1)};
	CHECK(memcmp(ports, now, sizeof now) == 0, "ports changed");
	CHECK(geti(s4, IPPROTO_TCP, TCP_NODELAY) == 1, "TCP_NODELAY lost");
	CHECK(fcntl(s4, F_GETFL) & O_NONBLOCK, "O_NONBLOCK lost");
	CHECK(geti(s4, SOL_SOCKET, SO_PROTOCOL) == IPPROTO_TCP, "restored connection: SO_PROTOCOL %d", geti(s4, SOL_SOCKET, SO_PROTOCOL));
	CHECK(geti(l4, SOL_SOCKET, SO_PROTOCOL) == IPPROTO_MPTCP && geti(l6, SOL_SOCKET, SO_PROTOCOL) == IPPROTO_MPTCP, "listeners are no longer MPTCP");

	read_exact(s4, back, UP, "server reads the client's bytes");
	CHECK(memcmp(back, up, UP) == 0, "client's bytes: wrong bytes");
	expect_nothing(s4, "server");
	read_exact(c4, back, sent, "client reads the server's bytes");
	CHECK(memcmp(back, down, sent) == 0, "server's bytes: wrong bytes");
	expect_nothing(c4, "client");
	char buf[8];
	read_exact(s6, buf, 3, "v6 server");
	CHECK(memcmp(buf, "six", 3) == 0, "v6 server: wrong bytes");
	expect_nothing(s6, "v6 server");
	read_exact(c6, buf, 4, "v6 client");
	CHECK(memcmp(buf, "xis!", 4) == 0, "v6 client: wrong bytes");
	expect_nothing(c6, "v6 client");

	for (int i = 0; i < 3; i++) {
		talk(c4, s4, "more from the client", "client to server");
		talk(s4, c4, "and the server answers", "server to client");
		talk(c6, s6, "v6 on", "v6 client to server");
		talk(s6, c6, "v6 back", "v6 server to client");
	}

	int c, s;
	connect_to(AF_INET, l4, IPPROTO_TCP, 0, &c, &s);
	talk(c, s, "new", "new TCP client");
	talk(s, c, "wen", "new TCP client's server");
	connect_to(AF_INET, l4, IPPROTO_MPTCP, 0, &c, &s);
	CHECK(geti(s, SOL_SOCKET, SO_PROTOCOL) == IPPROTO_MPTCP, "new MPTCP connection: SO_PROTOCOL %d", geti(s, SOL_SOCKET, SO_PROTOCOL));
	talk(c, s, "multipath", "new MPTCP client");
	connect_to(AF_INET6, l6, IPPROTO_TCP, 0, &c, &s);
	talk(c, s, "new6", "new v6 client");
	ckpt_pass();
}
