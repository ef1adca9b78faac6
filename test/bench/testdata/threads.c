/*
 * threads: the target of BenchmarkDumpRestoreThreads.
 *
 *   threads N
 *
 * Starts N threads besides the main one; each waits in pause(). Once all
 * have started, the main thread writes
 *
 *   READY n=200
 *
 * to stdout with write(2) and waits in pause() too. Any fd above 2 it
 * inherited is closed first (a dump takes only fds 0-2).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static long started;

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

static void *run(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&mu);
	started++;
	pthread_cond_signal(&cv);
	pthread_mutex_unlock(&mu);
	for (;;)
		pause();
	return NULL;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? strtol(argv[1], NULL, 10) : 0, i;
	pthread_attr_t attr;
	char line[64];
	int fd, err;

	if (syscall(SYS_close_range, 3U, ~0U, 0U) != 0)
		for (fd = 3; fd < 4096; fd++)
			close(fd);
	if (n < 1) {
		say("FAIL: usage: threads N (N >= 1)\n");
		return 1;
	}
	/* Small stacks: 200 threads of the default 8 MiB would be 1.6 GiB
	 * of address space, too much for an ia32 task. */
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 64 << 10);
	for (i = 0; i < n; i++) {
		pthread_t t;

		if ((err = pthread_create(&t, &attr, run, NULL)) != 0) {
			snprintf(line, sizeof(line), "FAIL: pthread_create: %s\n", strerror(err));
			say(line);
			return 1;
		}
	}
	pthread_mutex_lock(&mu);
	while (started < n)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	snprintf(line, sizeof(line), "READY n=%ld\n", n);
	say(line);
	for (;;)
		pause();
}
