/* ckpt-test: expect=dump-fail dump-error=EPOLL_CTL_DEL */
/*
 * An epoll target whose file no fd of the tree holds any more: eventfd
 * E added as fd 40, then sent over a socketpair (SCM_RIGHTS) and closed:
 * only the message in flight keeps E and so the target alive. The
 * restore could not add it back: the dump must refuse it by name and
 * leave the process as it was.
 */
#include "ckpt_test.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

int main(void)
{
	ckpt_block_term();
	int ep = epoll_create1(0);
	CHECK_SYS(ep >= 0, "epoll_create1");
	int e = eventfd(1, 0);
	CHECK_SYS(e >= 0 && dup2(e, 40) == 40 && close(e) == 0, "eventfd at 40");
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0x4040};
	CHECK_SYS(epoll_ctl(ep, EPOLL_CTL_ADD, 40, &ev) == 0, "add 40");
	int sv[2];
	CHECK_SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "socketpair");
	char byte = 'x';
	struct iovec iov = {.iov_base = &byte, .iov_len = 1};
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} c;
	memset(&c, 0, sizeof(c));
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = c.buf, .msg_controllen = sizeof(c.buf)};
	struct cmsghdr *h = CMSG_FIRSTHDR(&m);
	h->cmsg_level = SOL_SOCKET;
	h->cmsg_type = SCM_RIGHTS;
	h->cmsg_len = CMSG_LEN(sizeof(int));
	int fd40 = 40;
	memcpy(CMSG_DATA(h), &fd40, sizeof(int));
	CHECK_SYS(sendmsg(sv[0], &m, 0) == 1, "sendmsg");
	CHECK_SYS(close(40) == 0, "close 40");

	ckpt_ready();
	ckpt_wait_term();

	struct epoll_event out[2];
	int n = epoll_wait(ep, out, 2, 0);
	CHECK(n == 1 && out[0].data.u64 == 0x4040, "epoll_wait: %d events", n);
	ckpt_pass();
}
