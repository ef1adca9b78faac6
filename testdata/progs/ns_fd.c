/* ckpt-test: */
/*
 * A task holding an open namespace file (/proc/self/ns/net) of its own
 * network namespace, ckpt's: after the restore the fd is on the network
 * namespace the task is in, which is the one it was in (the same inode).
 * (proc_fds covers a namespace made anew; proc_fds_oldns the refusal of
 * a namespace the task has left.)
 */
#include "ckpt_test.h"

#include <sys/stat.h>

int main(void)
{
	struct stat before, after, now;

	ckpt_block_term();
	int fd = open("/proc/self/ns/net", O_RDONLY);
	CHECK_SYS(fd >= 0, "open /proc/self/ns/net");
	CHECK_SYS(fstat(fd, &before) == 0, "fstat");

	ckpt_ready();
	ckpt_wait_term();

	CHECK_SYS(fstat(fd, &after) == 0, "fstat after");
	CHECK_SYS(stat("/proc/self/ns/net", &now) == 0, "stat /proc/self/ns/net");
	CHECK(after.st_ino == now.st_ino && after.st_dev == now.st_dev, "fd %d is not the task's network namespace", fd);
	CHECK(after.st_ino == before.st_ino, "fd %d is another network namespace after the restore", fd);
	ckpt_pass();
}
