/*
 * lazy1g: the target process of BenchmarkLazyRestore1GiB.
 *
 * As touch1g: maps 1 GiB of private anonymous memory, writes PATTERN ^ i
 * into every 8-byte word of page i, prints
 *
 *   READY addr=0x7f0123400000 len=1073741824 gap=0x...
 *
 * (gap= is where touch1g keeps its heartbeat's longest gap, which the
 * shared READY parser wants; lazy1g has no heartbeat: the word stays 0)
 * and then waits for SIGUSR1 (blocked, sigwaitinfo). For each one it
 * reads the first word of the page whose index the signal's value gives
 * (sigqueue), and prints "UP <index> ok" or "UP <index> bad": the
 * benchmark's proof that a lazily restored task runs and reads its
 * memory.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define LEN (1UL << 30)
#define PATTERN 0xC0FFEE5A5A000000ULL

static volatile uint64_t no_gap;

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

int main(void)
{
	long pg = sysconf(_SC_PAGESIZE);
	char line[128];
	unsigned char *p;
	sigset_t set;
	siginfo_t si;
	size_t i;
	int fd;

	if (syscall(SYS_close_range, 3U, ~0U, 0U) != 0)
		for (fd = 3; fd < 4096; fd++)
			close(fd);
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);
	p = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		snprintf(line, sizeof(line), "FAIL: mmap: %s\n", strerror(errno));
		say(line);
		return 1;
	}
	for (i = 0; i < LEN / (size_t)pg; i++) {
		uint64_t *w = (uint64_t *)(p + i * (size_t)pg);
		uint64_t v = PATTERN ^ (uint64_t)i;
		size_t j;

		for (j = 0; j < (size_t)pg / sizeof(*w); j++)
			w[j] = v;
	}
	snprintf(line, sizeof(line), "READY addr=%p len=%lu gap=%p\n", (void *)p, LEN, (void *)&no_gap);
	say(line);
	for (;;) {
		if (sigwaitinfo(&set, &si) < 0)
			continue;
		i = (size_t)si.si_value.sival_int % (LEN / (size_t)pg);
		snprintf(line, sizeof(line), "UP %zu %s\n", i,
			 *(uint64_t *)(p + i * (size_t)pg) == (PATTERN ^ (uint64_t)i) ? "ok" : "bad");
		say(line);
	}
}
