/* ckpt-test: expect=dump-fail dump-error=own */
/*
 * An fd on the UTS namespace file of a namespace the process has left
 * (opened before unshare(CLONE_NEWUTS)): the restore can reopen only the
 * process's own namespace files, so the dump must refuse it by name and
 * leave the process as it was.
 */
#include "ckpt_test.h"

#include <sched.h>
#include <sys/stat.h>

int main(void)
{
	ckpt_block_term();
	int fd = open("/proc/self/ns/uts", O_RDONLY);
	CHECK_SYS(fd >= 0, "open /proc/self/ns/uts");
	struct stat before, now;
	CHECK_SYS(fstat(fd, &before) == 0, "fstat");
	CHECK_SYS(unshare(CLONE_NEWUTS) == 0, "unshare(CLONE_NEWUTS)");

	ckpt_ready();
	ckpt_wait_term();

	CHECK_SYS(fstat(fd, &now) == 0, "fstat");
	CHECK(now.st_ino == before.st_ino, "the ns fd changed");
	ckpt_pass();
}
