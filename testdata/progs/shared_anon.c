/* ckpt-test: */
/*
 * Memory shared with MAP_SHARED|MAP_ANONYMOUS between a parent and its
 * child, touched by both before the checkpoint. After the restore both
 * must still see one object: what the child writes, the parent reads.
 */
#include "ckpt_test.h"

#include <sys/mman.h>
#include <sys/wait.h>

#define LEN (64 * 1024)

int main(void)
{
	ckpt_block_term();
	unsigned char *m = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK_SYS(m != MAP_FAILED, "mmap");
	ckpt_fill(m, 4096, 5, 0);
	pid_t c = fork();
	CHECK_SYS(c >= 0, "fork");
	if (c == 0) {
		memcpy(m + 4096, "child", 6);
		ckpt_wait_term();
		CHECK(memcmp(m + 4096, "child", 6) == 0, "child: its own write is gone");
		memcpy(m + 8192, "after", 6);
		_exit(0);
	}
	while (memcmp(m + 4096, "child", 6) != 0)
		usleep(1000);
	ckpt_ready();
	ckpt_wait_term();
	size_t bad = ckpt_verify(m, 4096, 5, 0);
	CHECK(bad == (size_t)-1, "parent pattern broken at %zu", bad);
	CHECK(memcmp(m + 4096, "child", 6) == 0, "the child's write before the dump is gone");
	int st;
	CHECK_SYS(kill(c, SIGTERM) == 0, "kill");
	CHECK_SYS(waitpid(c, &st, 0) == c, "waitpid");
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
	CHECK(memcmp(m + 8192, "after", 6) == 0, "the child's write after the restore is not shared");
	ckpt_pass();
}
