/* ckpt-test: */
/*
 * mem_anon: anonymous private memory.
 *  - several RW regions with byte patterns (kept apart by unmapped gaps so
 *    that VMA merging cannot blur their boundaries);
 *  - a sparsely touched region: untouched pages must stay non-resident
 *    (checked with mincore() before anything reads them);
 *  - a PROT_NONE page between two RW pages (the hidden page holds data too);
 *  - a read-only region holding data;
 *  - a MAP_NORESERVE region (VmFlags "nr" must be preserved);
 *  - a 64 MiB region with every 16th page touched (MADV_NOHUGEPAGE);
 *  - the [stack] VMA keeps "gd" (grows down) and can grow by ~1 MiB.
 * The /proc/self/maps "start-end perms" of every region is compared.
 */
#include "ckpt_test.h"

#include <sys/mman.h>

#define NREG 10

static size_t pg;

struct region {
	const char *name;
	char *addr;
	size_t len;
	char range[160];
	char vmflags[256];
};

static struct region regs[NREG];
static int nregs;

static char smaps_buf[4 << 20];

/* VmFlags line of the smaps entry containing addr. */
static void vmflags_of(const void *addr, char *out, size_t cap)
{
	uintptr_t a = (uintptr_t)addr;
	int in = 0;
	char *p;

	if (ckpt_read_file("/proc/self/smaps", smaps_buf, sizeof(smaps_buf)) < 0)
		ckpt_fail("read /proc/self/smaps: %s", strerror(errno));
	for (p = smaps_buf; *p; ) {
		char *nl = strchr(p, '\n');
		unsigned long long s, e;
		char c;

		if (nl)
			*nl = '\0';
		/* VMA header lines look like "start-end perms ..." */
		if (sscanf(p, "%llx-%llx %c", &s, &e, &c) == 3)
			in = (a >= s && a < e);
		else if (in && strncmp(p, "VmFlags:", 8) == 0) {
			snprintf(out, cap, "%s", p + 8);
			return;
		}
		if (!nl)
			break;
		p = nl + 1;
	}
	ckpt_fail("no smaps VmFlags for %p", addr);
}

static int has_flag(const char *flags, const char *tok)
{
	size_t l = strlen(tok);
	const char *p = flags;

	while ((p = strstr(p, tok)) != NULL) {
		if ((p == flags || p[-1] == ' ') && (p[l] == ' ' || p[l] == '\0'))
			return 1;
		p += l;
	}
	return 0;
}

/* mmap with unmapped guard gaps on both sides. */
static char *map_isolated(size_t len, int prot, int extra_flags)
{
	size_t guard = 4 * pg;
	char *p = mmap(NULL, len + 2 * guard, prot,
		       MAP_PRIVATE | MAP_ANONYMOUS | extra_flags, -1, 0);

	if (p == MAP_FAILED)
		ckpt_fail("mmap(%zu): %s", len, strerror(errno));
	if (munmap(p, guard) != 0 || munmap(p + guard + len, guard) != 0)
		ckpt_fail("munmap guard: %s", strerror(errno));
	return p + guard;
}

static void add_region(const char *name, char *addr, size_t len)
{
	struct region *r = &regs[nregs++];

	r->name = name;
	r->addr = addr;
	r->len = len;
	if (ckpt_maps_range(addr, r->range, sizeof(r->range)) != 0)
		ckpt_fail("region %s at %p not in maps", name, addr);
	vmflags_of(addr, r->vmflags, sizeof(r->vmflags));
}

/* Check residency: expect(i) says whether page i must be resident. */
static void check_resident(const char *what, char *addr, size_t npages,
			   int (*expect)(size_t))
{
	static unsigned char vec[65536];

	if (npages > sizeof(vec))
		ckpt_fail("too many pages");
	if (mincore(addr, npages * pg, vec) != 0)
		ckpt_fail("mincore(%s): %s", what, strerror(errno));
	for (size_t i = 0; i < npages; i++) {
		int res = vec[i] & 1;
		if (res != expect(i))
			ckpt_fail("%s: page %zu is %sresident, expected %sresident",
				  what, i, res ? "" : "non-", expect(i) ? "" : "non-");
	}
}

static int sparse_touched(size_t i)
{
	return i == 0 || i == 3 || i == 7 || i == 8 || i == 15;
}

static int noreserve_touched(size_t i)
{
	return i < 4;
}

static int large_touched(size_t i)
{
	return i % 16 == 0;
}

static int all_touched(size_t i)
{
	(void)i;
	return 1;
}

static void check_pattern(const char *what, const char *p, size_t len,
			  uint32_t seed, size_t base)
{
	size_t bad = ckpt_verify(p, len, seed, base);

	if (bad != (size_t)-1)
		ckpt_fail("%s: pattern mismatch at offset %zu (+%zu): got 0x%02x want 0x%02x",
			  what, base + bad, bad, (uint8_t)p[bad],
			  ckpt_pattern(seed, base + bad));
}

