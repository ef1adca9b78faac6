/* ckpt-test: expect=dump-fail dump-error=F_OFD_SETLKW args=--file-locks */
/*
 * A child blocked waiting for an OFD lock (F_OFD_SETLKW on a range whose
 * OFD lock its parent holds). /proc/locks names no process for an OFD
 * request: the dump finds the wait from the child's system call. Even
 * with --file-locks it is refused, naming the wait, before the child is
 * frozen, and the tree goes on: once the parent lets go of its lock the
 * child gets it. (file_locks_wait: the same with flock.)
 */
#define _FILE_OFFSET_BITS 64
#include "ckpt_test.h"

#include <sys/file.h>
#include <sys/wait.h>

/* waiting tells whether /proc/locks lists a blocked OFD request (the
 * child's: no other process uses these files). */
static int waiting(pid_t pid)
{
	char buf[65536], pat[32];
	ssize_t n = ckpt_read_file("/proc/locks", buf, sizeof(buf));
	if (n < 0)
		return 0;
	buf[n] = 0;
	(void)pid; /* an OFD request names no process */
	snprintf(pat, sizeof(pat), "-> OFDLCK ADVISORY  WRITE -1 ");
	return strstr(buf, pat) != NULL;
}

int main(void)
{
	ckpt_block_term();
	int fd = open("locked", O_RDWR | O_CREAT, 0644);
	CHECK_SYS(fd >= 0, "create");
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10};
	CHECK_SYS(fcntl(fd, F_OFD_SETLK, &fl) == 0, "F_OFD_SETLK");
	pid_t c = fork();
	CHECK_SYS(c >= 0, "fork");
	if (c == 0) {
		/* Its own open file: it waits for the parent's lock. */
		int f2 = open("locked", O_RDWR);
		struct flock w = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 5, .l_len = 10};
		if (f2 < 0 || fcntl(f2, F_OFD_SETLKW, &w) != 0)
			_exit(2);
		_exit(0);
	}
	for (int i = 0; !waiting(c); i++) {
		CHECK(i < 20000, "the child does not wait for the lock");
		usleep(1000);
	}

	ckpt_ready();
	ckpt_wait_term();

	CHECK(waiting(c), "the child no longer waits for the lock");
	fl.l_type = F_UNLCK;
	CHECK_SYS(fcntl(fd, F_OFD_SETLK, &fl) == 0, "unlock");
	int st;
	CHECK_SYS(waitpid(c, &st, 0) == c, "waitpid");
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
	ckpt_pass();
}
