/* ckpt-test: */
/*
 * A process that called unshare(CLONE_NEWPID) and has not forked since:
 * its next child will be the init of a new PID namespace, which has no
 * process yet. The restore makes such a namespace for it again (the
 * process unshares once more). After the restore its pid_for_children
 * is still a namespace without init, and a child it forks is PID 1
 * there.
 */
#include "ckpt_test.h"

#include <sched.h>
#include <sys/stat.h>
#include <sys/wait.h>

/*
 * fresh tells that pid_for_children is a namespace without an init yet:
 * its link does not resolve (ENOENT) until the first child is born.
 */
static int fresh(void)
{
	struct stat st;
	if (stat("/proc/self/ns/pid_for_children", &st) == 0)
		return 0;
	CHECK_SYS(errno == ENOENT, "stat /proc/self/ns/pid_for_children");
	return 1;
}

int main(void)
{
	ckpt_block_term();
	CHECK_SYS(unshare(CLONE_NEWPID) == 0, "unshare(CLONE_NEWPID)");
	CHECK(fresh(), "unshare did not make a new namespace for our children");

	ckpt_ready();
	ckpt_wait_term();

	CHECK(fresh(), "our children's PID namespace is not a new one any more");
	pid_t c = fork();
	CHECK_SYS(c >= 0, "fork");
	if (c == 0)
		_exit(getpid() == 1 ? 0 : 1);
	int st;
	CHECK_SYS(waitpid(c, &st, 0) == c, "waitpid");
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child was not PID 1 of a new namespace (status %#x)", st);
	ckpt_pass();
}
