/* ckpt-test: */
/*
 * stopped: a child stopped by SIGSTOP (group-stop, state T) must come
 * back stopped, not running. The parent forks the child, which stops
 * itself with raise(SIGSTOP); the parent sees the stop with
 * waitpid(WUNTRACED), then prints READY. After SIGTERM the parent checks
 * that the child is still in state T (and stays so for a while), then
 * sends SIGCONT: the child goes on, checks its memory pattern and exits
 * with status 42, which the parent collects.
 */
#include "ckpt_test.h"

#include <sys/wait.h>

#define PATTERN 0x51
static unsigned char pattern[3 * 4096];

static char child_state(pid_t pid)
{
	char path[64], buf[512], *p;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (ckpt_read_file(path, buf, sizeof(buf)) <= 0)
		return '?';
	p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : '?';
}

int main(void)
{
	pid_t child;
	int st;
	char s = '?';

	ckpt_block_term();
	memset(pattern, PATTERN, sizeof(pattern));
	child = fork();
	CHECK_SYS(child >= 0, "fork");
	if (child == 0) {
		raise(SIGSTOP);
		for (size_t i = 0; i < sizeof(pattern); i++)
			if (pattern[i] != PATTERN)
				_exit(3);
		_exit(42);
	}
	CHECK_SYS(waitpid(child, &st, WUNTRACED) == child, "waitpid WUNTRACED");
	CHECK(WIFSTOPPED(st) && WSTOPSIG(st) == SIGSTOP, "child status %#x, not stopped by SIGSTOP", st);
	CHECK(child_state(child) == 'T', "child in state %c before READY", child_state(child));
	ckpt_ready();
	ckpt_wait_term();

	/* The restore stops it again just before it lets it go. */
	for (int i = 0; i < 300 && (s = child_state(child)) != 'T'; i++)
		usleep(10000);
	CHECK(s == 'T', "child in state %c after the restore, want T (stopped)", s);
	usleep(200000);
	s = child_state(child);
	CHECK(s == 'T', "child went on to state %c while stopped", s);
	CHECK_SYS(kill(child, SIGCONT) == 0, "SIGCONT");
	CHECK_SYS(waitpid(child, &st, 0) == child, "waitpid");
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 42, "child status %#x, want exit 42", st);
	ckpt_pass();
}
