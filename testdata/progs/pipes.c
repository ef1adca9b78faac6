/* ckpt-test: */
/*
 * Pipes: one inside the process with bytes buffered in it (and a bigger
 * one, resized to 256 KiB, holding 100 KiB); one between the process and
 * a child that is blocked reading it; one between two children (a writer
 * and a reader) that the parent no longer holds, with bytes in flight.
 * After the restore the buffered bytes, sizes and flags must be there and
 * every end must still reach the same pipe.
 */
#include "ckpt_test.h"

#include <sys/wait.h>

static void child_reader(int rfd, const char *want)
{
	char buf[64] = {0};
	ssize_t n = read(rfd, buf, sizeof buf - 1); /* blocks at dump time */
	CHECK_SYS(n == (ssize_t)strlen(want), "child: read %zd bytes", n);
	CHECK(memcmp(buf, want, n) == 0, "child: read '%s', want '%s'", buf, want);
	_exit(0);
}

int main(void)
{
	ckpt_block_term();
	int in[2], big[2], toc[2], link[2];
	CHECK_SYS(pipe(in) == 0 && pipe2(big, O_NONBLOCK) == 0 && pipe(toc) == 0 && pipe(link) == 0, "pipe");
	CHECK_SYS(write(in[1], "hello", 5) == 5, "write in");
	CHECK_SYS(fcntl(big[1], F_SETPIPE_SZ, 256 * 1024) >= 256 * 1024, "F_SETPIPE_SZ");
	static unsigned char blob[100 * 1024];
	ckpt_fill(blob, sizeof blob, 9, 0);
	CHECK_SYS(write(big[1], blob, sizeof blob) == (ssize_t)sizeof blob, "write big");

	pid_t c = fork();
	CHECK_SYS(c >= 0, "fork");
	if (c == 0) {
		close(toc[1]);
		child_reader(toc[0], "ping");
	}
	close(toc[0]);
	pid_t a = fork();
	CHECK_SYS(a >= 0, "fork A");
	if (a == 0) {
		close(link[0]);
		CHECK_SYS(write(link[1], "abc", 3) == 3, "A: write");
		ckpt_wait_term();
		_exit(0);
	}
	pid_t b = fork();
	CHECK_SYS(b >= 0, "fork B");
	if (b == 0) {
		close(link[1]);
		ckpt_wait_term();
		char buf[8] = {0};
		CHECK_SYS(read(link[0], buf, 3) == 3 && memcmp(buf, "abc", 3) == 0, "B: read '%s'", buf);
		_exit(0);
	}
	close(link[0]);
	close(link[1]);
	usleep(100000); /* let A write and the reader block */
	int fl_in0 = fcntl(in[0], F_GETFL), fl_big0 = fcntl(big[0], F_GETFL);

	ckpt_ready();
	ckpt_wait_term();

	CHECK(fcntl(in[0], F_GETFL) == fl_in0, "in[0] flags %#x -> %#x", fl_in0, fcntl(in[0], F_GETFL));
	CHECK(fcntl(big[0], F_GETFL) == fl_big0, "big[0] flags %#x -> %#x", fl_big0, fcntl(big[0], F_GETFL));
	CHECK(fcntl(big[1], F_GETPIPE_SZ) >= 256 * 1024, "big pipe size %d", fcntl(big[1], F_GETPIPE_SZ));
	char buf[16] = {0};
	CHECK_SYS(read(in[0], buf, sizeof buf) == 5 && memcmp(buf, "hello", 5) == 0, "in: read '%s'", buf);
	CHECK_SYS(write(in[1], "again", 5) == 5, "in: write after restore");
	CHECK_SYS(read(in[0], buf, sizeof buf) == 5 && memcmp(buf, "again", 5) == 0, "in: read again");
	static unsigned char got[100 * 1024];
	CHECK_SYS(read(big[0], got, sizeof got) == (ssize_t)sizeof got, "big: read");
	CHECK(memcmp(got, blob, sizeof got) == 0, "big: data differs");
	CHECK(read(big[0], got, 1) < 0 && errno == EAGAIN, "big: more data than written");

	CHECK_SYS(write(toc[1], "ping", 4) == 4, "write to child");
	pid_t kids[3] = {c, a, b};
	for (int i = 0; i < 3; i++) {
		int st;
		if (kids[i] != c)
			CHECK_SYS(kill(kids[i], SIGTERM) == 0, "kill %d", kids[i]);
		CHECK_SYS(waitpid(kids[i], &st, 0) == kids[i], "waitpid %d", kids[i]);
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child %d status %#x", kids[i], st);
	}
	ckpt_pass();
}