static int is_zero(const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i])
			return 0;
	return 1;
}

__attribute__((noinline)) static int pregrow_stack(void)
{
	volatile char buf[192 * 1024];

	for (size_t i = 0; i < sizeof(buf); i += 256)
		buf[i] = (char)i;
	return buf[4096];
}

__attribute__((noinline)) static unsigned long deep(int depth)
{
	volatile unsigned char buf[16 * 1024];
	unsigned long sum = 0;

	for (size_t i = 0; i < sizeof(buf); i += 64)
		buf[i] = (unsigned char)(i + (size_t)depth);
	if (depth > 0)
		sum = deep(depth - 1);
	for (size_t i = 0; i < sizeof(buf); i += 64)
		sum += buf[i];
	return sum;
}

static unsigned long deep_expected(int depth)
{
	unsigned long sum = 0;

	for (int d = 0; d <= depth; d++)
		for (size_t i = 0; i < 16 * 1024; i += 64)
			sum += (unsigned char)(i + (size_t)d);
	return sum;
}

int main(void)
{
	char *a, *b, *sparse, *hole, *ro, *nores, *large;
	size_t large_len = 64UL << 20;
	size_t large_pages;
	char stack_range[160], stack_flags[256], tmp[256], tmp2[256];
	int stack_local = 0;

	pg = (size_t)sysconf(_SC_PAGESIZE);
	large_pages = large_len / pg;

	a = map_isolated(4 * pg, PROT_READ | PROT_WRITE, 0);
	ckpt_fill(a, 4 * pg, 1, 0);

	b = map_isolated(7 * pg, PROT_READ | PROT_WRITE, 0);
	ckpt_fill(b, 7 * pg, 2, 0);

	sparse = map_isolated(16 * pg, PROT_READ | PROT_WRITE, 0);
	if (madvise(sparse, 16 * pg, MADV_NOHUGEPAGE) != 0)
		ckpt_fail("madvise(NOHUGEPAGE): %s", strerror(errno));
	for (size_t i = 0; i < 16; i++)
		if (sparse_touched(i))
			ckpt_fill(sparse + i * pg, pg, 3, i * pg);

	hole = map_isolated(5 * pg, PROT_READ | PROT_WRITE, 0);
	ckpt_fill(hole, 5 * pg, 4, 0);
	if (mprotect(hole + 2 * pg, pg, PROT_NONE) != 0)
		ckpt_fail("mprotect(PROT_NONE): %s", strerror(errno));

	ro = map_isolated(2 * pg, PROT_READ | PROT_WRITE, 0);
	ckpt_fill(ro, 2 * pg, 6, 0);
	if (mprotect(ro, 2 * pg, PROT_READ) != 0)
		ckpt_fail("mprotect(PROT_READ): %s", strerror(errno));

	nores = map_isolated(8 * pg, PROT_READ | PROT_WRITE, MAP_NORESERVE);
	ckpt_fill(nores, 4 * pg, 7, 0);

	large = map_isolated(large_len, PROT_READ | PROT_WRITE, 0);
	if (madvise(large, large_len, MADV_NOHUGEPAGE) != 0)
		ckpt_fail("madvise(NOHUGEPAGE, large): %s", strerror(errno));
	for (size_t i = 0; i < large_pages; i += 16)
		ckpt_fill(large + i * pg, pg, 8, i * pg);

	add_region("a", a, 4 * pg);
	add_region("b", b, 7 * pg);
	add_region("sparse", sparse, 16 * pg);
	add_region("hole-left", hole, 2 * pg);
	add_region("hole", hole + 2 * pg, pg);
	add_region("hole-right", hole + 3 * pg, 2 * pg);
	add_region("ro", ro, 2 * pg);
	add_region("noreserve", nores, 8 * pg);
	add_region("large", large, large_len);

	/* Sanity of the setup itself. */
	CHECK(strstr(regs[4].range, " ---p") != NULL, "hole perms before: %s", regs[4].range);
	CHECK(strstr(regs[6].range, " r--p") != NULL, "ro perms before: %s", regs[6].range);
	CHECK(has_flag(regs[2].vmflags, "nh"), "sparse lacks nh: %s", regs[2].vmflags);
	CHECK(has_flag(regs[8].vmflags, "nh"), "large lacks nh: %s", regs[8].vmflags);
	if (!has_flag(regs[7].vmflags, "nr"))
		ckpt_log("noreserve region has no 'nr' flag (overcommit=never?): %s",
			 regs[7].vmflags);
	check_resident("sparse(before)", sparse, 16, sparse_touched);
	check_resident("noreserve(before)", nores, 8, noreserve_touched);
	check_resident("large(before)", large, large_pages, large_touched);
	check_resident("a(before)", a, 4, all_touched);

	pregrow_stack();
	if (ckpt_maps_range(&stack_local, stack_range, sizeof(stack_range)) != 0)
		ckpt_fail("stack not in maps");
	if (ckpt_maps_line(&stack_local, tmp, sizeof(tmp)) != 0 || !strstr(tmp, "[stack]"))
		ckpt_fail("local variable not in [stack]: %s", tmp);
	vmflags_of(&stack_local, stack_flags, sizeof(stack_flags));
	CHECK(has_flag(stack_flags, "gd"), "[stack] lacks gd before: %s", stack_flags);

	ckpt_block_term();
	ckpt_ready();
	ckpt_wait_term();

	/* 1. Residency first: nothing below may read untouched pages before. */
	check_resident("sparse", sparse, 16, sparse_touched);
	check_resident("noreserve", nores, 8, noreserve_touched);
	check_resident("large", large, large_pages, large_touched);
	check_resident("a", a, 4, all_touched);

	/* 2. Layout: maps ranges + perms, VmFlags of interest. */
	for (int i = 0; i < nregs; i++) {
		struct region *r = &regs[i];

		if (ckpt_maps_range(r->addr, tmp, sizeof(tmp)) != 0)
			ckpt_fail("region %s at %p vanished from maps", r->name, r->addr);
		CHECK(strcmp(tmp, r->range) == 0, "region %s: maps was '%s', now '%s'",
		      r->name, r->range, tmp);
		vmflags_of(r->addr, tmp2, sizeof(tmp2));
		if (strcmp(tmp2, r->vmflags) != 0)
			ckpt_log("region %s: VmFlags was '%s', now '%s'", r->name,
				 r->vmflags, tmp2);
		CHECK(has_flag(tmp2, "nr") == has_flag(r->vmflags, "nr"),
		      "region %s: 'nr' (MAP_NORESERVE) changed: '%s' -> '%s'",
		      r->name, r->vmflags, tmp2);
		CHECK(has_flag(tmp2, "nh") == has_flag(r->vmflags, "nh"),
		      "region %s: 'nh' (MADV_NOHUGEPAGE) changed: '%s' -> '%s'",
		      r->name, r->vmflags, tmp2);
	}
	if (ckpt_maps_range(&stack_local, tmp, sizeof(tmp)) != 0)
		ckpt_fail("stack not in maps after restore");
	CHECK(strcmp(tmp, stack_range) == 0, "[stack]: maps was '%s', now '%s'",
	      stack_range, tmp);
	vmflags_of(&stack_local, tmp2, sizeof(tmp2));
	CHECK(has_flag(tmp2, "gd"), "[stack] lost gd (grows down): '%s' (before '%s')",
	      tmp2, stack_flags);

	/* 3. Contents. */
	check_pattern("a", a, 4 * pg, 1, 0);
	check_pattern("b", b, 7 * pg, 2, 0);
	for (size_t i = 0; i < 16; i++) {
		if (sparse_touched(i))
			check_pattern("sparse", sparse + i * pg, pg, 3, i * pg);
	}
	check_pattern("hole-left", hole, 2 * pg, 4, 0);
	check_pattern("hole-right", hole + 3 * pg, 2 * pg, 4, 3 * pg);
	check_pattern("ro", ro, 2 * pg, 6, 0);
	check_pattern("noreserve", nores, 4 * pg, 7, 0);
	for (size_t i = 0; i < large_pages; i += 16)
		check_pattern("large", large + i * pg, pg, 8, i * pg);

	/* Untouched pages read as zeroes (this faults them in, hence last). */
	for (size_t i = 0; i < 16; i++)
		if (!sparse_touched(i))
			CHECK(is_zero(sparse + i * pg, pg), "sparse page %zu not zero", i);
	CHECK(is_zero(nores + 4 * pg, 4 * pg), "noreserve tail not zero");
	CHECK(is_zero(large + pg, 15 * pg), "large pages 1..15 not zero");

	/* The PROT_NONE page kept its data; make it readable to look. */
	if (mprotect(hole + 2 * pg, pg, PROT_READ) != 0)
		ckpt_fail("mprotect(hole, PROT_READ): %s", strerror(errno));
	check_pattern("hole(prot_none page)", hole + 2 * pg, pg, 4, 2 * pg);

	/* Writable regions still writable. */
	a[0] ^= 1;
	large[large_len - 1] = 1;
	nores[7 * pg] = 1;

	/* 4. The stack still grows down: use ~1 MiB more than before. */
	{
		unsigned long got = deep(64);
		unsigned long want = deep_expected(64);
		unsigned long long s0, s1;

		CHECK(got == want, "deep recursion sum %lu != %lu", got, want);
		if (ckpt_maps_range(&stack_local, tmp, sizeof(tmp)) != 0)
			ckpt_fail("stack not in maps after recursion");
		sscanf(stack_range, "%llx", &s0);
		sscanf(tmp, "%llx", &s1);
		CHECK(s1 < s0, "[stack] did not grow: before '%s' after recursion '%s'",
		      stack_range, tmp);
	}

	ckpt_pass();
}
