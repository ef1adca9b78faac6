/* ckpt-test: */
/*
 * leave_running_freeze: memory that keeps changing while it is dumped,
 * for the copy-on-write snapshot of `dump --leave-running` (a dump that
 * lets the task go before its pages are copied must still save one
 * consistent instant of it). TestLeaveRunningSnapshot dumps it with -R,
 * checks the original, then restores the images; TestEndToEnd dumps and
 * restores it as every program.
 *
 * A worker thread sweeps a 32 MiB private buffer of 32-bit words over and
 * over. Pass g first stores g in `gen`, then for each word in order checks
 * that it holds g-1 (what the previous pass left) and stores g. At any
 * instant of the program the buffer is words [0,k) = g and [k,N) = g-1,
 * gen = g, and the thread's registers hold k and g. A copy of the memory
 * that is not one instant (pages copied at different times while the
 * worker runs, or from a generation other than the registers') breaks
 * that: the worker, going on from its registers, finds a word that is
 * not g-1 in the rest of its pass, or in its next pass a word of the
 * first part that is not g, and records it. So the program checks its own
 * restored memory as it goes on, by its own logic.
 *
 * Also (a fork does not copy these into a child as they are):
 *  - 1 MiB with MADV_DONTFORK and 1 MiB with MADV_WIPEONFORK, filled
 *    with patterns: their contents and their VmFlags (dc, wf) must be
 *    there after the restore, and in the original after a dump -R;
 *  - SIGCHLD is blocked in every thread: after the dump it must not be
 *    pending, the process must have no child (/proc/self/task/TID/
 *    children empty, waitpid(__WALL) ECHILD): a dump must not leave
 *    anything of its own in the task.
 * A heartbeat thread notes the longest gap between its 1 ms sleeps; it is
 * printed as a diagnostic (the freeze the task saw), never checked.
 *
 * After SIGTERM: wait until the worker made two more whole passes (every
 * word checked since the restore), stop it, then check all of the above.
 */
#include "ckpt_test.h"

#include <dirent.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define BUF_BYTES (32u << 20)
#define AREA_BYTES (1u << 20)
#define DF_PAT 0xdf00df00u
#define WF_PAT 0x3f3f0000u

static volatile uint32_t *buf;
static size_t nwords;
static volatile uint32_t gen;
static volatile uint32_t passes;
static volatile uint32_t bad, bad_word, bad_got, bad_want, bad_gen;
static volatile int stop;
static volatile int64_t max_gap_ns;
static uint32_t *dontfork, *wipeonfork;

static void *worker(void *arg)
{
	(void)arg;
	while (!stop) {
		uint32_t g = gen + 1;

		gen = g;
		for (size_t i = 0; i < nwords; i++) {
			uint32_t old = buf[i];

			if (old != g - 1 && !bad) {
				bad_word = (uint32_t)i;
				bad_got = old;
				bad_want = g - 1;
				bad_gen = g;
				bad = 1;
			}
			buf[i] = g;
		}
		passes = passes + 1;
	}
	return NULL;
}

static void *heartbeat(void *arg)
{
	int64_t last = ckpt_mono_ns();
	struct timespec ms = { 0, 1000000 };

	(void)arg;
	while (!stop) {
		int64_t now;

		nanosleep(&ms, NULL);
		now = ckpt_mono_ns();
		if (now - last > max_gap_ns)
			max_gap_ns = now - last;
		last = now;
	}
	return NULL;
}

