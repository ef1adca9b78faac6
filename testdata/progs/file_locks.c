/* ckpt-test: expect=dump-fail dump-error=--file-locks */
/*
 * A task holding file locks: a POSIX write lock (fcntl) on one file and a
 * flock on another, dumped without --file-locks. A restore that dropped
 * the locks would let another process write under the task (sqlite's
 * committed data was lost that way), so such a dump must refuse, as
 * CRIU's does, naming the lock and --file-locks, and leave the task as
 * it was: afterwards another process still finds both files locked.
 * (file_locks_cr dumps and restores locks with --file-locks.)
 */
#include "ckpt_test.h"

#include <sys/file.h>
#include <sys/wait.h>

int main(void)
{
	ckpt_block_term();
	int p = open("posix", O_RDWR | O_CREAT, 0644);
	int f = open("flock", O_RDWR | O_CREAT, 0644);
	CHECK_SYS(p >= 0 && f >= 0, "create");
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10};
	CHECK_SYS(fcntl(p, F_SETLK, &fl) == 0, "fcntl(F_SETLK)");
	CHECK_SYS(flock(f, LOCK_EX) == 0, "flock");

	ckpt_ready();
	ckpt_wait_term();

	pid_t c = fork();
	CHECK_SYS(c >= 0, "fork");
	if (c == 0) {
		/* Another process: both locks must still be there. */
		int p2 = open("posix", O_RDWR), f2 = open("flock", O_RDWR);
		struct flock q = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10};
		if (p2 < 0 || f2 < 0 || fcntl(p2, F_GETLK, &q) != 0)
			_exit(2);
		if (q.l_type != F_WRLCK)
			_exit(3); /* the POSIX lock is gone */
		if (flock(f2, LOCK_EX | LOCK_NB) == 0 || errno != EWOULDBLOCK)
			_exit(4); /* the flock is gone */
		_exit(0);
	}
	int st;
	CHECK_SYS(waitpid(c, &st, 0) == c, "waitpid");
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "a lock is gone after the refused dump (child status %#x: 3 POSIX, 4 flock)", st);
	ckpt_pass();
}
