/* ckpt-test: */
/*
 * udp: UDP sockets come back bound and connected, with the datagrams
 * queued in them, in order, boundaries kept, each from the address that
 * sent it. u4 (127.0.0.1, SO_RCVBUF set) holds "one" sent by itself, "two"
 * from s4 (a socket of the tree, SO_BROADCAST) and a 3000-byte datagram
 * from a socket closed since; c4, connected to u4, holds "four" from u4;
 * u6 (::1, IPV6_V6ONLY) holds "six" from a closed IPv6 socket. After the
 * restore: each queue reads back exactly, the senders' ports are the
 * original ones, addresses and peers are kept, and new datagrams flow.
 */
#include "ckpt_test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

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

static int udp4(void)
{
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	CHECK_SYS(s >= 0 && bind(s, (struct sockaddr *)&sin, sizeof sin) == 0, "bind udp4");
	return s;
}

static int udp6(void)
{
	int s = socket(AF_INET6, SOCK_DGRAM, 0);
	struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
	CHECK_SYS(s >= 0, "socket6");
	seti(s, IPPROTO_IPV6, IPV6_V6ONLY, 1);
	CHECK_SYS(bind(s, (struct sockaddr *)&sin6, sizeof sin6) == 0, "bind udp6");
	return s;
}

static int port_of(int fd, struct sockaddr_storage *ss)
{
	socklen_t l = sizeof *ss;
	CHECK_SYS(getsockname(fd, (struct sockaddr *)ss, &l) == 0, "getsockname");
	if (ss->ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)ss)->sin_port);
	return ntohs(((struct sockaddr_in6 *)ss)->sin6_port);
}

static void send_to(int s, const void *m, size_t n, int to)
{
	struct sockaddr_storage ss;
	port_of(to, &ss);
	socklen_t l = ss.ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
	CHECK_SYS(sendto(s, m, n, 0, (struct sockaddr *)&ss, l) == (ssize_t)n, "sendto");
}

/* Reads one datagram of s and checks its bytes and its sender's port. */
static void expect(int s, const void *m, size_t n, int from_port, const char *what)
{
	char buf[4096];
	struct sockaddr_storage ss;
	socklen_t l = sizeof ss;
	ssize_t got = recvfrom(s, buf, sizeof buf, MSG_DONTWAIT, (struct sockaddr *)&ss, &l);
	CHECK_SYS(got >= 0, "%s: nothing queued", what);
	CHECK((size_t)got == n && memcmp(buf, m, n) == 0, "%s: got %zd bytes, want %zu", what, got, n);
	int p = ss.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&ss)->sin_port) : ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	CHECK(p == from_port, "%s: sent from port %d, want %d", what, p, from_port);
}

static void expect_empty(int s, const char *what)
{
	char b;
	CHECK(recv(s, &b, 1, MSG_DONTWAIT) < 0 && errno == EAGAIN, "%s: more queued", what);
}

int main(void)
{
	ckpt_block_term();
	static char big[3000];
	for (size_t i = 0; i < sizeof big; i++)
		big[i] = (char)(i * 7);
	struct sockaddr_storage ss;

	int u4 = udp4(), s4 = udp4(), c4 = socket(AF_INET, SOCK_DGRAM, 0), u6 = udp6();
	seti(u4, SOL_SOCKET, SO_RCVBUF, 150000);
	seti(s4, SOL_SOCKET, SO_BROADCAST, 1);
	int pu4 = port_of(u4, &ss), ps4 = port_of(s4, &ss), pu6 = port_of(u6, &ss);
	port_of(u4, &ss);
	CHECK_SYS(connect(c4, (struct sockaddr *)&ss, sizeof(struct sockaddr_in)) == 0, "connect c4");
	int pc4 = port_of(c4, &ss);

	send_to(u4, "one", 3, u4);
	send_to(s4, "two", 3, u4);
	int gone = udp4();
	int pgone = port_of(gone, &ss);
	send_to(gone, big, sizeof big, u4);
	close(gone);
	send_to(u4, "four", 4, c4);
	int gone6 = udp6();
	int pgone6 = port_of(gone6, &ss);
	send_to(gone6, "six", 3, u6);
	close(gone6);
	int rcv = geti(u4, SOL_SOCKET, SO_RCVBUF);
	ckpt_sleep_ms(20);

	ckpt_ready();
	ckpt_wait_term();

	CHECK(port_of(u4, &ss) == pu4 && port_of(s4, &ss) == ps4 && port_of(c4, &ss) == pc4 && port_of(u6, &ss) == pu6,
	      "ports changed");
	expect(u4, "one", 3, pu4, "u4 #1");
	expect(u4, "two", 3, ps4, "u4 #2");
	expect(u4, big, sizeof big, pgone, "u4 #3");
	expect_empty(u4, "u4");
	expect(c4, "four", 4, pu4, "c4");
	expect_empty(c4, "c4");
	expect(u6, "six", 3, pgone6, "u6");
	expect_empty(u6, "u6");
	expect_empty(s4, "s4");

	struct sockaddr_storage peer;
	socklen_t pl = sizeof peer;
	CHECK_SYS(getpeername(c4, (struct sockaddr *)&peer, &pl) == 0, "c4: not connected");
	CHECK(ntohs(((struct sockaddr_in *)&peer)->sin_port) == pu4, "c4: peer port");
	CHECK(geti(u4, SOL_SOCKET, SO_RCVBUF) == rcv, "SO_RCVBUF %d, was %d", geti(u4, SOL_SOCKET, SO_RCVBUF), rcv);
	CHECK(geti(s4, SOL_SOCKET, SO_BROADCAST) == 1 && geti(u4, SOL_SOCKET, SO_BROADCAST) == 0, "SO_BROADCAST");
	CHECK(geti(u6, IPPROTO_IPV6, IPV6_V6ONLY) == 1, "IPV6_V6ONLY");

	/* New traffic: c4 to u4 and back; s4 to c4 is dropped (connected). */
	CHECK_SYS(send(c4, "after", 5, 0) == 5, "send c4");
	ckpt_sleep_ms(20);
	expect(u4, "after", 5, pc4, "u4 after");
	send_to(s4, "nope", 4, c4);
	send_to(u4, "back", 4, c4);
	ckpt_sleep_ms(20);
	expect(c4, "back", 4, pu4, "c4 after");
	expect_empty(c4, "c4 after");
	ckpt_pass();
}
