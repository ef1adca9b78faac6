/* ckpt-test: */
/*
 * unix_scm_rights_sock: unix sockets in flight come back. Queued on a
 * seqpacket socketpair, not received yet, are a record that carries one
 * end of a stream socketpair (the sender closed its copy; the process
 * keeps the other end), with bytes queued both ways on that pair, and a
 * record that carries a non-blocking end of a datagram socketpair that
 * itself has a datagram queued which carries the read end of a pipe whose
 * write end the process keeps (files in flight inside a file in flight).
 * After the restore both records are received with their sockets, the
 * queued bytes and datagram read back, the pipe joins its two ends, and
 * every pair carries new data both ways.
 */
#include "ckpt_test.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/uio.h>

static void send_fd(int sk, const char *msg, int fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {.iov_base = (void *)msg, .iov_len = strlen(msg)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
	struct cmsghdr *cm;

	memset(cbuf, 0, sizeof(cbuf));
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	CHECK_SYS(sendmsg(sk, &mh, 0) == (ssize_t)strlen(msg), "sendmsg %s", msg);
}

static int recv_fd(int sk, const char *want, const char *what)
{
	char buf[64], cbuf[CMSG_SPACE(sizeof(int) * 4)];
	struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
	struct cmsghdr *cm;
	ssize_t n = recvmsg(sk, &mh, MSG_DONTWAIT);
	int fd = -1;

	CHECK_SYS(n >= 0, "%s: recvmsg", what);
	CHECK((size_t)n == strlen(want) && memcmp(buf, want, (size_t)n) == 0, "%s: got %zd bytes", what, n);
	for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		CHECK(cm->cmsg_type == SCM_RIGHTS && cm->cmsg_len == CMSG_LEN(sizeof(int)), "%s: control message", what);
		memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	}
	CHECK(fd >= 0, "%s: no file", what);
	return fd;
}

static void expect_msg(int fd, const char *want, const char *what)
{
	char buf[64];
	ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

	CHECK_SYS(n >= 0, "%s: recv", what);
	CHECK((size_t)n == strlen(want) && memcmp(buf, want, (size_t)n) == 0, "%s: got %zd bytes", what, n);
}

int main(void)
{
	int q[2], s[2], d[2], p[2], ys, yd, rp, type;
	socklen_t len = sizeof(type);
	char buf[16];

	ckpt_block_term();
	CHECK_SYS(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, q) == 0, "socketpair seqpacket");
	CHECK_SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, s) == 0, "socketpair stream");
	CHECK_SYS(socketpair(AF_UNIX, SOCK_DGRAM, 0, d) == 0, "socketpair dgram");
	CHECK_SYS(pipe(p) == 0, "pipe");
	ckpt_write_all(s[0], "to-flying", 9);
	ckpt_write_all(s[1], "from-flying", 11);
	ckpt_write_all(p[1], "piped", 5);
	CHECK_SYS(fcntl(d[1], F_SETFL, O_NONBLOCK) == 0, "O_NONBLOCK");
	send_fd(d[0], "nested", p[0]);
	close(p[0]);
	send_fd(q[0], "stream-end", s[1]);
	close(s[1]);
	send_fd(q[0], "dgram-end", d[1]);
	close(d[1]);

	ckpt_ready();
	ckpt_wait_term();

	ys = recv_fd(q[1], "stream-end", "record with the stream end");
	CHECK_SYS(getsockopt(ys, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM, "stream end: type %d", type);
	expect_msg(ys, "to-flying", "bytes queued to the end in flight");
	expect_msg(s[0], "from-flying", "bytes the end in flight sent");
	ckpt_write_all(ys, "new-a", 5);
	expect_msg(s[0], "new-a", "stream: new bytes one way");
	ckpt_write_all(s[0], "new-b", 5);
	expect_msg(ys, "new-b", "stream: new bytes the other way");

	yd = recv_fd(q[1], "dgram-end", "record with the datagram end");
	CHECK((fcntl(yd, F_GETFL) & O_NONBLOCK) != 0, "datagram end: O_NONBLOCK lost");
	rp = recv_fd(yd, "nested", "datagram with the pipe's read end");
	CHECK(read(rp, buf, sizeof(buf)) == 5 && memcmp(buf, "piped", 5) == 0, "pipe: the bytes before the dump");
	ckpt_write_all(p[1], "more", 4);
	CHECK(read(rp, buf, sizeof(buf)) == 4 && memcmp(buf, "more", 4) == 0, "pipe: new bytes");
	CHECK_SYS(send(yd, "dg-a", 4, 0) == 4, "send yd");
	expect_msg(d[0], "dg-a", "datagram: one way");
	CHECK_SYS(send(d[0], "dg-b", 4, 0) == 4, "send d[0]");
	expect_msg(yd, "dg-b", "datagram: the other way");
	ckpt_pass();
}
