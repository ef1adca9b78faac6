/* ckpt-test: */
/*
 * Copy-on-write sharing between a parent and its children. The parent
 * fills 32 MiB of private anonymous memory and writes 64 pages of a
 * private file mapping, then forks A and B, which write nothing, and C,
 * which writes three pages of the anonymous memory and one of the file
 * mapping. Since fork, A and B share every page with the parent, C all
 * but the four it wrote. After the restore each child checks its data,
 * then that its pages are still the parent's own (the same page frames in
 * /proc/self/pagemap and /proc/PPID/pagemap: the tests run as root, so
 * PFNs are shown), then that a write stays private (C writes a page
 * again; the parent and A must not see it). Without the sharing the
 * restored tree would hold four copies of the 32 MiB.
 */
#include "ckpt_test.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define PAGE 4096
#define ANON_LEN (32u << 20)
#define ANON_PAGES (ANON_LEN / PAGE)
#define FILE_PAGES 256
#define FILE_LEN (FILE_PAGES * PAGE)
#define FILE_WRITTEN 64 /* pages the parent wrote in the file mapping */

#define SEED_ANON 7
#define SEED_FILE 9
#define SEED_FILE_PARENT 11
#define SEED_C 13
#define SEED_AFTER 17

static const unsigned c_pages[] = { 0, 100, 4000 }; /* C's anon writes */
#define C_FILE_PAGE 1 /* C's file mapping write */

static unsigned char *anon, *fmap;

static int c_wrote(unsigned pg)
{
	for (unsigned i = 0; i < sizeof(c_pages) / sizeof(c_pages[0]); i++)
		if (c_pages[i] == pg)
			return 1;
	return 0;
}

/* The page frame of addr in pid's pagemap fd, 0 if not present. */
static uint64_t pfn(int fd, const void *addr)
{
	uint64_t e;
	off_t off = (off_t)((uintptr_t)addr / PAGE) * 8;

	if (pread(fd, &e, sizeof(e), off) != (ssize_t)sizeof(e))
		return 0;
	if (!(e >> 63))
		return 0;
	return e & ((1ull << 55) - 1);
}

/* Checks, in a child, its data: the parent's, but for C's own writes. */
static void check_data(int is_c)
{
	for (unsigned pg = 0; pg < ANON_PAGES; pg++) {
		uint32_t seed = is_c && c_wrote(pg) ? SEED_C : SEED_ANON;
		size_t bad = ckpt_verify(anon + (size_t)pg * PAGE, PAGE, seed, (size_t)pg * PAGE);
		CHECK(bad == (size_t)-1, "child %d: anon page %u byte %zu is not seed %u's", getpid(), pg, bad, seed);
	}
	for (unsigned pg = 0; pg < FILE_PAGES; pg++) {
		uint32_t seed = pg < FILE_WRITTEN ? SEED_FILE_PARENT : SEED_FILE;
		if (is_c && pg == C_FILE_PAGE)
			seed = SEED_C;
		size_t bad = ckpt_verify(fmap + (size_t)pg * PAGE, PAGE, seed, (size_t)pg * PAGE);
		CHECK(bad == (size_t)-1, "child %d: file page %u byte %zu is not seed %u's", getpid(), pg, bad, seed);
	}
}

/* Counts the pages of [p, p+n pages) whose frame is the parent's. */
static unsigned shared_pages(int self, int parent, unsigned char *p, unsigned n, unsigned *unseen)
{
	unsigned same = 0;

	*unseen = 0;
	for (unsigned pg = 0; pg < n; pg++) {
		uint64_t a = pfn(self, p + (size_t)pg * PAGE), b = pfn(parent, p + (size_t)pg * PAGE);
		if (a == 0 || b == 0)
			(*unseen)++;
		else if (a == b)
			same++;
	}
	return same;
}

