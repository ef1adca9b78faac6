/*
 * dirty10: the target of BenchmarkPreCopy.
 *
 *   dirty10 MIB
 *
 * Maps MIB MiB of private anonymous memory and writes a non-zero pattern
 * to every page (every 8-byte word of page i holds PATTERN ^ i, as
 * touchn). Then it writes
 *
 *   READY addr=0x7f0123400000 len=1073741824
 *
 * to stdout with write(2), and keeps writing a tenth of its memory: the
 * first word of every tenth page, over and over (page i, i % 10 == 0,
 * gets PATTERN ^ i ^ (sweep << 32)), until it is killed. The other pages
 * keep their pattern. Any fd above 2 it inherited is closed first.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

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

int main(int argc, char **argv)
{
	long pg = sysconf(_SC_PAGESIZE);
	unsigned long mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 0;
	size_t len = (size_t)mib << 20, i, pages;
	uint64_t sweep;
	char line[128];
	unsigned char *p;
	int fd;

	if (syscall(SYS_close_range, 3U, ~0U, 0U) != 0)
		for (fd = 3; fd < 4096; fd++)
			close(fd);
	if (mib == 0 || (sizeof(size_t) == 4 && mib >= 3072)) {
		say("FAIL: usage: dirty10 MIB (0 < MIB, below 3 GiB for ia32)\n");
		return 1;
	}
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		snprintf(line, sizeof(line), "FAIL: mmap: %s\n", strerror(errno));
		say(line);
		return 1;
	}
	pages = len / (size_t)pg;
	for (i = 0; i < pages; i++) {
		uint64_t *w = (uint64_t *)(p + i * (size_t)pg);
		uint64_t v = PATTERN ^ (uint64_t)i;
		size_t j;

		for (j = 0; j < (size_t)pg / sizeof(*w); j++)
			w[j] = v;
	}
	snprintf(line, sizeof(line), "READY addr=%p len=%zu\n", (void *)p, len);
	say(line);
	for (sweep = 1;; sweep++) {
		for (i = 0; i < pages; i += 10)
			*(volatile uint64_t *)(p + i * (size_t)pg) = PATTERN ^ (uint64_t)i ^ (sweep << 32);
		usleep(1000);
	}
}
