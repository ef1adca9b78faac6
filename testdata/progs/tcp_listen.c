/* ckpt-test: */
/*
 * tcp_listen: TCP listening sockets come back with their address, port,
 * backlog and options. An IPv4 listener on 127.0.0.1 (SO_REUSEADDR,
 * TCP_NODELAY, SO_KEEPALIVE with TCP_KEEPIDLE 77, backlog 7, O_NONBLOCK),
 * an IPv6 listener on ::1 (IPV6_V6ONLY, SO_REUSEPORT, a receive buffer
 * set by the program), a dual-stack IPv6 listener on :: (V6ONLY off) and
 * a TCP socket only bound, not listening. After the restore: the same
 * ports, states, backlogs and options; the program connects to the IPv4
 * listener itself and a forked process connects to the IPv6 one and to
 * the dual-stack one over IPv4; each connection carries bytes both ways.
 */
#include "ckpt_test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>

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

static int bind4(int fd, const char *ip, int port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	inet_pton(AF_INET, ip, &sin.sin_addr);
	return bind(fd, (struct sockaddr *)&sin, sizeof sin);
}

static int bind6(int fd, const char *ip, int port)
{
	struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port)};
	inet_pton(AF_INET6, ip, &sin6.sin6_addr);
	return bind(fd, (struct sockaddr *)&sin6, sizeof sin6);
}

static int connect4(int port)
{
	int c = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	CHECK_SYS(c >= 0 && connect(c, (struct sockaddr *)&sin, sizeof sin) == 0, "connect to 127.0.0.1:%d", port);
	return c;
}

static int connect6(int port)
{
	int c = socket(AF_INET6, SOCK_STREAM, 0);
	struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port)};
	inet_pton(AF_INET6, "::1", &sin6.sin6_addr);
	CHECK_SYS(c >= 0 && connect(c, (struct sockaddr *)&sin6, sizeof sin6) == 0, "connect to [::1]:%d", port);
	return c;
}

/* Accepts one connection on l (waiting for it), reads "ping" and answers "pong". */
static void serve_one(int l, const char *what)
{
	struct pollfd p = {.fd = l, .events = POLLIN};
	CHECK_SYS(poll(&p, 1, 10000) == 1, "%s: no connection came", what);
	int a = accept(l, NULL, NULL);
	CHECK_SYS(a >= 0, "%s: accept", what);
	char buf[8] = {0};
	CHECK_SYS(read(a, buf, 4) == 4 && memcmp(buf, "ping", 4) == 0, "%s: read ping", what);
	CHECK_SYS(write(a, "pong", 4) == 4, "%s: write pong", what);
	close(a);
}

static void client_talk(int c, const char *what)
{
	char buf[8] = {0};
	CHECK_SYS(write(c, "ping", 4) == 4, "%s: write ping", what);
	CHECK_SYS(read(c, buf, 4) == 4 && memcmp(buf, "pong", 4) == 0, "%s: read pong", what);
	close(c);
}

