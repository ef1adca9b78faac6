/* ckpt-test: */
/*
 * Shared anonymous memory whose first pages are no longer mapped: four
 * pages mapped MAP_SHARED|MAP_ANONYMOUS, each filled with a pattern of
 * its own, then the first page unmapped, so that the task's mapping
 * starts at offset 4096 of the object (/proc/self/maps shows it). A child
 * shares the mapping. After the restore the three pages hold their
 * patterns at the same offset, and a write by the child is seen by the
 * parent: still one object.
 */
#include "ckpt_test.h"

#include <sys/mman.h>
#include <sys/wait.h>

#define PAGE 4096

int main(void)
{
	ckpt_block_term();
	unsigned char *m = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK_SYS(m != MAP_FAILED, "mmap");
	for (int i = 0; i < 4; i++)
		ckpt_fill(m + i * PAGE, PAGE, 100 + (uint32_t)i, 0);
	CHECK_SYS(munmap(m, PAGE) == 0, "munmap the first page");
	unsigned char *p = m + PAGE;
	pid_t c = fork();
	CHECK_SYS(c >= 0, "fork");
	if (c == 0) {
		ckpt_wait_term();
		p[2 * PAGE] = 0x5a; /* the parent checks it */
		_exit(0);
	}
	char line[256];
	CHECK(ckpt_maps_line(p, line, sizeof(line)) == 0, "no maps line for %p", (void *)p);
	CHECK(strstr(line, " 00001000 ") != NULL, "the mapping does not start at offset 0x1000: %s", line);

	ckpt_ready();
	ckpt_wait_term();

	CHECK(ckpt_maps_line(p, line, sizeof(line)) == 0, "no maps line for %p after the restore", (void *)p);
	CHECK(strstr(line, " 00001000 ") != NULL, "the mapping does not start at offset 0x1000 after the restore: %s", line);
	for (int i = 1; i < 4; i++) {
		size_t bad = ckpt_verify(m + i * PAGE, PAGE, 100 + (uint32_t)i, 0);
		CHECK(bad == (size_t)-1, "page %d differs at byte %zu", i, bad);
	}
	CHECK_SYS(kill(c, SIGTERM) == 0, "kill child");
	int st;
	CHECK_SYS(waitpid(c, &st, 0) == c, "waitpid");
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
	CHECK(p[2 * PAGE] == 0x5a, "the child's write is not seen: the mapping is no longer shared");
	ckpt_pass();
}
