/* ckpt-test: expect=dump-fail dump-error=tmpfs */
/*
 * A task in a mount namespace of its own with a tmpfs that holds a file.
 * The content of a tmpfs cannot be dumped yet, so the dump must refuse
 * the task, naming the tmpfs, and leave it as it was: afterwards the
 * file is still there.
 */
#include "ckpt_test.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>

int main(void)
{
	char dir[3072], p[3200];

	ckpt_block_term();
	CHECK_SYS(getcwd(dir, sizeof(dir)) != NULL, "getcwd");
	snprintf(p, sizeof(p), "%s/t", dir);
	CHECK_SYS(mkdir(p, 0755) == 0, "mkdir %s", p);
	CHECK_SYS(unshare(CLONE_NEWNS) == 0, "unshare(CLONE_NEWNS)");
	CHECK_SYS(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0, "make / private");
	CHECK_SYS(mount("tmpfs", p, "tmpfs", 0, "size=1m") == 0, "mount tmpfs");
	snprintf(p, sizeof(p), "%s/t/data", dir);
	int fd = open(p, O_CREAT | O_WRONLY, 0600);
	CHECK_SYS(fd >= 0 && write(fd, "ckpt", 4) == 4, "write %s", p);
	close(fd);

	ckpt_ready();
	ckpt_wait_term();

	char buf[8] = {0};
	CHECK_SYS(ckpt_read_file(p, buf, sizeof(buf)) == 4 && strcmp(buf, "ckpt") == 0, "read %s after the refused dump", p);
	ckpt_pass();
}
