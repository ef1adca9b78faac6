/* ckpt-test: */
/*
 * unix_scm_rights: files in flight come back. Queued on unix sockets,
 * not received yet, are messages that carry descriptors (SCM_RIGHTS)
 * whose senders closed their copies: on a stream socketpair, plain bytes
 * and then a message with two regular files (one read-write at offset 3,
 * one write-only O_APPEND); on a seqpacket socketpair, a plain record and
 * then a record with a read-only file at offset 5 of a file that was
 * written since, then a record with two pipe ends: the write end of a pipe
 * whose read end the process keeps, and the read end (O_NONBLOCK) of a
 * pipe whose write end it keeps, each pipe holding bytes, then a record
 * with the read end of a pipe whose write end only a child holds; on a
 * datagram socketpair, one datagram with a file. After the restore every message
 * reads back with its bytes, record boundaries and files: offsets, access
 * modes and flags as they were, the files' contents readable and
 * writable, the pipes' bytes still in them and each pipe joining the end
 * received to the end kept (writes go through, EOF once the write end
 * received is closed), the child's end writing into the end received.
 */
#include "ckpt_test.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>

static void send_fds(int sk, const char *msg, const int *fds, int n)
{
	char cbuf[CMSG_SPACE(sizeof(int) * 4)];
	struct iovec iov = {.iov_base = (void *)msg, .iov_len = strlen(msg)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)n)};
	struct cmsghdr *cm;

	memset(cbuf, 0, sizeof(cbuf));
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)n);
	memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)n);
	CHECK_SYS(sendmsg(sk, &mh, 0) == (ssize_t)strlen(msg), "sendmsg %s", msg);
}

/* recv_fds receives one message: its bytes must be want, and it must
 * carry nfds files, returned in fds. */
static void recv_fds(int sk, const char *want, int *fds, int nfds, const char *what)
{
	char buf[256], cbuf[CMSG_SPACE(sizeof(int) * 8)];
	struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
	struct cmsghdr *cm;
	ssize_t n = recvmsg(sk, &mh, MSG_DONTWAIT);
	int got = 0;

	CHECK_SYS(n >= 0, "%s: recvmsg", what);
	CHECK((size_t)n == strlen(want) && memcmp(buf, want, (size_t)n) == 0, "%s: got %zd bytes '%.*s'", what, n, (int)(n > 0 ? n : 0), buf);
	CHECK(!(mh.msg_flags & (MSG_CTRUNC | MSG_TRUNC)), "%s: truncated (flags %#x)", what, mh.msg_flags);
	for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		CHECK(cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS, "%s: control message %d/%d", what, cm->cmsg_level, cm->cmsg_type);
		got = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		CHECK(got == nfds, "%s: %d files, want %d", what, got, nfds);
		memcpy(fds, CMSG_DATA(cm), sizeof(int) * (size_t)got);
	}
	CHECK(got == nfds, "%s: %d files, want %d", what, got, nfds);
}

static void expect_file(int fd, off_t pos, int acc, int flag, const char *rest, const char *what)
{
	char buf[64];
	int fl = fcntl(fd, F_GETFL);
	off_t at = lseek(fd, 0, SEEK_CUR);
	ssize_t n;

	CHECK_SYS(fl >= 0, "%s: F_GETFL", what);
	CHECK((fl & O_ACCMODE) == acc && (fl & flag) == flag, "%s: flags %#x", what, fl);
	CHECK(at == pos, "%s: at offset %lld, want %lld", what, (long long)at, (long long)pos);
	if (rest) {
		n = read(fd, buf, sizeof(buf));
		CHECK_SYS(n >= 0, "%s: read", what);
		CHECK((size_t)n == strlen(rest) && memcmp(buf, rest, (size_t)n) == 0, "%s: read '%.*s'", what, (int)n, buf);
	}
}

static int open_at(const char *path, int flags, off_t pos)
{
	int fd = open(path, flags, 0644);

	CHECK_SYS(fd >= 0, "open %s", path);
	CHECK_SYS(lseek(fd, pos, SEEK_SET) == pos, "lseek %s", path);
	return fd;
}

