/* ckpt-test: args=--tcp-established */
/*
 * mptcp_established_outside: a connection an MPTCP listener of the
 * program accepted from a plain TCP client outside the dumped tree (an
 * MPTCP socket fallen back to TCP, as a Go 1.24+ server holds one for
 * each of its clients) survives the dump and the restore with
 * --tcp-established: the network lock keeps the client's packets away
 * while the connection has no socket, and the client keeps its socket
 * and goes on talking. The client (a grandchild left to the subreaper by
 * a double fork) connects, says "hello", then sends "tick00".."tick39"
 * every 50 ms, through the dump and the restore; then it reads what the
 * program sent before the dump and "ping", and answers "pong". After the
 * restore the program reads every byte in order, the exchange ends, and
 * the listener accepts a new client.
 */
#include "ckpt_test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>

#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP 262 /* include/uapi/linux/in.h */
#endif

#define TICKS 40
#define EARLY "sent before the dump"

static int read_exact_outside(int s, char *buf, size_t n, pid_t program)
{
	size_t got = 0;
	while (got < n) {
		struct pollfd p = {.fd = s, .events = POLLIN};
		if (poll(&p, 1, 1000) == 0) {
			if (kill(program, 0) < 0 && errno == ESRCH)
				return -1;
			continue;
		}
		ssize_t r = read(s, buf + got, n - got);
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

static void outside(int portfd, pid_t program)
{
	sigset_t all;
	sigfillset(&all);
	sigprocmask(SIG_UNBLOCK, &all, NULL);
	alarm(120); /* never outlive a failed test for long */
	setsid();
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (read(portfd, &sin.sin_port, sizeof sin.sin_port) != sizeof sin.sin_port)
		_exit(1);
	close(portfd);
	int s = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
	if (s < 0 || connect(s, (struct sockaddr *)&sin, sizeof sin) != 0)
		_exit(1);
	if (write(s, "hello", 5) != 5)
		_exit(1);
	for (int i = 0; i < TICKS; i++) {
		char t[8];
		snprintf(t, sizeof t, "tick%02d", i);
		if (write(s, t, 6) != 6)
			_exit(2); /* reset: the lock failed */
		ckpt_sleep_ms(50);
	}
	char buf[64];
	size_t n = strlen(EARLY);
	if (read_exact_outside(s, buf, n + 4, program) != 0)
		_exit(4);
	if (memcmp(buf, EARLY, n) != 0 || memcmp(buf + n, "ping", 4) != 0 || write(s, "pong", 4) != 4)
		_exit(5);
	_exit(0);
}

static void read_exact(int fd, char *buf, size_t n, const char *what)
{
	size_t got = 0;
	while (got < n) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		CHECK_SYS(poll(&p, 1, 20000) == 1, "%s: %zu of %zu bytes came", what, got, n);
		ssize_t r = read(fd, buf + got, n - got);
		CHECK_SYS(r > 0, "%s: read after %zu of %zu bytes", what, got, n);
		got += (size_t)r;
	}
}

int main(void)
{
	ckpt_block_term();
	int p[2], st;
	CHECK_SYS(pipe(p) == 0, "pipe");
	pid_t self = getpid(), pid = fork();
	CHECK_SYS(pid >= 0, "fork");
	if (pid == 0) {
		if (fork() != 0)
			_exit(0);
		close(p[1]);
		outside(p[0], self);
	}
	close(p[0]);
	CHECK_SYS(waitpid(pid, &st, 0) == pid, "waitpid");

	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof sin;
	int l = socket(AF_INET, SOCK_STREAM, IPPROTO_MPTCP);
	CHECK_SYS(l >= 0, "socket(IPPROTO_MPTCP)");
	CHECK_SYS(bind(l, (struct sockaddr *)&sin, sl) == 0 && listen(l, 4) == 0 &&
		      getsockname(l, (struct sockaddr *)&sin, &sl) == 0,
		  "MPTCP listener");
	CHECK_SYS(write(p[1], &sin.sin_port, sizeof sin.sin_port) == sizeof sin.sin_port, "port to the client");
	close(p[1]);
	int c = accept(l, NULL, NULL);
	CHECK_SYS(c >= 0, "accept the outside client");
	char buf[16];
	read_exact(c, buf, 5, "hello");
	CHECK(memcmp(buf, "hello", 5) == 0, "hello: wrong bytes");
	CHECK_SYS(write(c, EARLY, strlen(EARLY)) == (ssize_t)strlen(EARLY), "write before the dump");

	ckpt_ready();
	ckpt_wait_term();

	for (int i = 0; i < TICKS; i++) {
		char want[8];
		snprintf(want, sizeof want, "tick%02d", i);
		read_exact(c, buf, 6, want);
		CHECK(memcmp(buf, want, 6) == 0, "got %.6s, want %s", buf, want);
	}
	CHECK_SYS(write(c, "ping", 4) == 4, "ping");
	read_exact(c, buf, 4, "pong");
	CHECK(memcmp(buf, "pong", 4) == 0, "pong: wrong bytes");

	int n = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
	CHECK_SYS(n >= 0 && connect(n, (struct sockaddr *)&sin, sizeof sin) == 0, "a new client");
	int a = accept(l, NULL, NULL);
	CHECK_SYS(a >= 0, "accept the new client");
	CHECK_SYS(write(n, "new", 3) == 3, "new client writes");
	read_exact(a, buf, 3, "new client");
	CHECK(memcmp(buf, "new", 3) == 0, "new client: wrong bytes");
	ckpt_pass();
}
