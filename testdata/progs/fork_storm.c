/* ckpt-test: children=churn */
/*
 * fork_storm: the tree changes all the time while ckpt freezes it. The
 * main thread keeps up to 8 children alive, forking a new one as soon as
 * one is reaped; each child sleeps 0-15 ms and exits 42. A second thread
 * creates and joins short-lived threads in a loop. The dump must catch
 * every child and thread that exists when the tree is frozen, however
 * late it was born: after the restore the main thread goes on forking,
 * and on SIGTERM reaps every child it forked. Each reaped pid must be one
 * it forked and not yet reaped, with status 42; a child lost by the dump
 * would make a wait fail with ECHILD, a child that was not its own would
 * be an unknown pid. The thread counter must keep growing too.
 */
#include "ckpt_test.h"

#include <pthread.h>
#include <sys/wait.h>

#define KIDS 8

static pid_t kids[KIDS];
static volatile unsigned long threads_made;
static unsigned long forks, reaped;

static void *short_thread(void *arg)
{
	(void)arg;
	return NULL;
}

static void *spawner(void *arg)
{
	(void)arg;
	for (;;) {
		pthread_t t;
		int err = pthread_create(&t, NULL, short_thread, NULL);
		if (err)
			ckpt_fail("pthread_create: %s", strerror(err));
		pthread_join(t, NULL);
		threads_made++;
	}
	return NULL;
}

static void spawn(int slot)
{
	pid_t p = fork();
	CHECK_SYS(p >= 0, "fork");
	if (p == 0) {
		struct timespec ts = {0, (long)(getpid() % 16) * 1000 * 1000};
		nanosleep(&ts, NULL);
		_exit(42);
	}
	kids[slot] = p;
	forks++;
}

/* reap waits for one child (blocking or not) and refills its slot if
 * refill; it returns 0 when nothing was reaped. */
static int reap(int options, int refill)
{
	int st;
	pid_t p = waitpid(-1, &st, options);
	if (p == 0)
		return 0;
	CHECK_SYS(p > 0, "waitpid (%lu forked, %lu reaped)", forks, reaped);
	int slot = -1;
	for (int i = 0; i < KIDS; i++)
		if (kids[i] == p)
			slot = i;
	CHECK(slot >= 0, "reaped pid %d, which is not a child it forked", (int)p);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 42, "child %d status %#x", (int)p, st);
	kids[slot] = 0;
	reaped++;
	if (refill)
		spawn(slot);
	return 1;
}

static int term_pending(void)
{
	sigset_t set;
	CHECK_SYS(sigpending(&set) == 0, "sigpending");
	return sigismember(&set, SIGTERM);
}

int main(void)
{
	ckpt_block_term();
	pthread_t sp;
	CHECK(pthread_create(&sp, NULL, spawner, NULL) == 0, "pthread_create spawner");
	for (int i = 0; i < KIDS; i++)
		spawn(i);
	int ready = 0;
	unsigned long forks_at_ready = 0, threads_at_ready = 0;
	while (!term_pending()) {
		if (!reap(WNOHANG, 1)) {
			struct timespec ts = {0, 200 * 1000};
			nanosleep(&ts, NULL);
		}
		if (!ready && forks >= 64) {
			ready = 1;
			ckpt_ready();
		}
		if (ready && !forks_at_ready) {
			forks_at_ready = forks;
			threads_at_ready = threads_made;
		}
	}
	CHECK(ready, "SIGTERM before READY");
	unsigned long forks_now = forks, threads_now = threads_made;
	ckpt_log("%lu forks and %lu threads since READY", forks_now - forks_at_ready,
		 threads_now - threads_at_ready);
	CHECK(forks_now > forks_at_ready, "no fork after READY");
	CHECK(threads_now > threads_at_ready, "no thread made after READY");
	while (reaped < forks)
		reap(0, 0);
	CHECK(waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD, "a child left that it did not fork");
	ckpt_pass();
}
