/* ckpt-test: */
/*
 * compat_mmap4g: the address-space limit of a 32-bit (compat) process.
 * A 32-bit program restored by a 64-bit tool must still be a 32-bit mm:
 * new mmap()s go below 4 GiB (compat mmap base, 32-bit TASK_SIZE), never
 * above, even though the restoring tool itself is a 64-bit process.
 *  - before READY: PRE_N anonymous RW regions of different sizes, filled
 *    with byte patterns (their data and "start-end perms" are checked);
 *  - after SIGTERM: NMAP (2000) fresh anonymous RW mmaps of 64 KiB each
 *    (125 MiB, which fits a 32-bit address space easily); every call must
 *    succeed, return a page-aligned address whose whole range lies in
 *    /proc/self/maps as an rw mapping and does not overlap another one;
 *    every page gets a stamp (first and last word) that must read back;
 *  - 32-bit build only: the returned ranges end at or below 4 GiB
 *    (trivial for a 32-bit pointer, but a kernel result above 4 GiB would
 *    be truncated, so the maps check below is the real test) and no line of
 *    /proc/self/maps at all ends above 4 GiB ([vsyscall] would be tolerated,
 *    the kernel does not show it to compat processes anyway);
 *  - 64-bit build: the same mmaps, stamps and maps coverage, no 4 GiB rule.
 * Finally everything is unmapped and the pre-READY regions re-verified.
 */
#include "ckpt_test.h"

#include <sys/mman.h>

#define PRE_N 8
#define NMAP 2000
#define MAPLEN (64 * 1024)
#define FOUR_G 0x100000000ULL
#define PRE_SEED 0x4600u

static size_t pg;

struct pre_region {
	char *addr;
	size_t len;
	char range[160];
};

static struct pre_region pre[PRE_N];
static char *maps_addr[NMAP];

/* Parsed copy of /proc/self/maps. */
struct vma {
	unsigned long long start, end;
	char perms[8];
	char path[64];
};

#define MAX_VMA 8192
static struct vma vmas[MAX_VMA];
static int nvma;
static char maps_buf[2 << 20];

static void load_maps(void)
{
	char *p;

	if (ckpt_read_file("/proc/self/maps", maps_buf, sizeof(maps_buf)) < 0)
		ckpt_fail("read /proc/self/maps: %s", strerror(errno));
	nvma = 0;
	for (p = maps_buf; *p; ) {
		char *nl = strchr(p, '\n');
		struct vma *v;
		int off = 0;

		if (nl)
			*nl = '\0';
		if (nvma >= MAX_VMA)
			ckpt_fail("more than %d mappings", MAX_VMA);
		v = &vmas[nvma];
		if (sscanf(p, "%llx-%llx %7s %*s %*s %*s %n", &v->start, &v->end,
			   v->perms, &off) < 3)
			ckpt_fail("cannot parse maps line '%s'", p);
		v->path[0] = '\0';
		if (off > 0 && (size_t)off <= strlen(p))
			snprintf(v->path, sizeof(v->path), "%s", p + off);
		nvma++;
		if (!nl)
			break;
		p = nl + 1;
	}
}

/* The mapping containing a, or NULL. */
static const struct vma *vma_of(unsigned long long a)
{
	for (int i = 0; i < nvma; i++)
		if (a >= vmas[i].start && a < vmas[i].end)
			return &vmas[i];
	return NULL;
}

/* [a, a+len) must be covered by rw mappings (possibly several merged ones). */
static void check_covered(const char *what, int idx, unsigned long long a, size_t len)
{
	unsigned long long end = a + len;

	while (a < end) {
		const struct vma *v = vma_of(a);

		if (!v)
			ckpt_fail("%s %d: address 0x%llx of [0x%llx, 0x%llx) is not mapped",
				  what, idx, a, end - len, end);
		if (v->perms[0] != 'r' || v->perms[1] != 'w')
			ckpt_fail("%s %d: mapping %llx-%llx has perms %s, expected rw",
				  what, idx, v->start, v->end, v->perms);
		a = v->end;
	}
}

/* 32-bit build: nothing may live above 4 GiB. */
static void check_below_4g(const char *when)
{
	for (int i = 0; i < nvma; i++) {
		const struct vma *v = &vmas[i];

		if (v->end <= FOUR_G)
			continue;
		if (strcmp(v->path, "[vsyscall]") == 0)
			continue;
		ckpt_fail("%s: 32-bit process has a mapping above 4 GiB: %llx-%llx %s %s",
			  when, v->start, v->end, v->perms, v->path);
	}
}

static uint32_t stamp(int region, size_t page, int last)
{
	return 0xC0DE0000u ^ ((uint32_t)region << 12) ^ ((uint32_t)page << 1) ^
	       (uint32_t)last;
}

/*
 * Data and, if ranges is set, "start-end perms" of the pre-READY regions
 * (not while the new mmaps exist: they may fill the guard holes and merge).
 */
