/* ckpt-test: expect=dump-fail dump-error=part */
/*
 * A SysV segment (3 pages, in an IPC namespace of the task's own) whose
 * middle page the task unmapped after shmat: a new shmat would attach
 * it whole, so the dump must refuse the area, naming it, and leave the
 * task as it was.
 */
#include "ckpt_test.h"

#include <sched.h>
#include <sys/mman.h>
#include <sys/shm.h>

#define PG 4096

int main(void)
{
	ckpt_block_term();
	CHECK_SYS(unshare(CLONE_NEWIPC) == 0, "unshare(CLONE_NEWIPC)");
	int id = shmget(IPC_PRIVATE, 3 * PG, 0600);
	CHECK_SYS(id >= 0, "shmget");
	unsigned char *m = shmat(id, NULL, 0);
	CHECK_SYS(m != (void *)-1, "shmat");
	ckpt_fill(m, 3 * PG, 31, 0);
	CHECK_SYS(munmap(m + PG, PG) == 0, "munmap the middle page");

	ckpt_ready();
	ckpt_wait_term();

	CHECK(ckpt_verify(m, PG, 31, 0) == (size_t)-1, "first page changed");
	CHECK(ckpt_verify(m + 2 * PG, PG, 31, 2 * PG) == (size_t)-1, "last page changed");
	ckpt_pass();
}
