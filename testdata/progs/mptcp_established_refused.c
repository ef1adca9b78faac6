/* ckpt-test: args=--tcp-established expect=dump-fail dump-error=fallen */
/*
 * mptcp_established_refused: an MPTCP client of a plain TCP server (an
 * MPTCP socket fallen back to TCP, whose MPTCP socket refuses TCP_REPAIR)
 * cannot be restored established: the dump must refuse it by name, also
 * with --tcp-established, and leave the process untouched: the bytes
 * queued each way before the dump read back, and the connection goes on.
 */
#include "ckpt_test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP 262 /* include/uapi/linux/in.h */
#endif

static void read_exact(int fd, char *buf, size_t n, const char *what)
{
	size_t got = 0;
	while (got < n) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		CHECK_SYS(poll(&p, 1, 10000) == 1, "%s: %zu of %zu bytes came", what, got, n);
		ssize_t r = read(fd, buf + got, n - got);
		CHECK_SYS(r > 0, "%s: read after %zu of %zu bytes", what, got, n);
		got += (size_t)r;
	}
}

int main(void)
{
	ckpt_block_term();
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof sin;
	int l = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
	CHECK_SYS(l >= 0 && bind(l, (struct sockaddr *)&sin, sl) == 0 && listen(l, 4) == 0 &&
		      getsockname(l, (struct sockaddr *)&sin, &sl) == 0,
		  "TCP listener");
	int c = socket(AF_INET, SOCK_STREAM, IPPROTO_MPTCP);
	CHECK_SYS(c >= 0, "socket(IPPROTO_MPTCP)");
	CHECK_SYS(connect(c, (struct sockaddr *)&sin, sl) == 0, "connect");
	int s = accept(l, NULL, NULL);
	CHECK_SYS(s >= 0, "accept");
	int p = -1;
	socklen_t pl = sizeof p;
	CHECK_SYS(getsockopt(c, SOL_SOCKET, SO_PROTOCOL, &p, &pl) == 0 && p == IPPROTO_MPTCP, "client: SO_PROTOCOL %d", p);
	CHECK_SYS(write(c, "up", 2) == 2 && write(s, "down", 4) == 4, "write");

	ckpt_ready();
	ckpt_wait_term();

	char buf[8];
	read_exact(s, buf, 2, "server");
	CHECK(memcmp(buf, "up", 2) == 0, "server: wrong bytes");
	read_exact(c, buf, 4, "client");
	CHECK(memcmp(buf, "down", 4) == 0, "client: wrong bytes");
	CHECK_SYS(write(c, "more", 4) == 4, "client writes");
	read_exact(s, buf, 4, "server again");
	CHECK(memcmp(buf, "more", 4) == 0, "server again: wrong bytes");
	ckpt_pass();
}
