/* ckpt-test: */
/*
 * A memfd of huge pages (memfd_create with MFD_HUGETLB | MFD_HUGE_2MB,
 * two 2 MiB pages), held by an fd at an offset and mapped shared twice:
 * the whole file read-write and its second page read-only. After the
 * restore the fd still names a memfd of 2 MiB pages (fstat st_blksize)
 * with the same name, size and offset; both mappings show the pattern
 * written before the dump, are still hugetlb (smaps KernelPageSize
 * 2048 kB, VmFlags ht) and still share the file: a write through the
 * read-write mapping shows in the read-only one and through read(2).
 */
#include "ckpt_test.h"

#include <sys/stat.h>

/* Free pages wanted: 2 for the program, 2 for its restored self. */
#define RAISE 4
#include "hugepool.h"

#ifndef MFD_HUGE_2MB
#define MFD_HUGE_2MB (21U << 26)
#endif

int main(void)
{
	uint8_t *rw, *ro;
	struct stat st;
	char link[128], want[64];
	uint8_t b[16];
	size_t off;
	int fd;

	ckpt_block_term();
	raise_pool(2);
	fd = memfd_create("huge-pool", MFD_CLOEXEC | MFD_HUGETLB | MFD_HUGE_2MB);
	HCHECK(fd >= 0, "memfd_create MFD_HUGETLB");
	HCHECK(ftruncate(fd, 2 * HUGE) == 0, "ftruncate 4 MiB");
	rw = mmap(NULL, 2 * HUGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	HCHECK(rw != MAP_FAILED, "mmap the memfd read-write");
	ckpt_fill(rw, 2 * HUGE, 44, 0);
	ro = mmap(NULL, HUGE, PROT_READ, MAP_SHARED, fd, HUGE);
	HCHECK(ro != MAP_FAILED, "mmap its second page read-only");
	HCHECK(lseek(fd, 12345, SEEK_SET) == 12345, "lseek");
	check_huge(rw, "read-write", 1);
	check_huge(ro, "read-only", 1);

	ckpt_ready();
	ckpt_wait_term();

	HCHECK(fstat(fd, &st) == 0, "fstat");
	HCHECK(st.st_blksize == (blksize_t)HUGE, "st_blksize %ld, want 2 MiB", (long)st.st_blksize);
	HCHECK(st.st_size == (off_t)(2 * HUGE), "size %lld", (long long)st.st_size);
	HCHECK(lseek(fd, 0, SEEK_CUR) == 12345, "offset %lld", (long long)lseek(fd, 0, SEEK_CUR));
	snprintf(want, sizeof(want), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(want, link, sizeof(link) - 1);
	HCHECK(n > 0, "readlink");
	link[n] = 0;
	HCHECK(strstr(link, "/memfd:huge-pool") == link, "fd names %s", link);
	off = ckpt_verify(rw, 2 * HUGE, 44, 0);
	HCHECK(off == (size_t)-1, "read-write mapping differs at byte %zu", off);
	off = ckpt_verify(ro, HUGE, 44, HUGE);
	HCHECK(off == (size_t)-1, "read-only mapping differs at byte %zu", off);
	check_huge(rw, "read-write", 1);
	check_huge(ro, "read-only", 1);
	/* Still one file: a write shows in the other mapping and in read(2). */
	rw[HUGE + 100] = 0xa5;
	HCHECK(ro[100] == 0xa5, "the read-only mapping does not see the write");
	HCHECK(pread(fd, b, sizeof(b), HUGE + 100) == (ssize_t)sizeof(b) && b[0] == 0xa5, "read(2) does not see the write");
	HCHECK(munmap(rw, 2 * HUGE) == 0 && munmap(ro, HUGE) == 0, "munmap");
	close(fd);
	give_back();
	ckpt_pass();
}
