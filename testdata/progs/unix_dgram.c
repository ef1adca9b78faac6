/* ckpt-test: */
/*
 * unix_dgram: bound datagram sockets exchanging messages come back with
 * the datagrams queued in them. D1 is bound to a path, D2 to an abstract
 * name and connected to D1, D3 is unnamed and connected to D1. D2 and D3
 * send to D1, D1 sends two datagrams (3 and 500 bytes) to D2; nobody
 * reads before the dump. After the restore every datagram reads back in
 * order with its length, D2 and D3 still send to D1 through their
 * connection, D2 still accepts datagrams only from D1, and a new socket
 * reaches D1 by its path.
 */
#include "ckpt_test.h"

#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

static socklen_t addr_of(struct sockaddr_un *sa, const char *name, size_t len)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, name, len);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
}

static void expect_dgram(int fd, const char *want, size_t len, const char *what)
{
	char buf[1024];
	ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

	CHECK_SYS(n >= 0, "%s: recv", what);
	CHECK((size_t)n == len && memcmp(buf, want, len) == 0, "%s: got %zd bytes, want %zu", what, n, len);
}

static void expect_empty(int fd, const char *what)
{
	char c;
	ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);

	CHECK(n < 0 && errno == EAGAIN, "%s: more queued (%zd)", what, n);
}

int main(void)
{
	struct sockaddr_un a1, a2;
	socklen_t l1, l2;
	char abs_name[64], big[500];
	size_t abs_len;
	int d1, d2, d3, d4;

	ckpt_block_term();
	abs_len = (size_t)snprintf(abs_name, sizeof(abs_name), "%cckpt-unix-dgram-%d", 0, (int)getpid());
	l1 = addr_of(&a1, "d1.sock", sizeof("d1.sock"));
	l2 = addr_of(&a2, abs_name, abs_len);
	memset(big, 'q', sizeof(big));

	d1 = socket(AF_UNIX, SOCK_DGRAM, 0);
	d2 = socket(AF_UNIX, SOCK_DGRAM, 0);
	d3 = socket(AF_UNIX, SOCK_DGRAM, 0);
	CHECK_SYS(d1 >= 0 && d2 >= 0 && d3 >= 0, "socket");
	CHECK_SYS(bind(d1, (struct sockaddr *)&a1, l1) == 0, "bind d1");
	CHECK_SYS(bind(d2, (struct sockaddr *)&a2, l2) == 0, "bind d2");
	CHECK_SYS(connect(d2, (struct sockaddr *)&a1, l1) == 0, "connect d2");
	CHECK_SYS(connect(d3, (struct sockaddr *)&a1, l1) == 0, "connect d3");

	CHECK_SYS(send(d2, "from d2", 7, 0) == 7, "d2 -> d1");
	CHECK_SYS(send(d3, "from d3", 7, 0) == 7, "d3 -> d1");
	CHECK_SYS(sendto(d1, "r1!", 3, 0, (struct sockaddr *)&a2, l2) == 3, "d1 -> d2");
	CHECK_SYS(sendto(d1, big, sizeof(big), 0, (struct sockaddr *)&a2, l2) == (ssize_t)sizeof(big), "d1 -> d2 big");

	ckpt_ready();
	ckpt_wait_term();

	expect_dgram(d1, "from d2", 7, "d1 first");
	expect_dgram(d1, "from d3", 7, "d1 second");
	expect_empty(d1, "d1");
	expect_dgram(d2, "r1!", 3, "d2 first");
	expect_dgram(d2, big, sizeof(big), "d2 second");
	expect_empty(d2, "d2");

	CHECK_SYS(send(d2, "again2", 6, 0) == 6, "d2 -> d1 after restore");
	CHECK_SYS(send(d3, "again3", 6, 0) == 6, "d3 -> d1 after restore");
	expect_dgram(d1, "again2", 6, "d1 from d2");
	expect_dgram(d1, "again3", 6, "d1 from d3");
	/* d2 is connected to d1: datagrams from others are refused. */
	CHECK(sendto(d3, "x", 1, 0, (struct sockaddr *)&a2, l2) < 0 && errno == EPERM, "d2 took a datagram from d3");
	CHECK_SYS(sendto(d1, "r2", 2, 0, (struct sockaddr *)&a2, l2) == 2, "d1 -> d2 after restore");
	expect_dgram(d2, "r2", 2, "d2 after restore");

	d4 = socket(AF_UNIX, SOCK_DGRAM, 0);
	CHECK_SYS(d4 >= 0, "socket");
	CHECK_SYS(sendto(d4, "new", 3, 0, (struct sockaddr *)&a1, l1) == 3, "new -> d1");
	expect_dgram(d1, "new", 3, "d1 from a new socket");
	ckpt_pass();
}
