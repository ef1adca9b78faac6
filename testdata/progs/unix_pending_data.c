/* ckpt-test: expect=dump-fail dump-error=accept() */
/*
 * unix_pending_data: a listening unix socket whose connection arrived but
 * was not accepted yet, and whose client sent data on it. A stream
 * listener and a seqpacket listener each have such a connection (the
 * stream client sent bytes, the seqpacket client two records). The data
 * waits in the queue of the socket accept() will return, which has no fd
 * yet: the kernel gives no way to read it without accepting the
 * connection, which would take it from the task. So the dump refuses,
 * naming the listener, and leaves the process as it was: after SIGTERM
 * both connections are accepted, carry exactly what was sent (and the
 * record boundaries), and talk both ways.
 */
#include "ckpt_test.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <stddef.h>

static int listener(int type, const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, type, 0);

	CHECK_SYS(fd >= 0, "socket");
	strcpy(sa.sun_path, path);
	CHECK_SYS(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "bind %s", path);
	CHECK_SYS(listen(fd, 4) == 0, "listen");
	return fd;
}

static int client(int type, const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, type, 0);

	CHECK_SYS(fd >= 0, "socket");
	strcpy(sa.sun_path, path);
	CHECK_SYS(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "connect %s", path);
	return fd;
}

static void expect_msg(int fd, const char *want, const char *what)
{
	char buf[256];
	ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

	CHECK_SYS(n >= 0, "%s: recv", what);
	CHECK((size_t)n == strlen(want) && memcmp(buf, want, (size_t)n) == 0, "%s: got %zd bytes", what, n);
}

int main(void)
{
	int ls, lq, cs, cq, as, aq;

	ckpt_block_term();
	ls = listener(SOCK_STREAM, "stream.sock");
	lq = listener(SOCK_SEQPACKET, "seqpacket.sock");
	cs = client(SOCK_STREAM, "stream.sock");
	cq = client(SOCK_SEQPACKET, "seqpacket.sock");
	ckpt_write_all(cs, "stream-hello", 12);
	CHECK_SYS(send(cq, "rec-1", 5, 0) == 5 && send(cq, "record-2", 8, 0) == 8, "send cq");

	ckpt_ready();
	ckpt_wait_term();

	as = accept(ls, NULL, NULL);
	CHECK_SYS(as >= 0, "accept the stream connection");
	aq = accept(lq, NULL, NULL);
	CHECK_SYS(aq >= 0, "accept the seqpacket connection");
	expect_msg(as, "stream-hello", "stream data sent before the dump");
	expect_msg(aq, "rec-1", "first record");
	expect_msg(aq, "record-2", "second record");
	ckpt_write_all(as, "back", 4);
	expect_msg(cs, "back", "stream client");
	ckpt_write_all(cs, "more", 4);
	expect_msg(as, "more", "stream server");
	CHECK_SYS(send(aq, "reply", 5, 0) == 5, "send aq");
	expect_msg(cq, "reply", "seqpacket client");
	CHECK_SYS(send(cq, "again", 5, 0) == 5, "send cq");
	expect_msg(aq, "again", "seqpacket server");
	ckpt_pass();
}
