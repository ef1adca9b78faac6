/* ckpt-test: */
/*
 * mem_file_shared: MAP_SHARED file mappings.
 *  - a 4-page file mapped MAP_SHARED RW (whole file) and a second
 *    MAP_SHARED RW mapping of file pages 1..2;
 *  - data written through both mappings before READY (not msync'ed).
 * After restore: the mapping content is what was written, the file (pread)
 * has it too, and both mappings are still shared with the file: a write
 * through a mapping shows in pread() and in the other mapping, and a
 * pwrite() shows in both mappings.
 */
#include "ckpt_test.h"

#include <sys/mman.h>
#include <sys/stat.h>

#define NPAGES 4

static size_t pg;
static char expect[NPAGES * 65536];
static char buf[NPAGES * 65536];

static void cmp(const char *what, const char *got, const char *want, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (got[i] != want[i])
			ckpt_fail("%s: mismatch at offset %zu: got 0x%02x want 0x%02x", what, i,
				  (uint8_t)got[i], (uint8_t)want[i]);
}

int main(void)
{
	char *a, *b;
	int fd;
	size_t flen;
	struct stat st0, st1;
	char maps_a[512], maps_b[512], tmp[512];

	pg = (size_t)sysconf(_SC_PAGESIZE);
	flen = NPAGES * pg;

	fd = open("shared.dat", O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK_SYS(fd >= 0, "create shared.dat");
	ckpt_fill(expect, flen, 21, 0);
	CHECK_SYS(pwrite(fd, expect, flen, 0) == (ssize_t)flen, "write");
	CHECK_SYS(fstat(fd, &st0) == 0, "fstat");

	a = mmap(NULL, flen, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK_SYS(a != MAP_FAILED, "mmap shared a");
	b = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, pg);
	CHECK_SYS(b != MAP_FAILED, "mmap shared b");

	/* Write through a: page 0 fully, page 2 partly; through b: file page 1. */
	ckpt_fill(a, pg, 22, 0);
	ckpt_fill(a + 2 * pg + 512, 1024, 22, 2 * pg + 512);
	ckpt_fill(b + 64, 128, 23, pg + 64);
	ckpt_fill(expect, pg, 22, 0);
	ckpt_fill(expect + 2 * pg + 512, 1024, 22, 2 * pg + 512);
	ckpt_fill(expect + pg + 64, 128, 23, pg + 64);
	cmp("a before", a, expect, flen);
	cmp("b before", b, expect + pg, 2 * pg);

	if (ckpt_maps_line(a, maps_a, sizeof(maps_a)) != 0 ||
	    ckpt_maps_line(b, maps_b, sizeof(maps_b)) != 0)
		ckpt_fail("mappings not in maps");
	CHECK(strstr(maps_a, " rw-s 00000000 ") && strstr(maps_a, "shared.dat"), "a: %s", maps_a);
	CHECK(strstr(maps_b, " rw-s ") && strstr(maps_b, "shared.dat"), "b: %s", maps_b);
	close(fd);	/* only the mappings keep the file */

	ckpt_block_term();
	ckpt_ready();
	ckpt_wait_term();

	if (ckpt_maps_line(a, tmp, sizeof(tmp)) != 0)
		ckpt_fail("mapping a vanished");
	CHECK(strcmp(tmp, maps_a) == 0, "mapping a was '%s', now '%s'", maps_a, tmp);
	if (ckpt_maps_line(b, tmp, sizeof(tmp)) != 0)
		ckpt_fail("mapping b vanished");
	CHECK(strcmp(tmp, maps_b) == 0, "mapping b was '%s', now '%s'", maps_b, tmp);

	cmp("mapping a", a, expect, flen);
	cmp("mapping b", b, expect + pg, 2 * pg);

	fd = open("shared.dat", O_RDWR);
	CHECK_SYS(fd >= 0, "reopen shared.dat");
	CHECK_SYS(fstat(fd, &st1) == 0, "fstat");
	CHECK(st1.st_ino == st0.st_ino && st1.st_dev == st0.st_dev, "shared.dat was replaced");
	CHECK(st1.st_size == (off_t)flen, "file size %lld", (long long)st1.st_size);
	CHECK_SYS(pread(fd, buf, flen, 0) == (ssize_t)flen, "pread");
	cmp("file (pread)", buf, expect, flen);

	/* A write through mapping a reaches the file and mapping b. */
	ckpt_fill(a + pg + 1000, 300, 24, pg + 1000);
	ckpt_fill(expect + pg + 1000, 300, 24, pg + 1000);
	CHECK_SYS(pread(fd, buf, flen, 0) == (ssize_t)flen, "pread");
	cmp("file after write through a", buf, expect, flen);
	cmp("mapping b after write through a", b, expect + pg, 2 * pg);

	/* A write through mapping b reaches the file and mapping a. */
	ckpt_fill(b + pg + 7, 50, 25, 2 * pg + 7);
	ckpt_fill(expect + 2 * pg + 7, 50, 25, 2 * pg + 7);
	CHECK_SYS(pread(fd, buf, flen, 0) == (ssize_t)flen, "pread");
	cmp("file after write through b", buf, expect, flen);
	cmp("mapping a after write through b", a, expect, flen);

	/* pwrite to the file shows through both mappings. */
	ckpt_fill(buf, 2 * pg, 26, pg + pg / 2);
	CHECK_SYS(pwrite(fd, buf, 2 * pg, (off_t)(pg + pg / 2)) == (ssize_t)(2 * pg), "pwrite");
	ckpt_fill(expect + pg + pg / 2, 2 * pg, 26, pg + pg / 2);
	cmp("mapping a after pwrite", a, expect, flen);
	cmp("mapping b after pwrite", b, expect + pg, 2 * pg);

	CHECK_SYS(msync(a, flen, MS_SYNC) == 0, "msync");
	close(fd);
	ckpt_pass();
}
