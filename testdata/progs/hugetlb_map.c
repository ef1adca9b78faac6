/* ckpt-test: */
/*
 * Anonymous hugetlb memory (MAP_HUGETLB with 2 MiB pages): a private
 * area of two huge pages, a private one of one huge page and a shared
 * one of one huge page, the last two made read-only after they are
 * filled. After the restore both hold their
 * patterns and are still hugetlb areas (smaps: KernelPageSize 2048 kB,
 * VmFlags ht), the shared one still shared.
 *
 * The machine's pool of 2 MiB pages is usually empty: as root the
 * program raises it to what it and its restored self need, before
 * READY, and gives them back before it exits, FAIL or PASS (HCHECK:
 * ckpt_fail and ckpt_pass use _exit, which runs no atexit). The restore maps the areas while the dumped process is gone, so
 * the pool must keep its pages until the program has checked itself.
 */
#include "ckpt_test.h"

/* Free pages wanted: 4 for the program, 4 for its restored self. */
#define RAISE 8
#include "hugepool.h"

int main(void)
{
	uint8_t *priv, *shr, *ro;
	char line[512];
	size_t off;

	ckpt_block_term();
	raise_pool(4);

	priv = mmap(NULL, 2 * HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_HUGE_2MB, -1, 0);
	HCHECK(priv != MAP_FAILED, "mmap private MAP_HUGETLB");
	shr = mmap(NULL, HUGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB | MAP_HUGE_2MB, -1, 0);
	HCHECK(shr != MAP_FAILED, "mmap shared MAP_HUGETLB");
	ro = mmap(NULL, HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_HUGE_2MB, -1, 0);
	HCHECK(ro != MAP_FAILED, "mmap private MAP_HUGETLB (to be read-only)");
	ckpt_fill(ro, HUGE, 33, 0);
	HCHECK(mprotect(ro, HUGE, PROT_READ) == 0, "mprotect private area read-only");
	ckpt_fill(priv, 2 * HUGE, 11, 0);
	ckpt_fill(shr, HUGE, 22, 0);
	HCHECK(mprotect(shr, HUGE, PROT_READ) == 0, "mprotect shared area read-only");
	check_huge(priv, "private", 0);
	check_huge(shr, "shared", 1);
	check_huge(ro, "read-only private", 0);

	ckpt_ready();
	ckpt_wait_term();

	off = ckpt_verify(priv, 2 * HUGE, 11, 0);
	HCHECK(off == (size_t)-1, "private hugetlb area differs at byte %zu", off);
	off = ckpt_verify(shr, HUGE, 22, 0);
	HCHECK(off == (size_t)-1, "shared hugetlb area differs at byte %zu", off);
	check_huge(priv, "private", 0);
	off = ckpt_verify(ro, HUGE, 33, 0);
	HCHECK(off == (size_t)-1, "read-only private hugetlb area differs at byte %zu", off);
	check_huge(shr, "shared", 1);
	check_huge(ro, "read-only private", 0);
	HCHECK(ckpt_maps_range(ro, line, sizeof(line)) == 0 && strstr(line, " r--p"), "read-only area: %s", line);
	/* Still private and still writable: a write lands. */
	priv[HUGE + 5] = 0x5a;
	HCHECK(priv[HUGE + 5] == 0x5a, "write to the private area");
	HCHECK(munmap(priv, 2 * HUGE) == 0, "munmap private");
	HCHECK(munmap(shr, HUGE) == 0, "munmap shared");
	HCHECK(munmap(ro, HUGE) == 0, "munmap read-only");
	give_back();
	ckpt_pass();
}
