/* ckpt-test: expect=dump-fail dump-error=blocked args=--file-locks */
/*
 * A child blocked waiting for a file lock (flock LOCK_EX on a file whose
 * lock its parent holds). A dump would interrupt the wait; even with
 * --file-locks it is refused, naming the wait, before the child is
 * frozen, and the tree goes on: once the parent lets go of its lock the
 * child gets it.
 */
#include "ckpt_test.h"

#include <sys/file.h>
#include <sys/wait.h>

/* waiting tells whether /proc/locks lists a blocked request of pid. */
static int waiting(pid_t pid)
{
	char buf[65536], pat[32];
	ssize_t n = ckpt_read_file("/proc/locks", buf, sizeof(buf));
	if (n < 0)
		return 0;
	buf[n] = 0;
	snprintf(pat, sizeof(pat), "-> FLOCK  ADVISORY  WRITE %d ", (int)pid);
	return strstr(buf, pat) != NULL;
}

int main(void)
{
	ckpt_block_term();
	int fd = open("locked", O_RDWR | O_CREAT, 0644);
	CHECK_SYS(fd >= 0, "create");
	CHECK_SYS(flock(fd, LOCK_EX) == 0, "flock");
	pid_t c = fork();
	CHECK_SYS(c >= 0, "fork");
	if (c == 0) {
		/* Its own open file: it waits for the parent's lock. */
		int f2 = open("locked", O_RDWR);
		if (f2 < 0 || flock(f2, LOCK_EX) != 0)
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
	CHECK_SYS(flock(fd, LOCK_UN) == 0, "unlock");
	int st;
	CHECK_SYS(waitpid(c, &st, 0) == c, "waitpid");
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
	ckpt_pass();
}
