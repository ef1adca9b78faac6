/*
 * touch1g: the target process of BenchmarkDumpRestore1GiB.
 *
 *   touch1g [notouch]
 *
 * Maps 1 GiB of private anonymous memory and, unless "notouch" is given,
 * writes a non-zero pattern to every page: every 8-byte word of page i
 * holds PATTERN ^ i. Then it starts a heartbeat thread, writes one line to
 * stdout with write(2),
 *
 *   READY addr=0x7f0123400000 len=1073741824 gap=0x5600000040a0
 *
 * and sleeps in a loop until it is killed.
 *
 * The heartbeat thread sleeps 200 us at a time and keeps, in the 64-bit
 * word at the address given as gap=, the longest time in nanoseconds
 * between two of its wakeups (CLOCK_MONOTONIC): how long the task was
 * frozen as the task itself sees it. The benchmark writes 0 there before
 * a dump --leave-running and reads it after.
 *
 * Any fd above 2 it inherited is closed first: a dump accepts only fds
 * 0-2, and os/exec passes on whatever the test process itself inherited
 * without FD_CLOEXEC.
 *
 * The "notouch" form only maps the memory (no page is resident); the
 * benchmark uses it as a destination to measure writes to /proc/PID/mem.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define LEN (1UL << 30)
#define PATTERN 0xC0FFEE5A5A000000ULL

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

static volatile uint64_t max_gap_ns;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void *heartbeat(void *arg)
{
	struct timespec d = { 0, 200000 };
	uint64_t last = now_ns();

	(void)arg;
	for (;;) {
		uint64_t t;

		nanosleep(&d, NULL);
		t = now_ns();
		if (t - last > max_gap_ns)
			max_gap_ns = t - last;
		last = t;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	int touch = !(argc > 1 && strcmp(argv[1], "notouch") == 0);
	long pg = sysconf(_SC_PAGESIZE);
	char line[128];
	unsigned char *p;
	size_t i;
	int fd;

	if (syscall(SYS_close_range, 3U, ~0U, 0U) != 0)
		for (fd = 3; fd < 4096; fd++)
			close(fd);
	p = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		snprintf(line, sizeof(line), "FAIL: mmap: %s\n", strerror(errno));
		say(line);
		return 1;
	}
	if (touch) {
		for (i = 0; i < LEN / (size_t)pg; i++) {
			uint64_t *w = (uint64_t *)(p + i * (size_t)pg);
			uint64_t v = PATTERN ^ (uint64_t)i;
			size_t j;

			for (j = 0; j < (size_t)pg / sizeof(*w); j++)
				w[j] = v;
		}
	}
	if (touch) {
		pthread_t hb;

		if (pthread_create(&hb, NULL, heartbeat, NULL) != 0) {
			say("FAIL: pthread_create\n");
			return 1;
		}
	}
	snprintf(line, sizeof(line), "READY addr=%p len=%lu gap=%p\n", (void *)p, LEN, (void *)&max_gap_ns);
	say(line);
	for (;;)
		sleep(1);
}
