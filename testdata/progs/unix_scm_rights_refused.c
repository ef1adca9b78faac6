/* ckpt-test: expect=dump-fail dump-error=[eventfd] */
/*
 * unix_scm_rights_refused: a file in flight of a kind ckpt cannot send
 * again is refused by name. A stream socketpair holds, queued and not
 * received, a message that carries an eventfd (SCM_RIGHTS) whose sender
 * closed its copy. The dump must fail naming the socket, the message and
 * the eventfd, and leave the process as it was: after SIGTERM the message
 * is received with its eventfd, whose counter is what was written.
 */
#include "ckpt_test.h"

#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>

int main(void)
{
	int sp[2], efd, got = -1;
	uint64_t v = 0;
	char buf[16], cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {.iov_base = buf, .iov_len = 5};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
	struct cmsghdr *cm;
	ssize_t n;

	ckpt_block_term();
	CHECK_SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, sp) == 0, "socketpair");
	efd = eventfd(42, 0);
	CHECK_SYS(efd >= 0, "eventfd");
	memcpy(buf, "event", 5);
	memset(cbuf, 0, sizeof(cbuf));
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &efd, sizeof(int));
	CHECK_SYS(sendmsg(sp[0], &mh, 0) == 5, "sendmsg");
	close(efd);

	ckpt_ready();
	ckpt_wait_term();

	memset(buf, 0, sizeof(buf));
	iov.iov_len = sizeof(buf);
	mh.msg_controllen = sizeof(cbuf);
	n = recvmsg(sp[1], &mh, MSG_DONTWAIT);
	CHECK_SYS(n == 5 && memcmp(buf, "event", 5) == 0, "recvmsg: %zd bytes", n);
	for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
			memcpy(&got, CMSG_DATA(cm), sizeof(int));
	CHECK(got >= 0, "the eventfd is gone");
	CHECK_SYS(read(got, &v, sizeof(v)) == sizeof(v), "read the eventfd");
	CHECK(v == 42, "eventfd counter %llu", (unsigned long long)v);
	ckpt_pass();
}
