/* ckpt-test: expect=dump-fail dump-error=namespace */
/*
 * A task holding an open namespace file (/proc/self/ns/net). ckpt cannot
 * dump one yet: the dump must refuse it, saying it is a namespace file,
 * and leave the task as it was (the fd still open on the same namespace).
 */
#include "ckpt_test.h"

#include <sys/stat.h>

int main(void)
{
	struct stat before, after;

	ckpt_block_term();
	int fd = open("/proc/self/ns/net", O_RDONLY);
	CHECK_SYS(fd >= 0, "open /proc/self/ns/net");
	CHECK_SYS(fstat(fd, &before) == 0, "fstat");

	ckpt_ready();
	ckpt_wait_term();

	CHECK_SYS(fstat(fd, &after) == 0, "fstat after");
	CHECK(after.st_ino == before.st_ino, "fd %d is another file after the refused dump", fd);
	ckpt_pass();
}