int main(void)
{
	ckpt_block_term();
	int l4 = socket(AF_INET, SOCK_STREAM, 0);
	CHECK_SYS(l4 >= 0, "socket");
	seti(l4, SOL_SOCKET, SO_REUSEADDR, 1);
	seti(l4, IPPROTO_TCP, TCP_NODELAY, 1);
	seti(l4, SOL_SOCKET, SO_KEEPALIVE, 1);
	seti(l4, IPPROTO_TCP, TCP_KEEPIDLE, 77);
	CHECK_SYS(bind4(l4, "127.0.0.1", 0) == 0, "bind 127.0.0.1");
	CHECK_SYS(listen(l4, 7) == 0, "listen");
	CHECK_SYS(fcntl(l4, F_SETFL, O_NONBLOCK) == 0, "O_NONBLOCK");

	int l6 = socket(AF_INET6, SOCK_STREAM, 0);
	CHECK_SYS(l6 >= 0, "socket6");
	seti(l6, IPPROTO_IPV6, IPV6_V6ONLY, 1);
	seti(l6, SOL_SOCKET, SO_REUSEPORT, 1);
	seti(l6, SOL_SOCKET, SO_RCVBUF, 100000);
	CHECK_SYS(bind6(l6, "::1", 0) == 0, "bind ::1");
	CHECK_SYS(listen(l6, 3) == 0, "listen6");

	int ld = socket(AF_INET6, SOCK_STREAM, 0);
	CHECK_SYS(ld >= 0, "socket dual");
	seti(ld, IPPROTO_IPV6, IPV6_V6ONLY, 0);
	CHECK_SYS(bind6(ld, "::", 0) == 0, "bind ::");
	CHECK_SYS(listen(ld, 5) == 0, "listen dual");

	int b4 = socket(AF_INET, SOCK_STREAM, 0);
	CHECK_SYS(b4 >= 0 && bind4(b4, "127.0.0.1", 0) == 0, "bind only");

	int p4 = port_of(l4), p6 = port_of(l6), pd = port_of(ld), pb = port_of(b4);
	int rcv6 = geti(l6, SOL_SOCKET, SO_RCVBUF);
	ckpt_log("ports %d %d %d %d", p4, p6, pd, pb);

	ckpt_ready();
	ckpt_wait_term();

	int st;
	unsigned bl;
	CHECK(port_of(l4) == p4 && port_of(l6) == p6 && port_of(ld) == pd && port_of(b4) == pb,
	      "ports %d %d %d %d, were %d %d %d %d", port_of(l4), port_of(l6), port_of(ld), port_of(b4), p4, p6, pd, pb);
	tcp_state(l4, &st, &bl);
	CHECK(st == TCP_LISTEN && bl == 7, "IPv4 listener: state %d backlog %u", st, bl);
	tcp_state(l6, &st, &bl);
	CHECK(st == TCP_LISTEN && bl == 3, "IPv6 listener: state %d backlog %u", st, bl);
	tcp_state(ld, &st, &bl);
	CHECK(st == TCP_LISTEN && bl == 5, "dual listener: state %d backlog %u", st, bl);
	tcp_state(b4, &st, &bl);
	CHECK(st == TCP_CLOSE, "bound socket: state %d", st);
	CHECK(geti(l4, SOL_SOCKET, SO_ACCEPTCONN) == 1 && geti(b4, SOL_SOCKET, SO_ACCEPTCONN) == 0, "SO_ACCEPTCONN");
	CHECK(geti(l4, SOL_SOCKET, SO_REUSEADDR) == 1 && geti(l6, SOL_SOCKET, SO_REUSEADDR) == 0, "SO_REUSEADDR");
	CHECK(geti(l6, SOL_SOCKET, SO_REUSEPORT) == 1 && geti(l4, SOL_SOCKET, SO_REUSEPORT) == 0, "SO_REUSEPORT");
	CHECK(geti(l4, IPPROTO_TCP, TCP_NODELAY) == 1 && geti(l6, IPPROTO_TCP, TCP_NODELAY) == 0, "TCP_NODELAY");
	CHECK(geti(l4, SOL_SOCKET, SO_KEEPALIVE) == 1 && geti(l4, IPPROTO_TCP, TCP_KEEPIDLE) == 77, "keepalive");
	CHECK(geti(l6, IPPROTO_IPV6, IPV6_V6ONLY) == 1 && geti(ld, IPPROTO_IPV6, IPV6_V6ONLY) == 0, "IPV6_V6ONLY");
	CHECK(geti(l6, SOL_SOCKET, SO_RCVBUF) == rcv6, "SO_RCVBUF %d, was %d", geti(l6, SOL_SOCKET, SO_RCVBUF), rcv6);
	CHECK(fcntl(l4, F_GETFL) & O_NONBLOCK, "O_NONBLOCK lost");
	CHECK(!(fcntl(l6, F_GETFL) & O_NONBLOCK), "O_NONBLOCK gained");

	/* Clients: this process to the IPv4 listener, a child to the others. */
	int c = connect4(p4);
	CHECK_SYS(write(c, "ping", 4) == 4, "write ping");
	serve_one(l4, "IPv4 listener");
	char buf[8] = {0};
	CHECK_SYS(read(c, buf, 4) == 4 && memcmp(buf, "pong", 4) == 0, "read pong");
	close(c);
	pid_t child = fork();
	CHECK_SYS(child >= 0, "fork");
	if (child == 0) {
		client_talk(connect6(p6), "child to IPv6");
		client_talk(connect4(pd), "child to dual-stack over IPv4");
		_exit(0);
	}
	serve_one(l6, "IPv6 listener");
	serve_one(ld, "dual-stack listener");
	int ws;
	CHECK_SYS(waitpid(child, &ws, 0) == child, "waitpid");
	CHECK(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "client child: status %#x", ws);
	ckpt_pass();
}
