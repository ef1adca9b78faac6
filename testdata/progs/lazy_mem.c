/* ckpt-test: */
/*
 * lazy_mem: private anonymous memory that a lazy restore (restore
 * --lazy-pages with a `ckpt lazy-pages` server) puts in on first touch
 * and in the background; it must also pass an ordinary restore.
 * Set up before READY, each page holding its own pattern:
 *  - a 96 MiB region (big enough that pages are still missing when the
 *    program wakes up after a lazy restore);
 *  - a sparse 8 MiB region, every 7th page touched (the others read 0);
 *  - a 1 MiB region dropped half with MADV_DONTNEED after the restore;
 *  - a 2 MiB region moved by mremap after the restore;
 *  - a read-only region and a PROT_NONE page holding data;
 *  - 256 KiB of [heap] (sbrk) and 64 KiB of [stack].
 * After SIGTERM, before touching anything else: mprotect of a part of
 * the big region (splits it), madvise(MADV_DONTNEED)
 * (must read zero), mremap (must keep its pages), munmap of the big
 * region's last MiB and a fresh mmap there (must read zero), then fork:
 * the child checks all memory and exits 0/1; then the parent does.
 * "# resident" diagnostics say how much of the big region was in when
 * the program woke and when it forked (mincore).
 */
#include "ckpt_test.h"

#include <sys/mman.h>
#include <sys/wait.h>

#define PG 4096u
#define BIG (96u << 20)
#define SPARSE (8u << 20)
#define DROP (1u << 20)
#define MOVE (2u << 20)
#define RO (256u << 10)
#define HEAP (256u << 10)
#define STACKB (64u << 10)
#define TAIL (1u << 20)

static char *big, *sparse, *drop, *move, *moved, *ro, *none, *heap;

static uint32_t word(uint32_t seed, size_t i) { return seed * 2654435761u ^ (uint32_t)i; }

static void fill(char *p, size_t len, uint32_t seed)
{
	uint32_t *w = (uint32_t *)p;
	for (size_t i = 0; i < len / 4; i++)
		w[i] = word(seed, i);
}

/* Returns NULL if p holds seed's pattern from word base on, else where
 * it differs. */
static const char *check_from(const char *p, size_t len, uint32_t seed, size_t base)
{
	const uint32_t *w = (const uint32_t *)p;
	for (size_t i = 0; i < len / 4; i++)
		if (w[i] != word(seed, base + i))
			return p + i * 4;
	return NULL;
}

static const char *check(const char *p, size_t len, uint32_t seed) { return check_from(p, len, seed, 0); }

static const char *zero(const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i])
			return p + i;
	return NULL;
}

