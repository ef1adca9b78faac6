/* ckpt-test: */
/*
 * unix_pair: socketpairs of every unix type come back with what is queued
 * in them. A stream pair with bytes queued both ways and one end shut
 * down for writing; a datagram pair with datagrams of 1, 100 and 3000
 * bytes one way and one the other; a seqpacket pair with two records one
 * way and one back; options (SO_PASSCRED, SO_RCVTIMEO, SO_SNDTIMEO,
 * SO_SNDBUF, O_NONBLOCK); a stream whose peer wrote and was closed
 * (the bytes, then end of file). A stream pair shared with a child: each holds
 * one end, with bytes queued to each. After the restore every message
 * must come back in order with its boundaries, nothing more, and the
 * pairs must still carry new data both ways.
 */
#include "ckpt_test.h"

#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>

static void expect_msg(int fd, const char *want, size_t len, int flags, const char *what)
{
	char buf[8192];
	ssize_t n = recv(fd, buf, sizeof(buf), flags);

	CHECK_SYS(n >= 0, "%s: recv", what);
	CHECK((size_t)n == len && memcmp(buf, want, len) == 0, "%s: got %zd bytes, want %zu", what, n, len);
}

static void expect_empty(int fd, const char *what)
{
	char c;
	ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);

	CHECK(n < 0 && errno == EAGAIN, "%s: more queued (recv %zd, %s)", what, n, strerror(errno));
}

static void child(int fd)
{
	char buf[64];
	ssize_t n;

	ckpt_write_all(fd, "to-parent", 9);
	ckpt_wait_term();
	n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (n != 8 || memcmp(buf, "to-child", 8) != 0)
		_exit(2);
	ckpt_write_all(fd, "child-ok", 8);
	_exit(0);
}

