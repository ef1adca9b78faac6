/* ckpt-test: */
/*
 * A pipeline inside the tree, as `loop | cat >> file` makes it: the root
 * forks a writer W whose stdout is the pipe's write end and a reader R
 * whose stdin is its read end, and closes both ends itself. W writes a
 * line on each SIGUSR1; R copies every line it reads to the file "out".
 * After the restore the pipe must still join W's fd 1 to R's fd 0: a
 * line W writes then must reach "out". A pipe between two tasks of the
 * tree is the tree's own, not stdio to inherit (pipeline_j runs this
 * with --shell-job too).
 */
#include "ckpt_test.h"

#include <sys/wait.h>

/* writer: line N on each SIGUSR1, until SIGTERM. Its fd 1 is the pipe,
 * so it reports only through its exit status. */
static void writer(void)
{
	sigset_t set;
	siginfo_t si;
	char line[32];
	int n = 0;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGTERM);
	for (;;) {
		int s = sigwaitinfo(&set, &si);
		if (s == SIGTERM)
			_exit(0);
		if (s != SIGUSR1)
			continue;
		int len = snprintf(line, sizeof(line), "line %d\n", ++n);
		if (write(1, line, (size_t)len) != len)
			_exit(2);
	}
}

/* reader: copies stdin to "out" until EOF. */
static void reader(void)
{
	char buf[256];
	int out = open("out", O_WRONLY | O_CREAT | O_APPEND, 0644);

	if (out < 0)
		_exit(3);
	for (;;) {
		ssize_t n = read(0, buf, sizeof(buf));
		if (n == 0)
			_exit(0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			_exit(4);
		}
		if (write(out, buf, (size_t)n) != n)
			_exit(5);
	}
}

/* wait_line waits until "out" holds want. */
static int wait_line(const char *want)
{
	char buf[4096];

	for (int i = 0; i < 1000; i++) {
		ssize_t n = ckpt_read_file("out", buf, sizeof(buf));
		if (n > 0 && strstr(buf, want))
			return 1;
		ckpt_sleep_ms(5);
	}
	return 0;
}

int main(void)
{
	int p[2];
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGTERM);
	CHECK_SYS(sigprocmask(SIG_BLOCK, &set, NULL) == 0, "block signals");
	CHECK_SYS(pipe(p) == 0, "pipe");
	pid_t w = fork();
	CHECK_SYS(w >= 0, "fork writer");
	if (w == 0) {
		if (dup2(p[1], 1) != 1)
			_exit(6);
		close(p[0]);
		close(p[1]);
		writer();
	}
	pid_t r = fork();
	CHECK_SYS(r >= 0, "fork reader");
	if (r == 0) {
		if (dup2(p[0], 0) != 0)
			_exit(6);
		close(p[0]);
		close(p[1]);
		reader();
	}
	close(p[0]);
	close(p[1]);
	CHECK_SYS(kill(w, SIGUSR1) == 0, "signal the writer");
	CHECK(wait_line("line 1\n"), "the first line did not go through the pipeline");

	ckpt_ready();
	ckpt_wait_term();

	CHECK_SYS(kill(w, SIGUSR1) == 0, "signal the writer after the restore");
	CHECK(wait_line("line 2\n"), "a line written after the restore did not reach the reader: the pipe no longer joins the writer's stdout to the reader's stdin");
	CHECK_SYS(kill(w, SIGTERM) == 0, "stop the writer");
	int ws;
	CHECK_SYS(waitpid(w, &ws, 0) == w, "wait writer");
	CHECK(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "writer status %#x", ws);
	CHECK_SYS(waitpid(r, &ws, 0) == r, "wait reader");
	CHECK(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "reader status %#x (it ends at the pipe's EOF)", ws);
	ckpt_pass();
}
