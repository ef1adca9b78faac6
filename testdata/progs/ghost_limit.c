/* ckpt-test: expect=dump-fail dump-error=--ghost-limit */
/*
 * ghost_limit: a file unlinked while open that is larger than the
 * default --ghost-limit (1 MiB) is refused at dump, naming the file, its
 * size and the option, and the task goes on as it was: the file is still
 * open, unlinked, with its contents and offset.
 */
#include "ckpt_test.h"

#include <sys/stat.h>

#define SIZE ((2 << 20) + 123)

static char buf[SIZE];

int main(void)
{
	struct stat st;
	int fd = open("big.dat", O_RDWR | O_CREAT | O_TRUNC, 0600);

	CHECK_SYS(fd >= 0, "create big.dat");
	ckpt_fill(buf, SIZE, 9, 0);
	CHECK_SYS(write(fd, buf, SIZE) == SIZE, "write big.dat");
	CHECK_SYS(unlink("big.dat") == 0, "unlink");
	CHECK_SYS(lseek(fd, 77, SEEK_SET) == 77, "lseek");

	ckpt_block_term();
	ckpt_ready();
	ckpt_wait_term();

	CHECK_SYS(fstat(fd, &st) == 0, "fstat");
	CHECK(st.st_nlink == 0 && st.st_size == SIZE, "nlink %lu size %lld", (unsigned long)st.st_nlink, (long long)st.st_size);
	CHECK(lseek(fd, 0, SEEK_CUR) == 77, "offset moved");
	memset(buf, 0, sizeof(buf));
	CHECK_SYS(pread(fd, buf, SIZE, 0) == SIZE, "pread");
	CHECK(ckpt_verify(buf, SIZE, 9, 0) == (size_t)-1, "contents changed");
	ckpt_pass();
}