int main(void)
{
	int s[2], d[2], q[2], c[2], o[2], v, avail = 0;
	char big[3000], buf[64];
	struct timeval tv = { 3, 500000 }, got;
	socklen_t len;
	pid_t pid;
	int status;

	ckpt_block_term();
	CHECK_SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, s) == 0, "socketpair stream");
	CHECK_SYS(socketpair(AF_UNIX, SOCK_DGRAM, 0, d) == 0, "socketpair dgram");
	CHECK_SYS(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, q) == 0, "socketpair seqpacket");
	CHECK_SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, c) == 0, "socketpair child");
	CHECK_SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, o) == 0, "socketpair orphan");
	/* A stream whose peer wrote and was closed: the bytes, then EOF. */
	ckpt_write_all(o[1], "last words", 10);
	close(o[1]);

	pid = fork();
	CHECK_SYS(pid >= 0, "fork");
	if (pid == 0) {
		close(c[0]);
		child(c[1]);
	}
	close(c[1]);

	ckpt_write_all(s[0], "hello from 0", 12);
	ckpt_write_all(s[0], ", more", 6);
	ckpt_write_all(s[1], "back from 1", 11);
	CHECK_SYS(shutdown(s[0], SHUT_WR) == 0, "shutdown");
	memset(big, 'z', sizeof(big));
	CHECK_SYS(send(d[0], "a", 1, 0) == 1, "send dgram 1");
	CHECK_SYS(send(d[0], big, 100, 0) == 100, "send dgram 100");
	CHECK_SYS(send(d[0], big, sizeof(big), 0) == (ssize_t)sizeof(big), "send dgram 3000");
	CHECK_SYS(send(d[1], "dgram back", 10, 0) == 10, "send dgram back");
	CHECK_SYS(send(q[0], "rec1", 4, 0) == 4, "send rec1");
	CHECK_SYS(send(q[0], "record-two", 10, 0) == 10, "send rec2");
	CHECK_SYS(send(q[1], "x", 1, 0) == 1, "send seqpacket back");
	ckpt_write_all(c[0], "to-child", 8);

	v = 1;
	CHECK_SYS(setsockopt(q[1], SOL_SOCKET, SO_PASSCRED, &v, sizeof(v)) == 0, "SO_PASSCRED");
	CHECK_SYS(setsockopt(s[1], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == 0, "SO_RCVTIMEO");
	CHECK_SYS(setsockopt(d[1], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == 0, "SO_SNDTIMEO");
	v = 50000;
	CHECK_SYS(setsockopt(d[0], SOL_SOCKET, SO_SNDBUF, &v, sizeof(v)) == 0, "SO_SNDBUF");
	CHECK_SYS(fcntl(s[0], F_SETFL, O_NONBLOCK) == 0, "O_NONBLOCK");

	/* The child's bytes are queued before the dump. */
	for (int i = 0; i < 2000 && avail < 9; i++) {
		CHECK_SYS(ioctl(c[0], FIONREAD, &avail) == 0, "FIONREAD");
		if (avail < 9)
			ckpt_sleep_ms(1);
	}
	CHECK(avail == 9, "child's bytes not queued (%d)", avail);

	ckpt_ready();
	ckpt_wait_term();

	/* Stream: all bytes in order, then end of file (s[0] shut down). */
	{
		char all[18];
		ssize_t n = recv(s[1], all, sizeof(all), MSG_WAITALL);

		CHECK_SYS(n == 18 && memcmp(all, "hello from 0, more", 18) == 0, "stream 0->1 (%zd)", n);
		CHECK(recv(s[1], all, 1, 0) == 0, "stream 0->1: no end of file after shutdown");
	}
	expect_msg(s[0], "back from 1", 11, MSG_DONTWAIT, "stream 1->0");
	expect_empty(s[0], "stream 1->0");
	CHECK(send(s[0], "x", 1, MSG_NOSIGNAL) < 0 && errno == EPIPE, "s[0] can still send after SHUT_WR");
	CHECK_SYS(send(s[1], "new", 3, 0) == 3, "stream 1->0 after restore");
	expect_msg(s[0], "new", 3, 0, "stream 1->0 new");

	/* Datagrams: boundaries kept. */
	expect_msg(d[1], "a", 1, MSG_DONTWAIT, "dgram 1");
	expect_msg(d[1], big, 100, MSG_DONTWAIT, "dgram 100");
	expect_msg(d[1], big, sizeof(big), MSG_DONTWAIT, "dgram 3000");
	expect_empty(d[1], "dgram 0->1");
	expect_msg(d[0], "dgram back", 10, MSG_DONTWAIT, "dgram back");
	expect_empty(d[0], "dgram 1->0");
	CHECK_SYS(send(d[0], "new", 3, 0) == 3, "dgram after restore");
	expect_msg(d[1], "new", 3, MSG_DONTWAIT, "dgram new");

	/* Seqpacket: records kept. */
	expect_msg(q[1], "rec1", 4, MSG_DONTWAIT, "seqpacket rec1");
	expect_msg(q[1], "record-two", 10, MSG_DONTWAIT, "seqpacket rec2");
	expect_empty(q[1], "seqpacket 0->1");
	expect_msg(q[0], "x", 1, MSG_DONTWAIT, "seqpacket back");
	expect_empty(q[0], "seqpacket 1->0");

	/* Options. */
	len = sizeof(v);
	CHECK_SYS(getsockopt(q[1], SOL_SOCKET, SO_PASSCRED, &v, &len) == 0 && v == 1, "SO_PASSCRED lost");
	len = sizeof(got);
	CHECK_SYS(getsockopt(s[1], SOL_SOCKET, SO_RCVTIMEO, &got, &len) == 0, "SO_RCVTIMEO");
	CHECK(got.tv_sec == 3 && got.tv_usec == 500000, "SO_RCVTIMEO %ld.%06ld", (long)got.tv_sec, (long)got.tv_usec);
	len = sizeof(got);
	CHECK_SYS(getsockopt(d[1], SOL_SOCKET, SO_SNDTIMEO, &got, &len) == 0, "SO_SNDTIMEO");
	CHECK(got.tv_sec == 3 && got.tv_usec == 500000, "SO_SNDTIMEO %ld.%06ld", (long)got.tv_sec, (long)got.tv_usec);
	len = sizeof(v);
	CHECK_SYS(getsockopt(d[0], SOL_SOCKET, SO_SNDBUF, &v, &len) == 0 && v == 100000, "SO_SNDBUF %d", v);
	CHECK((fcntl(s[0], F_GETFL) & O_NONBLOCK) != 0, "O_NONBLOCK lost");
	CHECK((fcntl(s[1], F_GETFL) & O_NONBLOCK) == 0, "O_NONBLOCK gained");

	/* The stream whose peer was closed. */
	expect_msg(o[0], "last words", 10, MSG_DONTWAIT, "orphan stream");
	CHECK(recv(o[0], buf, 1, MSG_DONTWAIT) == 0, "orphan stream: no end of file");

	/* The child's end. */
	expect_msg(c[0], "to-parent", 9, MSG_DONTWAIT, "from the child");
	CHECK_SYS(kill(pid, SIGTERM) == 0, "kill child");
	CHECK_SYS(waitpid(pid, &status, 0) == pid, "waitpid");
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %#x", status);
	{
		ssize_t n = recv(c[0], buf, sizeof(buf), MSG_DONTWAIT);

		CHECK(n == 8 && memcmp(buf, "child-ok", 8) == 0, "child's answer (%zd)", n);
	}
	ckpt_pass();
}
