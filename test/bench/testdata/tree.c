/*
 * tree: the target of BenchmarkDumpRestoreTree.
 *
 *   tree N
 *
 * Makes a tree of N processes: process k forks processes 2k+1 and 2k+2
 * (those below N), a binary tree of depth log2(N), the root being
 * process 0. Every process other than the root tells the root it is up
 * with one byte on a pipe, closes the pipe and waits in pause(); once
 * all N-1 bytes are in, the root closes the pipe, writes
 *
 *   READY n=1000
 *
 * to stdout with write(2) and waits in pause() too. Any fd above 2 it
 * inherited is closed first (a dump takes only fds 0-2).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static void say(const char *s)
{
	size_t n = strlen(s);

	while (n > 0) {
		ssize_t w = write(1, s, n);

		if (w <= 0)
			_exit(2);
		s += w;
		n -= (size_t)w;
	}
}

static void fail(const char *what)
{
	char line[128];

	snprintf(line, sizeof(line), "FAIL: %s: %s\n", what, strerror(errno));
	say(line);
	_exit(1);
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? strtol(argv[1], NULL, 10) : 0, k = 0, c, got = 0;
	char line[64], buf[256];
	int pfd[2], fd;

	if (syscall(SYS_close_range, 3U, ~0U, 0U) != 0)
		for (fd = 3; fd < 4096; fd++)
			close(fd);
	if (n < 1) {
		say("FAIL: usage: tree N (N >= 1)\n");
		return 1;
	}
	if (pipe(pfd) != 0)
		fail("pipe");
again:
	for (c = 2 * k + 1; c <= 2 * k + 2 && c < n; c++) {
		pid_t pid = fork();

		if (pid < 0)
			fail("fork");
		if (pid == 0) {
			k = c;
			goto again;
		}
	}
	if (k != 0) {
		if (write(pfd[1], "x", 1) != 1)
			fail("write");
		close(pfd[0]);
		close(pfd[1]);
		for (;;)
			pause();
	}
	close(pfd[1]);
	while (got < n - 1) {
		ssize_t r = read(pfd[0], buf, sizeof(buf));

		if (r <= 0)
			fail("read");
		got += r;
	}
	close(pfd[0]);
	snprintf(line, sizeof(line), "READY n=%ld\n", n);
	say(line);
	for (;;)
		pause();
}