static void *map_area(int advice, uint32_t pat)
{
	uint32_t *p = mmap(NULL, AREA_BYTES, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	CHECK_SYS(p != MAP_FAILED, "mmap");
	for (size_t i = 0; i < AREA_BYTES / 4; i++)
		p[i] = pat ^ (uint32_t)i;
	CHECK_SYS(madvise(p, AREA_BYTES, advice) == 0, "madvise(%d)", advice);
	return p;
}

static void check_area(const char *name, const uint32_t *p, uint32_t pat, const char *flag)
{
	char path[64], line[512];
	unsigned long start = (unsigned long)p;
	int found = 0, in = 0;
	FILE *f;

	for (size_t i = 0; i < AREA_BYTES / 4; i++)
		CHECK(p[i] == (pat ^ (uint32_t)i), "%s area word %zu is %#x, want %#x",
		      name, i, p[i], pat ^ (uint32_t)i);
	snprintf(path, sizeof(path), "/proc/self/smaps");
	f = fopen(path, "r");
	CHECK_SYS(f != NULL, "open %s", path);
	while (fgets(line, sizeof(line), f)) {
		unsigned long s, e;

		if (sscanf(line, "%lx-%lx ", &s, &e) == 2) {
			in = s <= start && start < e;
			continue;
		}
		if (in && strncmp(line, "VmFlags:", 8) == 0) {
			char want[8];

			snprintf(want, sizeof(want), " %s", flag);
			found = strstr(line, want) != NULL;
			break;
		}
	}
	fclose(f);
	CHECK(found, "%s area at %#lx lost VmFlags %s", name, start, flag);
}

static void check_no_child(void)
{
	char path[300], data[256];
	sigset_t pend;
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;

	CHECK_SYS(d != NULL, "opendir /proc/self/task");
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/children", e->d_name);
		ssize_t n = ckpt_read_file(path, data, sizeof(data));
		CHECK_SYS(n >= 0, "read %s", path);
		CHECK(n == 0, "thread %s has children: %s", e->d_name, data);
	}
	closedir(d);
	errno = 0;
	CHECK(waitpid(-1, NULL, WNOHANG | __WALL) == -1 && errno == ECHILD,
	      "waitpid(-1, __WALL) found a child (errno %d)", errno);
	CHECK_SYS(sigpending(&pend) == 0, "sigpending");
	CHECK(!sigismember(&pend, SIGCHLD), "SIGCHLD is pending");
}

int main(void)
{
	pthread_t w, hb;
	sigset_t set;

	ckpt_block_term();
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	CHECK_SYS(sigprocmask(SIG_BLOCK, &set, NULL) == 0, "block SIGCHLD");

	nwords = BUF_BYTES / 4;
	buf = mmap(NULL, BUF_BYTES, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK_SYS(buf != MAP_FAILED, "mmap buffer");
	dontfork = map_area(MADV_DONTFORK, DF_PAT);
	wipeonfork = map_area(MADV_WIPEONFORK, WF_PAT);

	CHECK(pthread_create(&w, NULL, worker, NULL) == 0, "pthread_create worker");
	CHECK(pthread_create(&hb, NULL, heartbeat, NULL) == 0, "pthread_create heartbeat");
	/* A few passes before READY: the buffer is all touched. */
	while (passes < 3)
		usleep(1000);
	ckpt_ready();
	ckpt_wait_term();

	int64_t gap = max_gap_ns;
	uint32_t p0 = passes;
	int64_t deadline = ckpt_mono_ns() + 60LL * 1000000000LL;

	while (passes < p0 + 2) {
		CHECK(ckpt_mono_ns() < deadline, "the worker made %u passes in 60 s after SIGTERM",
		      passes - p0);
		usleep(1000);
	}
	stop = 1;
	pthread_join(w, NULL);
	pthread_join(hb, NULL);
	ckpt_log("longest heartbeat gap %.1f ms; %u passes, generation %u",
		 (double)gap / 1e6, passes, gen);
	CHECK(!bad, "torn memory: in pass %u word %u (page %u) held %u, want %u",
	      bad_gen, bad_word, bad_word / 1024, bad_got, bad_want);
	check_area("MADV_DONTFORK", dontfork, DF_PAT, "dc");
	check_area("MADV_WIPEONFORK", wipeonfork, WF_PAT, "wf");
	check_no_child();
	ckpt_pass();
}
