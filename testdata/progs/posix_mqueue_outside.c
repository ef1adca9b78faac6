/* ckpt-test: */
/*
 * A named POSIX message queue that a process outside the dumped tree
 * holds open too (a grandchild that left the tree: its parent exited).
 * Its messages stay in the live queue, which the dump must leave alone
 * (not read, not saved), and the restore must open the same queue by
 * name, not make one with the messages again: after the restore the
 * queue holds them exactly once, in order, and is the outsider's.
 * Built with MQ_UNLINKED (posix_mqueue_outside_gone.c) the queue is
 * unlinked: it could not be found again, so the dump refuses it.
 */
#include "ckpt_test.h"

#include <mqueue.h>
#include <sys/stat.h>
#include <sys/wait.h>

static char name[64];

int main(void)
{
	struct mq_attr a = {.mq_maxmsg = 4, .mq_msgsize = 32};
	int sync[2], st;
	pid_t c, outsider;
	char buf[64];
	unsigned prio;

	ckpt_block_term();
	snprintf(name, sizeof(name), "/ckpt-mqueue-shared-%d", getpid());
	mqd_t q = mq_open(name, O_CREAT | O_EXCL | O_RDWR | O_NONBLOCK, 0600, &a);
	CHECK_SYS(q != (mqd_t)-1, "mq_open %s", name);
	CHECK_SYS(mq_send(q, "second", 7, 1) == 0 && mq_send(q, "first", 6, 5) == 0, "mq_send");
	CHECK_SYS(pipe(sync) == 0, "pipe");
	c = fork();
	CHECK_SYS(c >= 0, "fork");
	if (c == 0) {
		pid_t g = fork();
		if (g == 0) {
			setsid();
			alarm(120); /* never outlive the test for long */
			mqd_t h = mq_open(name, O_RDONLY);
			if (h == (mqd_t)-1)
				_exit(1);
			g = getpid();
			if (write(sync[1], &g, sizeof(g)) != sizeof(g) || write(sync[1], &h, sizeof(h)) != sizeof(h))
				_exit(1);
			for (;;)
				pause();
		}
		_exit(g > 0 ? 0 : 1);
	}
	CHECK_SYS(waitpid(c, &st, 0) == c, "waitpid");
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
	mqd_t theirs;
	CHECK_SYS(read(sync[0], &outsider, sizeof(outsider)) == sizeof(outsider) &&
			  read(sync[0], &theirs, sizeof(theirs)) == sizeof(theirs),
		  "read the outsider's pid and fd");
	close(sync[0]);
	close(sync[1]);
#ifdef MQ_UNLINKED
	CHECK_SYS(mq_unlink(name) == 0, "mq_unlink");
#endif

	ckpt_ready();
	ckpt_wait_term();

	struct stat mine, its;
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)outsider, (int)theirs);
	int e1 = fstat(q, &mine), e2 = stat(path, &its);
	kill(outsider, SIGKILL);
	mq_unlink(name);
	CHECK_SYS(e1 == 0 && e2 == 0, "stat the queue and the outsider's");
	CHECK(mine.st_dev == its.st_dev && mine.st_ino == its.st_ino, "the queue is not the outsider's any more");
	struct mq_attr now;
	CHECK_SYS(mq_getattr(q, &now) == 0, "mq_getattr");
	CHECK(now.mq_curmsgs == 2 && now.mq_flags == O_NONBLOCK, "%ld messages, flags %#lx; want 2, O_NONBLOCK",
	      (long)now.mq_curmsgs, (long)now.mq_flags);
	CHECK_SYS(mq_receive(q, buf, sizeof(buf), &prio) == 6 && strcmp(buf, "first") == 0 && prio == 5, "first message");
	CHECK_SYS(mq_receive(q, buf, sizeof(buf), &prio) == 7 && strcmp(buf, "second") == 0 && prio == 1, "second message");
	ckpt_pass();
}
