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

#include <sys/mman.h>
#include <linux/mman.h>

#define HUGE (2UL << 20)
#define POOL "/sys/kernel/mm/hugepages/hugepages-2048kB/"
/* Free pages wanted: 4 for the program, 4 for its restored self. */
#define RAISE 8

static long old_pool = -1;

static long read_long(const char *path)
{
	char buf[64];

	if (ckpt_read_file(path, buf, sizeof(buf)) < 0)
		ckpt_fail("read %s: %s", path, strerror(errno));
	return strtol(buf, NULL, 10);
}

static int write_long(const char *path, long v)
{
	char buf[64];
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	int n = snprintf(buf, sizeof(buf), "%ld\n", v);

	if (fd < 0)
		return -1;
	if (write(fd, buf, (size_t)n) != n) {
		close(fd);
		return -1;
	}
	return close(fd);
}

static void give_back(void)
{
	if (old_pool >= 0)
		write_long(POOL "nr_hugepages", old_pool);
}

/* CHECK that gives the pool's pages back first. */
#define HCHECK(cond, fmt, ...)                                             \
	do {                                                               \
		if (!(cond)) {                                             \
			int e_ = errno;                                    \
			give_back();                                       \
			ckpt_fail(fmt " (errno %s)", ##__VA_ARGS__, strerror(e_)); \
		}                                                          \
	} while (0)

/*
 * The smaps block of the area that starts at addr: its KernelPageSize in
 * kB and its VmFlags line (into flags).
 */
static long area_page_kb(void *addr, char *flags, size_t cap)
{
	static char buf[1 << 21];
	char head[32];
	char *p, *end, *q;
	long kb = -1;

	if (ckpt_read_file("/proc/self/smaps", buf, sizeof(buf)) < 0)
		ckpt_fail("read smaps: %s", strerror(errno));
	snprintf(head, sizeof(head), "%lx-", (unsigned long)(uintptr_t)addr);
	for (p = buf; p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (strncmp(p, head, strlen(head)) == 0)
			break;
	if (!p)
		return -1;
	end = strstr(p, "VmFlags:");
	if (!end)
		return -1;
	q = strstr(p, "KernelPageSize:");
	if (q && q < end)
		kb = strtol(q + strlen("KernelPageSize:"), NULL, 10);
	q = strchr(end, '\n');
	snprintf(flags, cap, "%.*s", q ? (int)(q - end) : (int)strlen(end), end);
	return kb;
}

static void check_huge(void *addr, const char *what, int shared)
{
	char flags[256];
	long kb = area_page_kb(addr, flags, sizeof(flags));

	HCHECK(kb == 2048, "%s area at %p: KernelPageSize %ld kB, want 2048", what, addr, kb);
	HCHECK(strstr(flags, " ht") != NULL, "%s area at %p is not hugetlb: %s", what, addr, flags);
	HCHECK((strstr(flags, " sh") != NULL) == shared, "%s area at %p: %s", what, addr, flags);
}

int main(void)
{
	uint8_t *priv, *shr, *ro;
	long free_pages;
	char line[512];
	size_t off;

	ckpt_block_term();
	/*
	 * Raised only by what is missing: a run killed before it gave its
	 * pages back (a failed dump) leaves them to the next run.
	 */
	free_pages = read_long(POOL "free_hugepages");
	if (free_pages < RAISE) {
		long pool = read_long(POOL "nr_hugepages");

		HCHECK(write_long(POOL "nr_hugepages", pool + RAISE - free_pages) == 0, "raise %snr_hugepages (root needed)", POOL);
		old_pool = pool;
	}
	free_pages = read_long(POOL "free_hugepages");
	HCHECK(free_pages >= 4, "only %ld free 2 MiB pages after raising the pool", free_pages);

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
