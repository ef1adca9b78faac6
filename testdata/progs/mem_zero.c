/* ckpt-test: */
/*
 * mem_zero: 64 MiB of private anonymous memory that is only read maps the
 * kernel's zero page and takes no memory. The dump must not turn it into
 * data: after the restore every byte still reads zero, the few pages
 * written before the dump keep their pattern, and the mapping's resident
 * size (Rss in /proc/self/smaps) stays small instead of 64 MiB. On a
 * kernel that maps no zero page (booted with pvm_no_zero_page=1, as the
 * hosts of this project are), the reads take real pages and Rss is 64 MiB
 * before and after: the check holds trivially there, and bites in the
 * test guest, whose kernel has a zero page.
 */
#include "ckpt_test.h"

#include <sys/mman.h>

#define SIZE (64UL << 20)
#define PAGE 4096UL
#define WRITTEN 16 /* pages written, one every 4 MiB */

/* Rss of the mapping that holds addr, from /proc/self/smaps. */
static unsigned long rss_kib(const void *addr)
{
	char range[512], buf[512];
	if (ckpt_maps_range(addr, range, sizeof range) != 0)
		ckpt_fail("no maps line for %p", addr);
	char *sp = strchr(range, ' ');
	if (sp)
		*sp = '\0';
	size_t rl = strlen(range);
	FILE *f = fopen("/proc/self/smaps", "r");
	CHECK_SYS(f != NULL, "open smaps");
	int in = 0;
	unsigned long rss = ~0UL;
	while (fgets(buf, sizeof buf, f)) {
		if (strncmp(buf, range, rl) == 0 && buf[rl] == ' ') {
			in = 1;
			continue;
		}
		if (in && sscanf(buf, "Rss: %lu kB", &rss) == 1)
			break;
	}
	fclose(f);
	CHECK(rss != ~0UL, "no Rss for %s", range);
	return rss;
}

int main(void)
{
	ckpt_block_term();
	unsigned char *m = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK_SYS(m != MAP_FAILED, "mmap");
	CHECK_SYS(madvise(m, SIZE, MADV_NOHUGEPAGE) == 0, "madvise");
	volatile unsigned sum = 0;
	for (unsigned long off = 0; off < SIZE; off += PAGE)
		sum += m[off];
	for (int i = 0; i < WRITTEN; i++)
		ckpt_fill(m + i * (SIZE / WRITTEN), PAGE, 100 + i, 0);
	unsigned long before = rss_kib(m);
	ckpt_log("rss before: %lu KiB", before);
	ckpt_ready();
	ckpt_wait_term();

	for (unsigned long off = 0; off < SIZE; off += PAGE) {
		unsigned long slot = off / (SIZE / WRITTEN);
		if (off % (SIZE / WRITTEN) == 0) {
			size_t bad = ckpt_verify(m + off, PAGE, 100 + slot, 0);
			CHECK(bad == (size_t)-1 || bad >= PAGE, "written page %lu differs at %zu", slot, bad);
			continue;
		}
		for (unsigned long i = 0; i < PAGE; i += 64)
			CHECK(m[off + i] == 0, "byte %#lx is %#x, want 0", off + i, m[off + i]);
	}
	unsigned long after = rss_kib(m);
	ckpt_log("rss after: %lu KiB (before %lu)", after, before);
	CHECK(after <= before + 1024, "the mapping takes %lu KiB after the restore, %lu before: zero pages became data", after, before);
	ckpt_pass();
}