static char *map(size_t len, int prot)
{
	/* Guard gaps on both sides keep the regions apart. */
	char *p = mmap(NULL, len + 2 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		ckpt_fail("mmap %zu: %s", len, strerror(errno));
	if (mmap(p + PG, len, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED)
		ckpt_fail("mmap fixed: %s", strerror(errno));
	return p + PG;
}

static size_t resident(char *p, size_t len)
{
	static unsigned char vec[BIG / PG];
	size_t n = 0;
	if (mincore(p, len, vec) < 0)
		return (size_t)-1;
	for (size_t i = 0; i < len / PG; i++)
		n += vec[i] & 1;
	return n;
}

/* Every check; returns a reason or NULL. */
static const char *verify(const uint32_t *stack)
{
	static char why[200];
	const char *at;

	if ((at = check(big, BIG - TAIL, 1)))
		return snprintf(why, sizeof(why), "big region differs at +%#zx", (size_t)(at - big)), why;
	if ((at = zero(big + BIG - TAIL, TAIL)))
		return snprintf(why, sizeof(why), "fresh mapping after munmap not zero at +%#zx", (size_t)(at - big)), why;
	for (size_t i = 0; i < SPARSE / PG; i++) {
		char *p = sparse + i * PG;
		at = i % 7 == 0 ? check(p, PG, 100 + (uint32_t)i) : zero(p, PG);
		if (at)
			return snprintf(why, sizeof(why), "sparse page %zu differs", i), why;
	}
	if ((at = zero(drop, DROP / 2)))
		return snprintf(why, sizeof(why), "MADV_DONTNEED half not zero at +%#zx", (size_t)(at - drop)), why;
	if ((at = check_from(drop + DROP / 2, DROP / 2, 3, DROP / 8)))
		return snprintf(why, sizeof(why), "kept half of the dropped region differs"), why;
	if ((at = check(moved, MOVE, 4)))
		return snprintf(why, sizeof(why), "mremap'd region differs at +%#zx", (size_t)(at - moved)), why;
	if ((at = check(ro, RO, 5)))
		return snprintf(why, sizeof(why), "read-only region differs"), why;
	if ((at = check(heap, HEAP, 7)))
		return snprintf(why, sizeof(why), "heap differs at +%#zx", (size_t)(at - heap)), why;
	if ((at = check((const char *)stack, STACKB, 8)))
		return snprintf(why, sizeof(why), "stack differs"), why;
	if (mprotect(none, PG, PROT_READ) < 0)
		return snprintf(why, sizeof(why), "mprotect: %s", strerror(errno)), why;
	if ((at = check(none, PG, 6)))
		return snprintf(why, sizeof(why), "PROT_NONE page differs"), why;
	return NULL;
}

int main(void)
{
	uint32_t stack[STACKB / 4];
	const char *why;

	ckpt_block_term();
	big = map(BIG, PROT_READ | PROT_WRITE);
	fill(big, BIG, 1);
	sparse = map(SPARSE, PROT_READ | PROT_WRITE);
	for (size_t i = 0; i < SPARSE / PG; i += 7)
		fill(sparse + i * PG, PG, 100 + (uint32_t)i);
	drop = map(DROP, PROT_READ | PROT_WRITE);
	fill(drop, DROP, 3);
	move = map(MOVE, PROT_READ | PROT_WRITE);
	fill(move, MOVE, 4);
	moved = map(MOVE, PROT_NONE); /* the place the region moves to */
	ro = map(RO, PROT_READ | PROT_WRITE);
	fill(ro, RO, 5);
	mprotect(ro, RO, PROT_READ);
	/* Between two RW pages, so that no PROT_NONE neighbour merges with it. */
	none = map(3 * PG, PROT_READ | PROT_WRITE) + PG;
	fill(none - PG, 3 * PG, 9);
	fill(none, PG, 6);
	mprotect(none, PG, PROT_NONE);
	heap = sbrk(HEAP);
	if (heap == (void *)-1)
		ckpt_fail("sbrk: %s", strerror(errno));
	fill(heap, HEAP, 7);
	fill((char *)stack, STACKB, 8);

	ckpt_ready();
	ckpt_wait_term();

	ckpt_log("resident at wake: %zu of %u pages of the big region", resident(big, BIG), BIG / PG);
	/* Split the big region in three VMAs while its pages are missing. */
	if (mprotect(big + (8u << 20), 1u << 20, PROT_READ) < 0)
		ckpt_fail("mprotect: %s", strerror(errno));
	if (madvise(drop, DROP / 2, MADV_DONTNEED) < 0)
		ckpt_fail("madvise: %s", strerror(errno));
	if (mremap(move, MOVE, MOVE, MREMAP_MAYMOVE | MREMAP_FIXED, moved) != moved)
		ckpt_fail("mremap: %s", strerror(errno));
	if (munmap(big + BIG - TAIL, TAIL) < 0 ||
	    mmap(big + BIG - TAIL, TAIL, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED)
		ckpt_fail("munmap/mmap: %s", strerror(errno));
	ckpt_log("resident at fork: %zu of %u pages of the big region", resident(big, BIG), BIG / PG);
	pid_t pid = fork();
	if (pid < 0)
		ckpt_fail("fork: %s", strerror(errno));
	if (pid == 0) {
		why = verify(stack);
		if (why)
			ckpt_log("child: %s", why);
		_exit(why ? 1 : 0);
	}
	why = verify(stack);
	int st;
	if (waitpid(pid, &st, 0) != pid)
		ckpt_fail("waitpid: %s", strerror(errno));
	if (why)
		ckpt_fail("%s", why);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		ckpt_fail("the child forked after the restore found its memory wrong (status %#x)", st);
	ckpt_pass();
}
