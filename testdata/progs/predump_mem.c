/* ckpt-test: */
/*
 * predump_mem: memory that keeps changing between the dumps of a pre-copy
 * chain (ckpt pre-dump, pre-dump --prev-images-dir, dump --track-mem):
 * TestPreDumpChain restores the last dump, whose unchanged pages are in
 * its parents, and this program checks every page itself.
 *
 * AREA_PAGES pages of a private anonymous area. Page i holds words
 * page_word(i, gen[i], w); gen[] (a separate array) starts at 0. A worker
 * thread keeps rewriting the hot pages (every tenth: 10% of the area),
 * each time gen[i] + 1 first, then the page; it also frees, one by one,
 * the "cold freed" pages (i % 10 == 5) with MADV_DONTNEED, freed[i] = 1
 * first: their content must be zero from then on, never the old one a
 * parent dump holds. A dump catches the worker anywhere; restored, it
 * goes on from its registers and finishes what it was doing, so once it
 * is stopped every page must match gen[] and freed[] exactly.
 *
 * With PREDUMP_CHURN=1 in its environment (TestPreDumpChain; not in the
 * matrix, whose harness compares the maps before and after), mappings
 * come and go too: each sweep the worker replaces one of RING small
 * areas by a new mapping filled with its own tag, and moves another with
 * mremap to a new address (mappings made or moved since a pre-dump are
 * not tracked as the old ones were: a dump must save them whole).
 *
 * It also checks that it has as many fds after the restore as before
 * READY: the userfaultfd that tracks its writes is ckpt's, never its own.
 */
#include "ckpt_test.h"

#include <dirent.h>
#include <pthread.h>
#include <sys/mman.h>

#define AREA_PAGES 16384u /* 64 MiB */
#define PAGE 4096u
#define WORDS (PAGE / 4)

static volatile uint32_t *area;
static volatile uint32_t gen[AREA_PAGES];
static volatile uint8_t freed[AREA_PAGES];
static volatile int stop;
static int churning;

#define RING 4
#define RING_PAGES 16u
static struct {
	uint32_t *volatile p;
	volatile uint32_t tag;
} ring[RING];

static uint32_t ring_word(uint32_t tag, uint32_t w)
{
	return tag * 0x9e3779b9u ^ w;
}

/* Sweep s: area s % RING is made anew, area (s + 2) % RING moves. */
static void churn(uint32_t s)
{
	size_t len = (size_t)RING_PAGES * PAGE;
	unsigned i = s % RING, j = (s + 2) % RING;
	uint32_t *p, *old = ring[i].p, *q;

	ring[i].p = NULL;
	if (old && munmap(old, len))
		ckpt_fail("munmap: %s", strerror(errno));
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		ckpt_fail("mmap: %s", strerror(errno));
	for (uint32_t w = 0; w < len / 4; w++)
		p[w] = ring_word(s, w);
	ring[i].tag = s;
	ring[i].p = p;
	if (!ring[j].p)
		return;
	/* A place elsewhere, then the area moved over it. */
	q = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (q == MAP_FAILED)
		ckpt_fail("mmap: %s", strerror(errno));
	old = ring[j].p;
	q = mremap(old, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, q);
	if (q == MAP_FAILED)
		ckpt_fail("mremap: %s", strerror(errno));
	ring[j].p = q;
}
static volatile uint32_t sweeps;

static uint32_t page_word(uint32_t page, uint32_t g, uint32_t w)
{
	uint32_t x = page * 2654435761u ^ g * 40503u ^ w * 2246822519u;

	x ^= x >> 15;
	return x * 2246822519u + 1;
}

static void write_page(uint32_t i, uint32_t g)
{
	volatile uint32_t *p = area + (size_t)i * WORDS;

	for (uint32_t w = 0; w < WORDS; w++)
		p[w] = page_word(i, g, w);
}

static void *worker(void *arg)
{
	uint32_t next_free = 5;

	(void)arg;
	while (!stop) {
		for (uint32_t i = 0; i < AREA_PAGES && !stop; i += 10) {
			uint32_t g = gen[i] + 1;

			gen[i] = g;
			write_page(i, g);
			if (i % 640 == 0)
				ckpt_sleep_ms(1);
		}
		if (next_free < AREA_PAGES) {
			freed[next_free] = 1;
			if (madvise((void *)(area + (size_t)next_free * WORDS), PAGE, MADV_DONTNEED))
				ckpt_fail("madvise(MADV_DONTNEED): %s", strerror(errno));
			next_free += 10;
		}
		if (churning)
			churn(sweeps);
		sweeps = sweeps + 1;
	}
	return NULL;
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		ckpt_fail("opendir /proc/self/fd: %s", strerror(errno));
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory's own fd */
}

int main(void)
{
	pthread_t th;
	int fds;

	ckpt_block_term();
	churning = getenv("PREDUMP_CHURN") && !strcmp(getenv("PREDUMP_CHURN"), "1");
	area = mmap(NULL, (size_t)AREA_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (area == MAP_FAILED)
		ckpt_fail("mmap: %s", strerror(errno));
	for (uint32_t i = 0; i < AREA_PAGES; i++)
		write_page(i, 0);
	fds = count_fds();
	if (pthread_create(&th, NULL, worker, NULL))
		ckpt_fail("pthread_create");
	while (sweeps < 2)
		ckpt_sleep_ms(1);
	ckpt_ready();
	ckpt_wait_term();

	/* Two more sweeps since the restore, then stop the worker. */
	uint32_t s = sweeps;
	while (sweeps < s + 2)
		ckpt_sleep_ms(1);
	stop = 1;
	pthread_join(th, NULL);

	uint32_t hot = 0, nfreed = 0;
	for (uint32_t i = 0; i < AREA_PAGES; i++) {
		volatile uint32_t *p = area + (size_t)i * WORDS;

		for (uint32_t w = 0; w < WORDS; w++) {
			uint32_t want = freed[i] ? 0 : page_word(i, gen[i], w);

			if (p[w] != want)
				ckpt_fail("page %u (gen %u, freed %u) word %u: %#x, want %#x", i, gen[i], freed[i], w, p[w], want);
		}
		hot += gen[i] != 0;
		nfreed += freed[i];
	}
	if (hot != AREA_PAGES / 10 + 1 - (AREA_PAGES % 10 == 0))
		ckpt_fail("%u pages were written, want every tenth", hot);
	for (unsigned i = 0; i < RING; i++) {
		if (!ring[i].p)
			continue;
		for (uint32_t w = 0; w < RING_PAGES * PAGE / 4; w++)
			if (ring[i].p[w] != ring_word(ring[i].tag, w))
				ckpt_fail("area %u (tag %u) word %u: %#x, want %#x", i, ring[i].tag, w, ring[i].p[w], ring_word(ring[i].tag, w));
	}
	int now = count_fds();
	if (now != fds)
		ckpt_fail("%d fds now, %d before READY", now, fds);
	ckpt_log("%u sweeps, %u hot pages at gen %u, %u pages freed%s", sweeps, hot, gen[0], nfreed, churning ? ", mappings churned" : "");
	ckpt_pass();
}
