/* ckpt-test: */
/*
 * mem_file_private: MAP_PRIVATE file mappings.
 *  - an 8-page file mapped MAP_PRIVATE RW; pages 1 and 5 modified
 *    (copy-on-write), page 6 only read, the others untouched;
 *  - the same file mapped MAP_PRIVATE PROT_READ at file offset 2 pages;
 * After restore: modifications persist, the file on disk is unchanged,
 * unmodified pages show the file content, the maps lines (range, perms,
 * offset, device, inode, path) are unchanged, and pages that were never
 * written are still backed by the file: a later pwrite() to the file shows
 * through them, while the privately modified page 5 does not change.
 */
#include "ckpt_test.h"

#include <sys/mman.h>
#include <sys/stat.h>

#define NPAGES 8
#define FILE_SEED 11
#define MOD_SEED 12
#define NEW_SEED 13

static size_t pg;

static void check_pat(const char *what, const char *p, size_t len, uint32_t seed, size_t base)
{
	size_t bad = ckpt_verify(p, len, seed, base);

	if (bad != (size_t)-1)
		ckpt_fail("%s: mismatch at offset %zu: got 0x%02x want 0x%02x", what,
			  base + bad, (uint8_t)p[bad], ckpt_pattern(seed, base + bad));
}

int main(void)
{
	static char buf[NPAGES * 65536];
	char *rw, *ro;
	int fd;
	struct stat st0, st1;
	char maps_rw[512], maps_ro[512], tmp[512];
	volatile char sink;
	size_t flen;

	pg = (size_t)sysconf(_SC_PAGESIZE);
	flen = NPAGES * pg;

	fd = open("private.dat", O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK_SYS(fd >= 0, "create private.dat");
	ckpt_fill(buf, flen, FILE_SEED, 0);
	CHECK_SYS(pwrite(fd, buf, flen, 0) == (ssize_t)flen, "write private.dat");
	CHECK_SYS(fsync(fd) == 0, "fsync");
	CHECK_SYS(fstat(fd, &st0) == 0, "fstat");

	rw = mmap(NULL, flen, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	CHECK_SYS(rw != MAP_FAILED, "mmap private rw");
	ro = mmap(NULL, 4 * pg, PROT_READ, MAP_PRIVATE, fd, 2 * pg);
	CHECK_SYS(ro != MAP_FAILED, "mmap private ro");
	close(fd);

	/* Modify pages 1 and 5 (fully for 1, partially for 5). */
	ckpt_fill(rw + 1 * pg, pg, MOD_SEED, 1 * pg);
	ckpt_fill(rw + 5 * pg + 100, 200, MOD_SEED, 5 * pg + 100);
	/* Read page 6 (no COW). */
	sink = rw[6 * pg + 9];
	(void)sink;

	if (ckpt_maps_line(rw, maps_rw, sizeof(maps_rw)) != 0 ||
	    ckpt_maps_line(ro, maps_ro, sizeof(maps_ro)) != 0)
		ckpt_fail("mappings not in maps");
	CHECK(strstr(maps_rw, "private.dat") && strstr(maps_rw, " rw-p 00000000 "),
	      "rw mapping line: %s", maps_rw);
	CHECK(strstr(maps_ro, "private.dat") && strstr(maps_ro, " r--p "),
	      "ro mapping line: %s", maps_ro);

	ckpt_block_term();
	ckpt_ready();
	ckpt_wait_term();

	/* Mapping lines: range, perms, offset, dev, inode, path. */
	if (ckpt_maps_line(rw, tmp, sizeof(tmp)) != 0)
		ckpt_fail("rw mapping vanished");
	CHECK(strcmp(tmp, maps_rw) == 0, "rw mapping was '%s', now '%s'", maps_rw, tmp);
	if (ckpt_maps_line(ro, tmp, sizeof(tmp)) != 0)
		ckpt_fail("ro mapping vanished");
	CHECK(strcmp(tmp, maps_ro) == 0, "ro mapping was '%s', now '%s'", maps_ro, tmp);

	/* Contents of the RW private mapping. */
	for (size_t i = 0; i < NPAGES; i++) {
		char what[64];

		snprintf(what, sizeof(what), "rw page %zu", i);
		if (i == 1) {
			check_pat(what, rw + i * pg, pg, MOD_SEED, i * pg);
		} else if (i == 5) {
			check_pat(what, rw + i * pg, 100, FILE_SEED, i * pg);
			check_pat(what, rw + i * pg + 100, 200, MOD_SEED, i * pg + 100);
			check_pat(what, rw + i * pg + 300, pg - 300, FILE_SEED, i * pg + 300);
		} else {
			check_pat(what, rw + i * pg, pg, FILE_SEED, i * pg);
		}
	}
	/* Contents of the RO mapping: file pages 2..5, unmodified. */
	check_pat("ro mapping", ro, 4 * pg, FILE_SEED, 2 * pg);

	/* The file on disk did not change. */
	fd = open("private.dat", O_RDWR);
	CHECK_SYS(fd >= 0, "reopen private.dat");
	CHECK_SYS(fstat(fd, &st1) == 0, "fstat");
	CHECK(st1.st_ino == st0.st_ino && st1.st_dev == st0.st_dev, "file replaced");
	CHECK(st1.st_size == (off_t)flen, "file size %lld", (long long)st1.st_size);
	CHECK_SYS(pread(fd, buf, flen, 0) == (ssize_t)flen, "pread");
	check_pat("file on disk", buf, flen, FILE_SEED, 0);

	/* Still private: writing the mapping does not reach the file. */
	rw[0] = (char)(rw[0] ^ 0xff);
	CHECK_SYS(pread(fd, buf, 1, 0) == 1, "pread");
	CHECK((uint8_t)buf[0] == ckpt_pattern(FILE_SEED, 0), "private write reached the file");
	rw[0] = (char)(rw[0] ^ 0xff);

	/*
	 * Pages never written are still file-backed: change the file under
	 * pages 3 (untouched), 6 (read before the checkpoint) and 7 (untouched)
	 * and the modified page 5; the private copies of 5 must not change.
	 */
	{
		size_t pages[] = { 3, 5, 6, 7 };

		for (size_t k = 0; k < 4; k++) {
			size_t i = pages[k];
			ckpt_fill(buf, pg, NEW_SEED, i * pg);
			CHECK_SYS(pwrite(fd, buf, pg, (off_t)(i * pg)) == (ssize_t)pg, "pwrite");
		}
		check_pat("rw page 3 after pwrite (must be shared with the file)",
			  rw + 3 * pg, pg, NEW_SEED, 3 * pg);
		check_pat("rw page 6 after pwrite (must be shared with the file)",
			  rw + 6 * pg, pg, NEW_SEED, 6 * pg);
		check_pat("rw page 7 after pwrite (must be shared with the file)",
			  rw + 7 * pg, pg, NEW_SEED, 7 * pg);
		check_pat("ro mapping page for file page 3 after pwrite",
			  ro + 1 * pg, pg, NEW_SEED, 3 * pg);
		check_pat("ro mapping page for file page 5 after pwrite",
			  ro + 3 * pg, pg, NEW_SEED, 5 * pg);
		check_pat("rw page 5 after pwrite (private copy)", rw + 5 * pg + 100, 200,
			  MOD_SEED, 5 * pg + 100);
		check_pat("rw page 5 after pwrite (private copy)", rw + 5 * pg, 100,
			  FILE_SEED, 5 * pg);
	}
	close(fd);

	ckpt_pass();
}
