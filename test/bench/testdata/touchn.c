/*
 * touchn: the target of BenchmarkDumpRestoreSizes.
 *
 *   touchn MIB
 *
 * Maps MIB MiB of private anonymous memory and writes a non-zero pattern
 * to every page, as touch1g does: every 8-byte word of page i holds
 * PATTERN ^ i. Then it writes
 *
 *   READY addr=0x7f0123400000 len=67108864
 *
 * to stdout with write(2) and sleeps in a loop until it is killed. Any
 * fd above 2 it inherited is closed first (a dump takes only fds 0-2).
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
	size_t len = (size_t)mib << 20, i;
	char line[128];
	unsigned char *p;
	int fd;

	if (syscall(SYS_close_range, 3U, ~0U, 0U) != 0)
		for (fd = 3; fd < 4096; fd++)
			close(fd);
	if (mib == 0 || (sizeof(size_t) == 4 && mib >= 3072)) {
		say("FAIL: usage: touchn MIB (0 < MIB, below 3 GiB for ia32)\n");
		return 1;
	}
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		snprintf(line, sizeof(line), "FAIL: mmap: %s\n", strerror(errno));
		say(line);
		return 1;
	}
	for (i = 0; i < len / (size_t)pg; i++) {
		uint64_t *w = (uint64_t *)(p + i * (size_t)pg);
		uint64_t v = PATTERN ^ (uint64_t)i;
		size_t j;

		for (j = 0; j < (size_t)pg / sizeof(*w); j++)
			w[j] = v;
	}
	snprintf(line, sizeof(line), "READY addr=%p len=%zu\n", (void *)p, len);
	say(line);
	for (;;)
		sleep(1);
}
