/* ckpt-test: args=--tcp-close */
/*
 * tcp_close: with --tcp-close, established TCP connections are dumped
 * without their state and come back closed, as CRIU's option does: after
 * the restore both ends of a connection made through a listener of the
 * program are TCP sockets with no peer (getpeername and recv fail with
 * ENOTCONN), while the listener is back and accepts a new client.
 */
#include "ckpt_test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

int main(void)
{
	ckpt_block_term();
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof sin;
	int l = socket(AF_INET, SOCK_STREAM, 0);
	CHECK_SYS(l >= 0 && bind(l, (struct sockaddr *)&sin, sl) == 0 && listen(l, 2) == 0, "listener");
	CHECK_SYS(getsockname(l, (struct sockaddr *)&sin, &sl) == 0, "getsockname");
	int c = socket(AF_INET, SOCK_STREAM, 0);
	CHECK_SYS(c >= 0 && connect(c, (struct sockaddr *)&sin, sl) == 0, "connect");
	int s = accept(l, NULL, NULL);
	CHECK_SYS(s >= 0, "accept");
	CHECK_SYS(write(c, "x", 1) == 1, "write");

	ckpt_ready();
	ckpt_wait_term();

	struct sockaddr_in p;
	socklen_t pl = sizeof p;
	char b;
	int ends[2] = {c, s};
	for (int i = 0; i < 2; i++) {
		CHECK(getpeername(ends[i], (struct sockaddr *)&p, &pl) < 0 && errno == ENOTCONN, "end %d still has a peer", i);
		CHECK(recv(ends[i], &b, 1, MSG_DONTWAIT) < 0 && errno == ENOTCONN, "end %d: recv did not fail with ENOTCONN", i);
	}
	int c2 = socket(AF_INET, SOCK_STREAM, 0);
	CHECK_SYS(c2 >= 0 && connect(c2, (struct sockaddr *)&sin, sizeof sin) == 0, "new client");
	int s2 = accept(l, NULL, NULL);
	CHECK_SYS(s2 >= 0, "accept new client");
	CHECK_SYS(write(c2, "y", 1) == 1 && read(s2, &b, 1) == 1 && b == 'y', "new connection");
	ckpt_pass();
}
