/* ckpt-test: expect=dump-fail dump-error=io_uring */
/*
 * io_uring_refused: an io_uring instance, its submission ring mapped.
 * No kernel interface shows an io_uring's rings and requests to another
 * process, so ckpt cannot dump one: the dump must refuse it by name and
 * leave the process untouched, the instance still answering
 * io_uring_enter and its ring still mapped.
 */
#include "ckpt_test.h"

#include <linux/io_uring.h>
#include <sys/mman.h>

int main(void)
{
	ckpt_block_term();
	struct io_uring_params p;
	memset(&p, 0, sizeof(p));
	int fd = (int)syscall(__NR_io_uring_setup, 4, &p);
	if (fd < 0 && (errno == ENOSYS || errno == EPERM)) {
		ckpt_fail("no io_uring here (%s): nothing to refuse", strerror(errno));
	}
	CHECK_SYS(fd >= 0, "io_uring_setup");
	size_t len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
	void *sq = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQ_RING);
	CHECK_SYS(sq != MAP_FAILED, "mmap the SQ ring");
	unsigned entries = *(unsigned *)((char *)sq + p.sq_off.ring_entries);
	CHECK(entries == p.sq_entries, "ring_entries %u, want %u", entries, p.sq_entries);

	ckpt_ready();
	ckpt_wait_term();

	CHECK(*(unsigned *)((char *)sq + p.sq_off.ring_entries) == p.sq_entries, "the SQ ring changed");
	CHECK_SYS(syscall(__NR_io_uring_enter, fd, 0, 0, 0, NULL, 0) == 0, "io_uring_enter");
	ckpt_pass();
}
