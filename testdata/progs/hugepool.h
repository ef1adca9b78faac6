/*
 * hugepool.h - the pool of 2 MiB huge pages for the hugetlb test
 * programs: as root a program raises the pool to what it and its
 * restored self need, before READY, and gives the pages back before it
 * exits, FAIL or PASS (HCHECK: ckpt_fail and ckpt_pass use _exit, which
 * runs no atexit). The restore maps the areas while the dumped process
 * is gone, so the pool must keep its pages until the program has
 * checked itself. Include after ckpt_test.h; define RAISE (free pages
 * wanted) first.
 */
#ifndef HUGEPOOL_H
#define HUGEPOOL_H

#include <sys/mman.h>
#include <linux/mman.h>

#define HUGE (2UL << 20)
#define POOL "/sys/kernel/mm/hugepages/hugepages-2048kB/"
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

/*
 * raise_pool makes sure RAISE pages are free, raised only by what is
 * missing: a run killed before it gave its pages back (a failed dump)
 * leaves them to the next run.
 */
static void raise_pool(long need)
{
	long free_pages = read_long(POOL "free_hugepages");

	if (free_pages < RAISE) {
		long pool = read_long(POOL "nr_hugepages");

		HCHECK(write_long(POOL "nr_hugepages", pool + RAISE - free_pages) == 0, "raise %snr_hugepages (root needed)", POOL);
		old_pool = pool;
	}
	free_pages = read_long(POOL "free_hugepages");
	HCHECK(free_pages >= need, "only %ld free 2 MiB pages after raising the pool", free_pages);
}

#endif
