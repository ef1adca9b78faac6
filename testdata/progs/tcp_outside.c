/* ckpt-test: args=--tcp-established */
/*
 * tcp_outside: an established TCP connection to a peer outside the
 * dumped tree survives the dump and the restore with --tcp-established:
 * the network lock keeps the peer's packets away while the connection
 * has no socket (else the kernel would answer them with a reset), and
 * the peer keeps its socket and goes on talking. The peer (a grandchild
 * left to the subreaper by a double fork) listens on loopback, says
 * "hello", then sends "tick00".."tick39" every 50 ms, through the dump
 * and the restore, then waits for "ping" and answers "pong". After the
 * restore the program reads every byte in order and the exchange ends.
 */
#include "ckpt_test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>

#define TICKS 40

static void outside(int ready, pid_t program)
{
	sigset_t all;
	sigfillset(&all);
	sigprocmask(SIG_UNBLOCK, &all, NULL);
	alarm(120); /* never outlive a failed test for long */
	setsid();
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof sin;
	int l = socket(AF_INET, SOCK_STREAM, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&sin, sl) != 0 || listen(l, 1) != 0 ||
	    getsockname(l, (struct sockaddr *)&sin, &sl) != 0)
		_exit(1);
	ckpt_write_all(ready, (char *)&sin.sin_port, sizeof sin.sin_port);
	close(ready);
	int s = accept(l, NULL, NULL);
	if (s < 0)
		_exit(1);
	close(l);
	if (write(s, "hello", 5) != 5)
		_exit(1);
	for (int i = 0; i < TICKS; i++) {
		char t[8];
		snprintf(t, sizeof t, "tick%02d", i);
		if (write(s, t, 6) != 6)
			_exit(2); /* reset: the lock failed */
		ckpt_sleep_ms(50);
	}
	char buf[4];
	size_t got = 0;
	while (got < 4) {
		struct pollfd p = {.fd = s, .events = POLLIN};
		if (poll(&p, 1, 1000) == 0) {
			if (kill(program, 0) < 0 && errno == ESRCH)
				_exit(3);
			continue;
		}
		ssize_t n = read(s, buf + got, 4 - got);
		if (n <= 0)
			_exit(4);
		got += (size_t)n;
	}
	if (memcmp(buf, "ping", 4) != 0 || write(s, "pong", 4) != 4)
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
		close(p[0]);
		outside(p[1], self);
	}
	close(p[1]);
	in_port_t port;
	CHECK_SYS(read(p[0], &port, sizeof port) == sizeof port, "outside port");
	close(p[0]);
	CHECK_SYS(waitpid(pid, &st, 0) == pid, "waitpid");
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = port, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int c = socket(AF_INET, SOCK_STREAM, 0);
	CHECK_SYS(c >= 0 && connect(c, (struct sockaddr *)&sin, sizeof sin) == 0, "connect to the outside peer");
	char buf[16];
	read_exact(c, buf, 5, "hello");
	CHECK(memcmp(buf, "hello", 5) == 0, "hello: wrong bytes");

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
	ckpt_pass();
}
