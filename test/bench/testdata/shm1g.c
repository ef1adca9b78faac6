/*
 * shm1g: the target of BenchmarkShmem1GiB.
 *
 *   shm1g
 *
 * Maps 1 GiB of shared anonymous memory (MAP_SHARED|MAP_ANONYMOUS: a
 * shmem object, as PostgreSQL's shared_buffers) and writes a non-zero
 * pattern to every page, as touch1g does: every 8-byte word of page i
 * holds PATTERN ^ i. Then it writes
 *
 *   READY addr=0x7f0123400000 len=1073741824
 *
 * to stdout with write(2) and sleeps in a loop until it is killed. Any
 * fd above 2 it inherited is closed first (a dump takes only fds 0-2).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
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

int main(void)
{
	long pg = sysconf(_SC_PAGESIZE);
	char line[128];
	unsigned char *p;
	size_t i;
	int fd;

	if (syscall(SYS_close_range, 3U, ~0U, 0U) != 0)
		for (fd = 3; fd < 4096; fd++)
			close(fd);
	p = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
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
	snprintf(line, sizeof(line), "READY addr=%p len=%lu\n", (void *)p, LEN);
	say(line);
	for (;;)
		sleep(1);
}