static void check_pre(const char *when, int ranges)
{
	for (int i = 0; i < PRE_N; i++) {
		char range[160];
		size_t bad = ckpt_verify(pre[i].addr, pre[i].len, PRE_SEED + (uint32_t)i, 0);

		if (bad != (size_t)-1)
			ckpt_fail("%s: pre-READY region %d at %p: pattern mismatch at offset %zu",
				  when, i, (void *)pre[i].addr, bad);
		if (!ranges)
			continue;
		if (ckpt_maps_range(pre[i].addr, range, sizeof(range)) != 0)
			ckpt_fail("%s: pre-READY region %d at %p is not mapped", when, i,
				  (void *)pre[i].addr);
		if (strcmp(range, pre[i].range) != 0)
			ckpt_fail("%s: pre-READY region %d: maps range '%s', was '%s'",
				  when, i, range, pre[i].range);
	}
}

static int cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)*(char *const *)a, y = (uintptr_t)*(char *const *)b;

	return x < y ? -1 : x > y;
}

int main(void)
{
	const int is32 = sizeof(void *) == 4;
	uintptr_t lowest = UINTPTR_MAX, highest = 0;
	size_t npages;

	pg = (size_t)sysconf(_SC_PAGESIZE);
	npages = MAPLEN / pg;

	/*
	 * Pre-READY state: regions of 1..8 pages with a one-page hole after
	 * each (mapped as part of a larger region, then punched), so that
	 * the regions stay separate VMAs.
	 */
	for (int i = 0; i < PRE_N; i++) {
		size_t len = (size_t)(i + 1) * 2 * pg;
		char *p = mmap(NULL, len + 2 * pg, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		CHECK_SYS(p != MAP_FAILED, "mmap pre-region %d", i);
		CHECK_SYS(munmap(p, pg) == 0 && munmap(p + pg + len, pg) == 0,
			  "munmap guard pages of pre-region %d", i);
		pre[i].addr = p + pg;
		pre[i].len = len;
		ckpt_fill(pre[i].addr, len, PRE_SEED + (uint32_t)i, 0);
		if (ckpt_maps_range(pre[i].addr, pre[i].range, sizeof(pre[i].range)) != 0)
			ckpt_fail("pre-region %d at %p not in maps", i, (void *)pre[i].addr);
	}
	load_maps();
	if (is32)
		check_below_4g("before READY");
	ckpt_log("%d-bit build, %d mappings before READY", is32 ? 32 : 64, nvma);

	ckpt_block_term();
	ckpt_ready();
	ckpt_wait_term();

	check_pre("after restore", 1);
	load_maps();
	if (is32)
		check_below_4g("after restore, before the new mmaps");

	for (int i = 0; i < NMAP; i++) {
		char *p = mmap(NULL, MAPLEN, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		uint64_t a = (uint64_t)(uintptr_t)p;

		CHECK_SYS(p != MAP_FAILED, "mmap #%d of %d x %d KiB", i, NMAP,
			  MAPLEN / 1024);
		CHECK(a % pg == 0, "mmap #%d returned unaligned %p", i, (void *)p);
		if (is32)
			CHECK(a + MAPLEN <= FOUR_G,
			      "mmap #%d returned %p: ends above 4 GiB", i, (void *)p);
		maps_addr[i] = p;
		if ((uintptr_t)p < lowest)
			lowest = (uintptr_t)p;
		if ((uintptr_t)p > highest)
			highest = (uintptr_t)p;
	}
	ckpt_log("%d mmaps between %p and %p", NMAP, (void *)lowest,
		 (void *)(highest + MAPLEN));

	/*
	 * The kernel's view: every returned range is really mapped rw (a
	 * result truncated from above 4 GiB would point somewhere else) and,
	 * for a 32-bit process, nothing is above 4 GiB.
	 */
	load_maps();
	for (int i = 0; i < NMAP; i++)
		check_covered("mmap", i, (uint64_t)(uintptr_t)maps_addr[i], MAPLEN);
	if (is32)
		check_below_4g("after the new mmaps");

	/* Write a stamp into the first and last word of every page. */
	for (int i = 0; i < NMAP; i++)
		for (size_t j = 0; j < npages; j++) {
			uint32_t *w = (uint32_t *)(maps_addr[i] + j * pg);

			w[0] = stamp(i, j, 0);
			w[pg / 4 - 1] = stamp(i, j, 1);
		}
	for (int i = 0; i < NMAP; i++)
		for (size_t j = 0; j < npages; j++) {
			uint32_t *w = (uint32_t *)(maps_addr[i] + j * pg);

			CHECK(w[0] == stamp(i, j, 0) && w[pg / 4 - 1] == stamp(i, j, 1),
			      "mmap #%d at %p page %zu: read back 0x%08x/0x%08x, wrote 0x%08x/0x%08x",
			      i, (void *)maps_addr[i], j, w[0], w[pg / 4 - 1],
			      stamp(i, j, 0), stamp(i, j, 1));
		}

	/* No two results overlap (and the pre-READY data is untouched). */
	qsort(maps_addr, NMAP, sizeof(maps_addr[0]), cmp_ptr);
	for (int i = 0; i + 1 < NMAP; i++)
		CHECK((uintptr_t)maps_addr[i] + MAPLEN <= (uintptr_t)maps_addr[i + 1],
		      "mmap results overlap: %p and %p", (void *)maps_addr[i],
		      (void *)maps_addr[i + 1]);
	check_pre("after the new mmaps", 0);

	for (int i = 0; i < NMAP; i++)
		CHECK_SYS(munmap(maps_addr[i], MAPLEN) == 0, "munmap %p",
			  (void *)maps_addr[i]);
	check_pre("after munmap", 1);
	ckpt_pass();
}
