/* ckpt-test: args=--tcp-established */
/*
 * tcp_established: established TCP connections come back with
 * --tcp-established, their queued bytes in both directions and their
 * state, and the conversation goes on with no byte lost or repeated.
 * An IPv4 connection through a listener of the program: the client sent
 * a message the server has not read, the server sent 300000 bytes the
 * client has not read (part of them still in the server's send queue,
 * not sent for want of window), TCP_NODELAY on the client; an IPv6
 * connection with a few bytes each way. After the restore: addresses and
 * ports are the same, every byte reads back in order, both sides talk on,
 * and the listener accepts a new client.
 */
#include "ckpt_test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#define BIG 300000

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

static void pair(int fam, int *l, int *c, int *s)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof ss);
	socklen_t sl;
	if (fam == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		a->sin_family = AF_INET;
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sl = sizeof *a;
	} else {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		a->sin6_family = AF_INET6;
		a->sin6_addr = in6addr_loopback;
		sl = sizeof *a;
	}
	*l = socket(fam, SOCK_STREAM, 0);
	CHECK_SYS(*l >= 0 && bind(*l, (struct sockaddr *)&ss, sl) == 0 && listen(*l, 4) == 0, "listener");
	CHECK_SYS(getsockname(*l, (struct sockaddr *)&ss, &sl) == 0, "getsockname");
	*c = socket(fam, SOCK_STREAM, 0);
	CHECK_SYS(*c >= 0 && connect(*c, (struct sockaddr *)&ss, sl) == 0, "connect");
	*s = accept(*l, NULL, NULL);
	CHECK_SYS(*s >= 0, "accept");
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
}

int main(void)
{
	ckpt_block_term();
	static char big[BIG], back[BIG];
	for (size_t i = 0; i < BIG; i++)
		big[i] = (char)ckpt_pattern(9, i);

	int l4, c4, s4, l6, c6, s6;
	pair(AF_INET, &l4, &c4, &s4);
	pair(AF_INET6, &l6, &c6, &s6);
	int one = 1;
	CHECK_SYS(setsockopt(c4, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0, "TCP_NODELAY");

	const char *hello = "hello from the client";
	CHECK_SYS(write(c4, hello, strlen(hello)) == (ssize_t)strlen(hello), "write hello");
	CHECK_SYS(fcntl(s4, F_SETFL, O_NONBLOCK) == 0, "O_NONBLOCK");
	size_t sent = 0;
	while (sent < BIG) {
		ssize_t w = write(s4, big + sent, BIG - sent);
		if (w < 0 && errno == EAGAIN)
			break;
		CHECK_SYS(w > 0, "write big");
		sent += (size_t)w;
	}
	CHECK_SYS(write(c6, "six", 3) == 3 && write(s6, "xis!", 4) == 4, "write v6");
	ckpt_sleep_ms(50);
	int ports[6] = {port_of(c4, 0), port_of(c4, 1), port_of(s4, 0), port_of(s4, 1), port_of(c6, 0), port_of(s6, 0)};
	ckpt_log("%zu of %d bytes written, ports %d->%d", sent, BIG, ports[0], ports[1]);

	ckpt_ready();
	ckpt_wait_term();

	int now[6] = {port_of(c4, 0), port_of(c4, 1), port_of(s4, 0), port_of(s4, 1), port_of(c6, 0), port_of(s6, 0)};
	CHECK(memcmp(ports, now, sizeof now) == 0, "ports changed");
	int nd = 0;
	socklen_t ndl = sizeof nd;
	CHECK_SYS(getsockopt(c4, IPPROTO_TCP, TCP_NODELAY, &nd, &ndl) == 0 && nd == 1, "TCP_NODELAY lost");
	CHECK(fcntl(s4, F_GETFL) & O_NONBLOCK, "O_NONBLOCK lost");

	char buf[64];
	read_exact(s4, buf, strlen(hello), "server reads hello");
	CHECK(memcmp(buf, hello, strlen(hello)) == 0, "hello: wrong bytes");
	expect_nothing(s4, "server");
	read_exact(c4, back, sent, "client reads the big write");
	CHECK(memcmp(back, big, sent) == 0, "big write: wrong bytes");
	expect_nothing(c4, "client");
	read_exact(s6, buf, 3, "v6 server");
	CHECK(memcmp(buf, "six", 3) == 0, "v6 server: wrong bytes");
	read_exact(c6, buf, 4, "v6 client");
	CHECK(memcmp(buf, "xis!", 4) == 0, "v6 client: wrong bytes");

	talk(c4, s4, "more from the client", "client to server");
	talk(s4, c4, "and the server answers", "server to client");
	talk(c6, s6, "v6 on", "v6 client to server");
	talk(s6, c6, "v6 back", "v6 server to client");

	int l, c, s;
	(void)l;
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port_of(l4, 0)), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	c = socket(AF_INET, SOCK_STREAM, 0);
	CHECK_SYS(c >= 0 && connect(c, (struct sockaddr *)&sin, sizeof sin) == 0, "new client");
	s = accept(l4, NULL, NULL);
	CHECK_SYS(s >= 0, "accept new client");
	talk(c, s, "new", "new client");
	ckpt_pass();
}
