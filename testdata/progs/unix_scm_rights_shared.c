/* ckpt-test: expect=dump-fail dump-error=both */
/*
 * unix_scm_rights_shared: a file both in flight and held is refused. A
 * datagram socketpair holds, queued, a datagram that carries an fd of a
 * regular file (SCM_RIGHTS) which the sender keeps open: one open file,
 * in flight and at an fd. ckpt would bring them back as two open files
 * that no longer share their offset, so the dump must fail naming the
 * file and the fd that holds it too, and leave the process as it was:
 * after SIGTERM the datagram is received with its file, which shares its
 * offset with the fd kept.
 */
#include "ckpt_test.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/uio.h>

int main(void)
{
	int sp[2], f, got = -1;
	char buf[16], cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {.iov_base = buf, .iov_len = 4};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
	struct cmsghdr *cm;
	ssize_t n;

	ckpt_block_term();
	CHECK_SYS(socketpair(AF_UNIX, SOCK_DGRAM, 0, sp) == 0, "socketpair");
	f = open("shared.txt", O_RDWR | O_CREAT, 0644);
	CHECK_SYS(f >= 0, "open");
	ckpt_write_all(f, "0123456789", 10);
	CHECK_SYS(lseek(f, 2, SEEK_SET) == 2, "lseek");
	memcpy(buf, "file", 4);
	memset(cbuf, 0, sizeof(cbuf));
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &f, sizeof(int));
	CHECK_SYS(sendmsg(sp[0], &mh, 0) == 4, "sendmsg");

	ckpt_ready();
	ckpt_wait_term();

	iov.iov_len = sizeof(buf);
	mh.msg_controllen = sizeof(cbuf);
	n = recvmsg(sp[1], &mh, MSG_DONTWAIT);
	CHECK_SYS(n == 4 && memcmp(buf, "file", 4) == 0, "recvmsg: %zd bytes", n);
	for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
			memcpy(&got, CMSG_DATA(cm), sizeof(int));
	CHECK(got >= 0, "the file is gone");
	CHECK(lseek(got, 0, SEEK_CUR) == 2, "the file's offset");
	CHECK_SYS(lseek(f, 7, SEEK_SET) == 7, "lseek");
	CHECK(lseek(got, 0, SEEK_CUR) == 7, "the offset is not shared");
	ckpt_pass();
}
