/* ckpt-test: expect=dump-fail dump-error=/proc/1/status */
/*
 * An fd on /proc/1/status: process 1 is not in the dumped tree, so after
 * a restore the path could name another process. The dump must refuse
 * it by name and leave the process as it was.
 */
#include "ckpt_test.h"

int main(void)
{
	ckpt_block_term();
	int fd = open("/proc/1/status", O_RDONLY);
	CHECK_SYS(fd >= 0, "open /proc/1/status");

	ckpt_ready();
	ckpt_wait_term();

	char buf[64];
	CHECK_SYS(read(fd, buf, sizeof(buf)) > 0, "read /proc/1/status");
	ckpt_pass();
}