static void expect_plain(int sk, const char *want, const char *what)
{
	char buf[64];
	ssize_t n = recv(sk, buf, strlen(want), MSG_DONTWAIT);

	CHECK_SYS(n >= 0, "%s: recv", what);
	CHECK((size_t)n == strlen(want) && memcmp(buf, want, (size_t)n) == 0, "%s: got %zd bytes", what, n);
}

int main(void)
{
	int st[2], sq[2], sd[2], pa[2], pb[2], pc[2], ctl[2], fds[2], files[2], f, status;
	char buf[64];
	ssize_t n;
	pid_t child;

	ckpt_block_term();
	/* A child that holds the write end of pipe c, and writes into it
	 * when told to on ctl. */
	CHECK_SYS(pipe(pc) == 0 && pipe(ctl) == 0, "pipe");
	ckpt_write_all(pc[1], "in-c", 4);
	child = fork();
	CHECK_SYS(child >= 0, "fork");
	if (child == 0) {
		close(pc[0]);
		close(ctl[1]);
		if (read(ctl[0], buf, 2) != 2)
			_exit(2);
		_exit(write(pc[1], "from-child", 10) == 10 ? 0 : 3);
	}
	close(pc[1]);
	close(ctl[0]);
	CHECK_SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, st) == 0, "socketpair stream");
	CHECK_SYS(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sq) == 0, "socketpair seqpacket");
	CHECK_SYS(socketpair(AF_UNIX, SOCK_DGRAM, 0, sd) == 0, "socketpair dgram");
	f = open_at("data.txt", O_RDWR | O_CREAT, 0);
	ckpt_write_all(f, "0123456789", 10);
	close(f);
	f = open_at("log.txt", O_WRONLY | O_CREAT, 0);
	ckpt_write_all(f, "log:", 4);
	close(f);

	/* Stream: plain bytes, then two files. */
	ckpt_write_all(st[0], "head", 4);
	files[0] = open_at("data.txt", O_RDWR, 3);
	files[1] = open_at("log.txt", O_WRONLY | O_APPEND, 0);
	send_fds(st[0], "two-files", files, 2);
	close(files[0]);
	close(files[1]);
	/* Seqpacket: a plain record, then a record with a file. */
	CHECK_SYS(send(sq[0], "rec", 3, 0) == 3, "send rec");
	files[0] = open_at("data.txt", O_RDONLY, 5);
	send_fds(sq[0], "rec+fd", files, 1);
	close(files[0]);
	/* Seqpacket: a record with two pipe ends. */
	CHECK_SYS(pipe(pa) == 0 && pipe(pb) == 0, "pipe");
	ckpt_write_all(pa[1], "in-a", 4);
	ckpt_write_all(pb[1], "in-b", 4);
	CHECK_SYS(fcntl(pb[0], F_SETFL, O_NONBLOCK) == 0, "O_NONBLOCK");
	files[0] = pa[1];
	files[1] = pb[0];
	send_fds(sq[0], "pipes", files, 2);
	close(pa[1]);
	close(pb[0]);
	send_fds(sq[0], "child-pipe", &pc[0], 1);
	close(pc[0]);
	/* Datagram: one datagram with a file. */
	files[0] = open_at("data.txt", O_RDONLY, 8);
	send_fds(sd[0], "dgram+fd", files, 1);
	close(files[0]);
	/* The file changes after it was sent: what comes back is the file. */
	f = open_at("data.txt", O_WRONLY, 9);
	ckpt_write_all(f, "X", 1);
	close(f);

	ckpt_ready();
	ckpt_wait_term();

	expect_plain(st[1], "head", "stream bytes before the files");
	recv_fds(st[1], "two-files", fds, 2, "stream message with files");
	expect_file(fds[0], 3, O_RDWR, 0, "345678X", "read-write file");
	ckpt_write_all(fds[0], "!", 1);
	expect_file(fds[1], 0, O_WRONLY, O_APPEND, NULL, "append file");
	ckpt_write_all(fds[1], "entry", 5);
	f = open_at("log.txt", O_RDONLY, 0);
	n = read(f, buf, sizeof(buf));
	CHECK(n == 9 && memcmp(buf, "log:entry", 9) == 0, "log.txt has '%.*s'", (int)(n > 0 ? n : 0), buf);
	close(f);
	f = open_at("data.txt", O_RDONLY, 0);
	n = read(f, buf, sizeof(buf));
	CHECK(n == 11 && memcmp(buf, "012345678X!", 11) == 0, "data.txt has '%.*s'", (int)(n > 0 ? n : 0), buf);
	close(f);
	close(fds[0]);
	close(fds[1]);

	expect_plain(sq[1], "rec", "plain record");
	recv_fds(sq[1], "rec+fd", fds, 1, "record with a file");
	expect_file(fds[0], 5, O_RDONLY, 0, "5678X!", "read-only file");
	close(fds[0]);
	recv_fds(sq[1], "pipes", fds, 2, "record with pipe ends");
	expect_file(fds[0], -1, O_WRONLY, 0, NULL, "write end in flight");
	expect_file(fds[1], -1, O_RDONLY, O_NONBLOCK, NULL, "read end in flight");
	ckpt_write_all(fds[0], "+more", 5);
	n = read(pa[0], buf, sizeof(buf));
	CHECK(n == 9 && memcmp(buf, "in-a+more", 9) == 0, "pipe a: read '%.*s'", (int)(n > 0 ? n : 0), buf);
	close(fds[0]);
	CHECK(read(pa[0], buf, sizeof(buf)) == 0, "pipe a: no EOF once the end received is closed");
	ckpt_write_all(pb[1], "+more", 5);
	n = read(fds[1], buf, sizeof(buf));
	CHECK(n == 9 && memcmp(buf, "in-b+more", 9) == 0, "pipe b: read '%.*s'", (int)(n > 0 ? n : 0), buf);
	CHECK(read(fds[1], buf, sizeof(buf)) < 0 && errno == EAGAIN, "pipe b: not non-blocking");
	close(fds[1]);
	recv_fds(sq[1], "child-pipe", fds, 1, "record with the child's pipe");
	n = read(fds[0], buf, 4);
	CHECK(n == 4 && memcmp(buf, "in-c", 4) == 0, "pipe c: read '%.*s'", (int)(n > 0 ? n : 0), buf);
	ckpt_write_all(ctl[1], "go", 2);
	n = read(fds[0], buf, sizeof(buf));
	CHECK(n == 10 && memcmp(buf, "from-child", 10) == 0, "pipe c: read '%.*s'", (int)(n > 0 ? n : 0), buf);
	CHECK_SYS(waitpid(child, &status, 0) == child, "waitpid");
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %#x", status);
	CHECK(read(fds[0], buf, sizeof(buf)) == 0, "pipe c: no EOF once the child is gone");
	close(fds[0]);
	recv_fds(sd[1], "dgram+fd", fds, 1, "datagram with a file");
	expect_file(fds[0], 8, O_RDONLY, 0, "8X!", "datagram's file");
	close(fds[0]);

	/* Nothing else queued, and the sockets still carry files. */
	CHECK(recv(st[1], buf, sizeof(buf), MSG_DONTWAIT) < 0 && errno == EAGAIN, "stream: more queued");
	CHECK(recv(sq[1], buf, sizeof(buf), MSG_DONTWAIT) < 0 && errno == EAGAIN, "seqpacket: more queued");
	files[0] = open_at("data.txt", O_RDONLY, 1);
	send_fds(st[0], "again", files, 1);
	close(files[0]);
	recv_fds(st[1], "again", fds, 1, "a file sent after the restore");
	expect_file(fds[0], 1, O_RDONLY, 0, "12345678X!", "file sent after the restore");
	ckpt_pass();
}
