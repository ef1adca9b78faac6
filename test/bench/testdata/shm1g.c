/*
 * shm1g: the target of BenchmarkShmem1GiB.
 *
 *   shm1g [sysv]
 *
 * Maps 1 GiB of shared anonymous memory (MAP_SHARED|MAP_ANONYMOUS: a
 * shmem object, as PostgreSQL's shared_buffers), or with "sysv" attaches
 * a SysV shared memory segment of 1 GiB (shmget, shmat; marked for
 * removal at once, so that it goes with the last detach), and writes a non-zero
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
#include <sys/shm.h>
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

int main(int argc, char **argv)
{
	long pg = sysconf(_SC_PAGESIZE);
	char line[128];
	unsigned char *p;
	size_t i;
	int fd;

	if (syscall(SYS_close_range, 3U, ~0U, 0U) != 0)
		for (fd = 3; fd < 4096; fd++)
			close(fd);
	if (argc > 1 && strcmp(argv[1], "sysv") == 0) {
		int id = shmget(IPC_PRIVATE, LEN, IPC_CREAT | 0600);

		p = id < 0 ? MAP_FAILED : shmat(id, NULL, 0);
		if (p == (void *)-1)
			p = MAP_FAILED;
		if (p != MAP_FAILED && shmctl(id, IPC_RMID, NULL) != 0)
			p = MAP_FAILED;
	} else {
		p = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	}
	if (p == MAP_FAILED) {
		snprintf(line, sizeof(line), "FAIL: map: %s\n", strerror(errno));
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
