/* ckpt-test: */
/*
 * cpu_affinity: the CPUs a restored task may run on. ckpt does not dump
 * the affinity mask (nor does CRIU): a restored thread runs where ckpt's
 * restore could, which here, started by the same harness, is where the
 * program ran before. The restore pins its tracees to one CPU while it
 * injects their calls; every thread must have the whole mask back when
 * it is let go:
 *  - the main thread, a second thread and a child process each note
 *    their mask at the start (sched_getaffinity);
 *  - after the restore each compares its mask with the one it noted.
 */
#include "ckpt_test.h"

#include <pthread.h>
#include <sched.h>
#include <sys/wait.h>

static cpu_set_t thread_before;
static volatile int thread_state; /* 1: noted, 2: told to check, 3: ok, 4: bad */

static int same_mask(const cpu_set_t *before, const char *who)
{
	cpu_set_t now;

	if (sched_getaffinity(0, sizeof(now), &now) != 0) {
		ckpt_log("%s: sched_getaffinity: %s", who, strerror(errno));
		return 0;
	}
	if (!CPU_EQUAL(&now, before)) {
		ckpt_log("%s: %d CPUs allowed after the restore, %d before", who, CPU_COUNT(&now), CPU_COUNT(before));
		return 0;
	}
	return 1;
}

static void *thread_main(void *arg)
{
	(void)arg;
	if (sched_getaffinity(0, sizeof(thread_before), &thread_before) != 0)
		thread_state = 4;
	else
		thread_state = 1;
	while (thread_state != 2)
		usleep(1000);
	thread_state = same_mask(&thread_before, "thread") ? 3 : 4;
	return NULL;
}

int main(void)
{
	ckpt_block_term();
	cpu_set_t before;
	CHECK_SYS(sched_getaffinity(0, sizeof(before), &before) == 0, "sched_getaffinity");
	long online = sysconf(_SC_NPROCESSORS_ONLN);
	ckpt_log("%d CPUs allowed, %ld online", CPU_COUNT(&before), online);

	pthread_t th;
	CHECK(pthread_create(&th, NULL, thread_main, NULL) == 0, "pthread_create");
	while (thread_state == 0)
		usleep(1000);
	CHECK(thread_state == 1, "thread: sched_getaffinity failed");

	int pipefd[2];
	CHECK_SYS(pipe(pipefd) == 0, "pipe");
	pid_t child = fork();
	CHECK_SYS(child >= 0, "fork");
	if (child == 0) {
		cpu_set_t mine;
		close(pipefd[0]);
		if (sched_getaffinity(0, sizeof(mine), &mine) != 0)
			_exit(2);
		if (write(pipefd[1], "x", 1) != 1)
			_exit(2);
		close(pipefd[1]);
		ckpt_wait_term();
		_exit(same_mask(&mine, "child") ? 0 : 1);
	}
	close(pipefd[1]);
	char c;
	CHECK_SYS(read(pipefd[0], &c, 1) == 1, "child's start");
	close(pipefd[0]);

	ckpt_ready();
	ckpt_wait_term();

	CHECK(same_mask(&before, "main thread"), "the main thread's CPU mask changed across the restore");
	thread_state = 2;
	CHECK(pthread_join(th, NULL) == 0, "pthread_join");
	CHECK(thread_state == 3, "the second thread's CPU mask changed across the restore");
	CHECK_SYS(kill(child, SIGTERM) == 0, "kill child");
	int st = 0;
	CHECK_SYS(waitpid(child, &st, 0) == child, "waitpid(child)");
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child's CPU mask changed across the restore (status %#x)", st);
	ckpt_pass();
}
