/* ckpt-test: expect=dump-fail dump-error=F_SETLEASE args=--file-locks */
/*
 * A read lease (F_SETLEASE F_RDLCK). ckpt does not restore leases (the
 * kernel breaks a lease on the opens that a restore may make, and has no
 * way to take one back as it was): even with --file-locks the dump is
 * refused, naming the lease, and the task keeps it.
 */
#include "ckpt_test.h"

int main(void)
{
	ckpt_block_term();
	int w = open("leased", O_WRONLY | O_CREAT, 0644);
	CHECK_SYS(w >= 0, "create");
	CHECK_SYS(close(w) == 0, "close");
	int fd = open("leased", O_RDONLY);
	CHECK_SYS(fd >= 0, "open");
	CHECK_SYS(fcntl(fd, F_SETLEASE, F_RDLCK) == 0, "F_SETLEASE");

	ckpt_ready();
	ckpt_wait_term();

	int l = fcntl(fd, F_GETLEASE);
	CHECK(l == F_RDLCK, "the lease is gone (F_GETLEASE %d)", l);
	ckpt_pass();
}