/* A child: waits for SIGTERM, then checks data and sharing. */
static void child(int is_c)
{
	char path[64];

	ckpt_wait_term();
	check_data(is_c);
	int self = open("/proc/self/pagemap", O_RDONLY);
	snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)getppid());
	int parent = open(path, O_RDONLY);
	CHECK_SYS(self >= 0 && parent >= 0, "open pagemap");
	unsigned unseen_a, unseen_f;
	unsigned sa = shared_pages(self, parent, anon, ANON_PAGES, &unseen_a);
	/* The pages the parent wrote in the file mapping are anonymous
	 * copies; the others are the file's page cache, mapped once touched
	 * (the parent need not have touched them since the restore). */
	unsigned sf = shared_pages(self, parent, fmap, FILE_WRITTEN, &unseen_f);
	unsigned want_a = ANON_PAGES - (is_c ? 3 : 0), want_f = FILE_WRITTEN - (is_c ? 1 : 0);
	CHECK(unseen_a == 0 && unseen_f == 0, "child %d: %u anon and %u file pages not present or PFNs hidden (not root?)", getpid(), unseen_a, unseen_f);
	CHECK(sa == want_a, "child %d: %u of %u anon pages shared with the parent, want %u", getpid(), sa, ANON_PAGES, want_a);
	CHECK(sf == want_f, "child %d: %u of %u written file-mapped pages shared with the parent, want %u", getpid(), sf, FILE_WRITTEN, want_f);
	if (is_c) {
		/* A write after the restore stays C's own. */
		ckpt_fill(anon + 7 * PAGE, PAGE, SEED_AFTER, 7 * PAGE);
		CHECK(pfn(self, anon + 7 * PAGE) != pfn(parent, anon + 7 * PAGE), "child C: its write shares a frame with the parent");
	}
	_exit(0);
}

int main(void)
{
	int p[2];
	char path[4096];

	ckpt_block_term();
	anon = mmap(NULL, ANON_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK_SYS(anon != MAP_FAILED, "mmap anon");
	ckpt_fill(anon, ANON_LEN, SEED_ANON, 0);

	const char *dir = getenv("CKPT_TEST_DIR");
	snprintf(path, sizeof(path), "%s/cow-file", dir ? dir : ".");
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK_SYS(fd >= 0, "create %s", path);
	unsigned char *buf = malloc(FILE_LEN);
	CHECK(buf != NULL, "malloc");
	ckpt_fill(buf, FILE_LEN, SEED_FILE, 0);
	CHECK_SYS(write(fd, buf, FILE_LEN) == FILE_LEN, "write %s", path);
	free(buf);
	fmap = mmap(NULL, FILE_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	CHECK_SYS(fmap != MAP_FAILED, "mmap file");
	close(fd);
	ckpt_fill(fmap, FILE_WRITTEN * PAGE, SEED_FILE_PARENT, 0);
	/* Every file page present in the parent, read or written. */
	volatile unsigned sum = 0;
	for (unsigned pg = FILE_WRITTEN; pg < FILE_PAGES; pg++)
		sum += fmap[(size_t)pg * PAGE];
	(void)sum;

	CHECK_SYS(pipe(p) == 0, "pipe");
	pid_t kids[3];
	for (int i = 0; i < 3; i++) {
		kids[i] = fork();
		CHECK_SYS(kids[i] >= 0, "fork");
		if (kids[i] == 0) {
			close(p[0]);
			if (i == 2) {
				for (unsigned j = 0; j < sizeof(c_pages) / sizeof(c_pages[0]); j++)
					ckpt_fill(anon + (size_t)c_pages[j] * PAGE, PAGE, SEED_C, (size_t)c_pages[j] * PAGE);
				ckpt_fill(fmap + C_FILE_PAGE * PAGE, PAGE, SEED_C, C_FILE_PAGE * PAGE);
			}
			CHECK_SYS(write(p[1], "x", 1) == 1, "child: tell the parent");
			close(p[1]);
			child(i == 2);
		}
	}
	close(p[1]);
	char x;
	for (int i = 0; i < 3; i++)
		CHECK_SYS(read(p[0], &x, 1) == 1, "wait for the children");
	close(p[0]);

	ckpt_ready();
	ckpt_wait_term();

	for (int i = 0; i < 3; i++) {
		int st;
		CHECK_SYS(kill(kids[i], SIGTERM) == 0, "SIGTERM child %d", kids[i]);
		CHECK_SYS(waitpid(kids[i], &st, 0) == kids[i], "reap child %d", kids[i]);
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child %c (%d) failed: status %#x", "ABC"[i], kids[i], st);
	}
	/* The children's writes, before and after, stayed theirs. */
	size_t bad = ckpt_verify(anon, ANON_LEN, SEED_ANON, 0);
	CHECK(bad == (size_t)-1, "parent: anon byte %zu changed (a child's write showed through)", bad);
	bad = ckpt_verify(fmap, FILE_WRITTEN * PAGE, SEED_FILE_PARENT, 0);
	CHECK(bad == (size_t)-1, "parent: file-mapped byte %zu changed", bad);
	bad = ckpt_verify(fmap + FILE_WRITTEN * PAGE, (FILE_PAGES - FILE_WRITTEN) * PAGE, SEED_FILE, FILE_WRITTEN * PAGE);
	CHECK(bad == (size_t)-1, "parent: file-mapped byte %zu changed", FILE_WRITTEN * PAGE + bad);
	ckpt_pass();
}
