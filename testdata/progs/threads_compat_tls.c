/* ckpt-test: */
/*
 * threads_compat_tls: per-thread TLS register state of a multi-threaded
 * process, in both ABIs (main thread + 3 pthreads, each with its own
 * __thread data: an array with a per-thread pattern and an initialised
 * word from the .tdata image).
 *  - 32-bit build: glibc's thread pointer is the base of a GDT TLS entry
 *    selected by %gs. Each thread records %gs, the descriptor of every GDT
 *    TLS slot as get_thread_area() reports it (the entry of %gs >> 3 must
 *    have base_addr == the thread pointer %gs:0), and %fs. T1 and T2 also
 *    allocate a second TLS slot (set_thread_area with entry_number -1) with
 *    a per-thread base and load it into %fs; %fs:0 reads a per-thread word.
 *    A restore by a 64-bit tool must rebuild each thread's TLS slots and
 *    reload %gs/%fs from them.
 *  - 64-bit build: each thread records its FS base (arch_prctl
 *    ARCH_GET_FS, equal to the thread pointer %fs:0) and GS base; T1 and T2
 *    set a per-thread GS base (ARCH_SET_GS) and %gs:0 reads a per-thread
 *    word.
 *  - both: the cs/ds/es/ss/fs/gs selectors are recorded and compared.
 * States at checkpoint time: T1 blocked in pthread_cond_wait (futex), T2
 * blocked in a raw FUTEX_WAIT_PRIVATE on a word, T3 spinning in user space (with %gs/%fs
 * live in its registers), the main thread in sigwaitinfo(SIGTERM). After
 * SIGTERM /proc/self/task must list the same TIDs; the threads are woken
 * and check themselves (TID, TLS address and contents, thread pointer,
 * selectors, descriptors/bases, the extra segment word); the results are
 * collected with pthread_join().
 */
#include "ckpt_test.h"

#include <dirent.h>
#include <linux/futex.h>
#include <pthread.h>
#ifdef __x86_64__
#include <asm/prctl.h>
#else
#include <asm/ldt.h>
#endif

#define NTHR 4 /* index 0 is the main thread */
#define TLS_INIT 0x71517153u
#define NSLOT 32 /* GDT entries probed with get_thread_area */

struct segs {
	uint16_t cs, ds, es, ss, fs, gs;
};

struct thr {
	int idx;
	pthread_t pt;
	pid_t tid;
	void *tls_addr;
	uintptr_t tp;	/* thread pointer, %gs:0 / %fs:0 */
	struct segs sel;
	int extra;	/* T1, T2: extra %fs (32) / GS base (64) */
	uint32_t extra_word;
#ifdef __x86_64__
	unsigned long fsbase, gsbase;
#else
	int nslots;
	struct user_desc slot[NSLOT];
#endif
	char err[512];
};

static struct thr thr[NTHR];
/* What the extra segment points at, per thread. */
static uint32_t extra_area[NTHR][16] __attribute__((aligned(64)));

static __thread uint32_t tls_data[48];
static __thread uint32_t tls_init = TLS_INIT;

static pthread_barrier_t barrier;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int t1_go, t1_waiting; /* under mu */
static int t2_word; /* T2's futex word, __atomic accesses */
static volatile int stop;
static uint64_t t3_counter; /* __atomic accesses */

static __attribute__((format(printf, 2, 3)))
void tfail(struct thr *t, const char *fmt, ...)
{
	va_list ap;

	if (t->err[0])
		return; /* keep the first error */
	va_start(ap, fmt);
	vsnprintf(t->err, sizeof(t->err), fmt, ap);
	va_end(ap);
}

static pid_t my_tid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

static void read_segs(struct segs *s)
{
	__asm__ volatile("mov %%cs, %0" : "=r"(s->cs));
	__asm__ volatile("mov %%ds, %0" : "=r"(s->ds));
	__asm__ volatile("mov %%es, %0" : "=r"(s->es));
	__asm__ volatile("mov %%ss, %0" : "=r"(s->ss));
	__asm__ volatile("mov %%fs, %0" : "=r"(s->fs));
	__asm__ volatile("mov %%gs, %0" : "=r"(s->gs));
}

static uintptr_t thread_pointer(void)
{
	uintptr_t tp;

#ifdef __x86_64__
	__asm__ volatile("mov %%fs:0, %0" : "=r"(tp));
#else
	__asm__ volatile("mov %%gs:0, %0" : "=r"(tp));
#endif
	return tp;
}

/* First word of the extra segment: %fs:0 (32-bit) / %gs:0 (64-bit). */
static uint32_t extra_word(void)
{
	uint32_t w;

#ifdef __x86_64__
	__asm__ volatile("movl %%gs:0, %0" : "=r"(w));
#else
	__asm__ volatile("movl %%fs:0, %0" : "=r"(w));
#endif
	return w;
}

#ifdef __x86_64__
static unsigned long get_base(int code)
{
	unsigned long b = 0;

	if (syscall(SYS_arch_prctl, code, &b) != 0)
		ckpt_fail("arch_prctl(%#x): %s", code, strerror(errno));
	return b;
}
#else
/* All GDT entries get_thread_area() accepts (the TLS slots). */
static int read_slots(struct user_desc *slot)
{
	int n = 0;

	for (unsigned e = 0; e < NSLOT; e++) {
		struct user_desc d;

		memset(&d, 0, sizeof(d));
		d.entry_number = e;
		if (syscall(SYS_get_thread_area, &d) != 0) {
			if (errno == EINVAL)
				continue;
			ckpt_fail("get_thread_area(%u): %s", e, strerror(errno));
		}
		slot[n++] = d;
	}
	return n;
}

static const struct user_desc *find_slot(const struct user_desc *slot, int n,
					 unsigned entry)
{
	for (int i = 0; i < n; i++)
		if (slot[i].entry_number == entry)
			return &slot[i];
	return NULL;
}

static void fmt_desc(char *buf, size_t cap, const struct user_desc *d)
{
	snprintf(buf, cap,
		 "{entry %u base %#x limit %#x 32bit %u contents %u ro %u pages %u np %u usable %u}",
		 d->entry_number, d->base_addr, d->limit, d->seg_32bit, d->contents,
		 d->read_exec_only, d->limit_in_pages, d->seg_not_present, d->useable);
}
#endif

/* Per-thread setup, run by the thread itself. */
static void thread_setup(struct thr *t)
{
	t->tid = my_tid();
	t->tls_addr = tls_data;
	ckpt_fill(tls_data, sizeof(tls_data), 0x200u + (uint32_t)t->idx, 0);
	extra_area[t->idx][0] = 0xe0e00000u + (uint32_t)t->idx * 0x1111u;

	if (t->extra) {
#ifdef __x86_64__
		if (syscall(SYS_arch_prctl, ARCH_SET_GS, (unsigned long)extra_area[t->idx]) != 0)
			ckpt_fail("T%d: arch_prctl(ARCH_SET_GS): %s", t->idx, strerror(errno));
#else
		struct user_desc d;
		uint16_t sel;

		memset(&d, 0, sizeof(d));
		d.entry_number = (unsigned)-1;
		d.base_addr = (unsigned)(uintptr_t)extra_area[t->idx];
		d.limit = 0xfffff;
		d.seg_32bit = 1;
		d.limit_in_pages = 1;
		d.useable = 1;
		if (syscall(SYS_set_thread_area, &d) != 0)
			ckpt_fail("T%d: set_thread_area: %s", t->idx, strerror(errno));
		sel = (uint16_t)(d.entry_number << 3 | 3);
		__asm__ volatile("mov %0, %%fs" : : "r"(sel));
#endif
		t->extra_word = extra_word();
		if (t->extra_word != extra_area[t->idx][0])
			ckpt_fail("T%d: extra segment reads %#x, expected %#x", t->idx,
				  t->extra_word, extra_area[t->idx][0]);
	}

	read_segs(&t->sel);
	t->tp = thread_pointer();
#ifdef __x86_64__
	t->fsbase = get_base(ARCH_GET_FS);
	t->gsbase = get_base(ARCH_GET_GS);
	if (t->fsbase != t->tp)
		ckpt_fail("T%d: FS base %#lx != thread pointer %#lx", t->idx, t->fsbase,
			  (unsigned long)t->tp);
	if (t->extra && t->gsbase != (unsigned long)extra_area[t->idx])
		ckpt_fail("T%d: GS base %#lx, set %p", t->idx, t->gsbase,
			  (void *)extra_area[t->idx]);
#else
	{
		const struct user_desc *g;

		t->nslots = read_slots(t->slot);
		g = find_slot(t->slot, t->nslots, t->sel.gs >> 3);
		if (!g)
			ckpt_fail("T%d: %%gs %#x is not a TLS slot", t->idx, t->sel.gs);
		if (g->base_addr != t->tp)
			ckpt_fail("T%d: %%gs base %#x != thread pointer %#lx", t->idx,
				  g->base_addr, (unsigned long)t->tp);
	}
#endif
}

/* Per-thread checks after the restore, run by the thread itself. */
static void thread_check(struct thr *t)
{
	struct segs s;
	uintptr_t tp;
	size_t bad;

	/* Registers first, before any library call could touch them. */
	read_segs(&s);
	tp = thread_pointer();
	if (s.cs != t->sel.cs || s.ds != t->sel.ds || s.es != t->sel.es ||
	    s.ss != t->sel.ss || s.fs != t->sel.fs || s.gs != t->sel.gs)
		tfail(t, "selectors cs/ds/es/ss/fs/gs %#x/%#x/%#x/%#x/%#x/%#x, were %#x/%#x/%#x/%#x/%#x/%#x",
		      s.cs, s.ds, s.es, s.ss, s.fs, s.gs, t->sel.cs, t->sel.ds,
		      t->sel.es, t->sel.ss, t->sel.fs, t->sel.gs);
	if (tp != t->tp)
		tfail(t, "thread pointer %#lx, was %#lx", (unsigned long)tp,
		      (unsigned long)t->tp);
	if (t->extra && extra_word() != t->extra_word)
		tfail(t, "extra segment word %#x, was %#x", extra_word(), t->extra_word);

	if (my_tid() != t->tid)
		tfail(t, "gettid() is %d, was %d", (int)my_tid(), (int)t->tid);
	if ((void *)tls_data != t->tls_addr)
		tfail(t, "TLS block at %p, was at %p", (void *)tls_data, t->tls_addr);
	bad = ckpt_verify(tls_data, sizeof(tls_data), 0x200u + (uint32_t)t->idx, 0);
	if (bad != (size_t)-1)
		tfail(t, "TLS data at %p differs at offset %zu", (void *)tls_data, bad);
	if (tls_init != TLS_INIT)
		tfail(t, "initialised TLS word is %#x, expected %#x", tls_init, TLS_INIT);

#ifdef __x86_64__
	{
		unsigned long fs = get_base(ARCH_GET_FS), gs = get_base(ARCH_GET_GS);

		if (fs != t->fsbase)
			tfail(t, "FS base %#lx, was %#lx", fs, t->fsbase);
		if (gs != t->gsbase)
			tfail(t, "GS base %#lx, was %#lx", gs, t->gsbase);
	}
#else
	{
		struct user_desc now[NSLOT];
		int n = read_slots(now);

		if (n != t->nslots)
			tfail(t, "get_thread_area accepts %d entries, %d before", n,
			      t->nslots);
		for (int i = 0; i < t->nslots; i++) {
			const struct user_desc *was = &t->slot[i];
			const struct user_desc *d = find_slot(now, n, was->entry_number);
			char a[192], b[192];

			if (!d) {
				tfail(t, "TLS slot %u is gone", was->entry_number);
				continue;
			}
			if (memcmp(d, was, sizeof(*d)) != 0) {
				fmt_desc(a, sizeof(a), d);
				fmt_desc(b, sizeof(b), was);
				tfail(t, "TLS slot %s, was %s", a, b);
			}
		}
	}
#endif
}

static void *t1_main(void *arg)
{
	struct thr *t = arg;

	thread_setup(t);
	pthread_barrier_wait(&barrier);

	pthread_mutex_lock(&mu);
	t1_waiting = 1;
	while (!t1_go)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);

	thread_check(t);
	return t->err[0] ? t->err : NULL;
}

static void *t2_main(void *arg)
{
	struct thr *t = arg;
	long r = 0;

	thread_setup(t);
	pthread_barrier_wait(&barrier);

	while (__atomic_load_n(&t2_word, __ATOMIC_ACQUIRE) == 0) {
		r = syscall(SYS_futex, &t2_word, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
		if (r != 0 && errno != EAGAIN && errno != EINTR)
			break;
	}

	thread_check(t);
	if (r != 0 && errno != EAGAIN && errno != EINTR)
		tfail(t, "futex wait: %s", strerror(errno));
	return t->err[0] ? t->err : NULL;
}

static void *t3_main(void *arg)
{
	struct thr *t = arg;
	uint64_t c = 0;

	thread_setup(t);
	pthread_barrier_wait(&barrier);

	while (!stop)
		__atomic_store_n(&t3_counter, ++c, __ATOMIC_RELAXED);

	thread_check(t);
	return t->err[0] ? t->err : NULL;
}

/* Wait (up to 5 s) until the thread is asleep in the kernel. */
static void wait_sleeping(int idx)
{
	for (int i = 0; i < 500; i++) {
		if (ckpt_proc_state(thr[idx].tid) == 'S')
			return;
		ckpt_sleep_ms(10);
	}
	ckpt_fail("T%d (tid %d) is not sleeping after 5 s (state %c)", idx,
		  (int)thr[idx].tid, ckpt_proc_state(thr[idx].tid));
}

/* /proc/self/task must list exactly the recorded TIDs. */
static void check_task_list(void)
{
	int seen[NTHR] = { 0 };
	int n = 0;
	struct dirent *de;
	DIR *d = opendir("/proc/self/task");

	CHECK_SYS(d != NULL, "opendir /proc/self/task");
	while ((de = readdir(d)) != NULL) {
		char *end;
		long tid = strtol(de->d_name, &end, 10);
		int found = 0;

		if (de->d_name[0] == '.' || *end)
			continue;
		n++;
		for (int i = 0; i < NTHR; i++)
			if (thr[i].tid == tid) {
				seen[i]++;
				found = 1;
			}
		CHECK(found, "/proc/self/task has an unknown thread %ld", tid);
	}
	closedir(d);
	for (int i = 0; i < NTHR; i++)
		CHECK(seen[i] == 1, "T%d (tid %d) is %s in /proc/self/task", i,
		      (int)thr[i].tid, seen[i] ? "repeated" : "missing");
	CHECK(n == NTHR, "/proc/self/task has %d threads, expected %d", n, NTHR);
}

int main(void)
{
	static void *(*const fn[NTHR])(void *) = { NULL, t1_main, t2_main, t3_main };
	int e;

	ckpt_block_term();
	for (int i = 0; i < NTHR; i++) {
		thr[i].idx = i;
		thr[i].extra = (i == 1 || i == 2);
	}
	thread_setup(&thr[0]);
	e = pthread_barrier_init(&barrier, NULL, NTHR);
	CHECK(e == 0, "pthread_barrier_init: %s", strerror(e));
	for (int i = 1; i < NTHR; i++) {
		e = pthread_create(&thr[i].pt, NULL, fn[i], &thr[i]);
		CHECK(e == 0, "pthread_create T%d: %s", i, strerror(e));
	}
	pthread_barrier_wait(&barrier);

	/* T1 holds no mutex once we get it: it is inside pthread_cond_wait. */
	for (;;) {
		int w;

		pthread_mutex_lock(&mu);
		w = t1_waiting;
		pthread_mutex_unlock(&mu);
		if (w)
			break;
		ckpt_sleep_ms(1);
	}
	wait_sleeping(1);
	wait_sleeping(2);
	while (__atomic_load_n(&t3_counter, __ATOMIC_RELAXED) == 0)
		ckpt_sleep_ms(1);
	for (int i = 0; i < NTHR; i++) {
		const struct thr *t = &thr[i];

#ifdef __x86_64__
		ckpt_log("T%d tid %d tp %#lx fs %#x gs %#x fsbase %#lx gsbase %#lx",
			 i, (int)t->tid, (unsigned long)t->tp, t->sel.fs, t->sel.gs,
			 t->fsbase, t->gsbase);
#else
		ckpt_log("T%d tid %d tp %#lx fs %#x gs %#x, %d TLS slots", i,
			 (int)t->tid, (unsigned long)t->tp, t->sel.fs, t->sel.gs,
			 t->nslots);
#endif
	}

	ckpt_ready();
	ckpt_wait_term();

	check_task_list();
	{
		uint64_t c1 = __atomic_load_n(&t3_counter, __ATOMIC_RELAXED);

		ckpt_sleep_ms(100);
		CHECK(__atomic_load_n(&t3_counter, __ATOMIC_RELAXED) > c1,
		      "T3 does not spin any more");
	}

	/* Wake everybody and collect their own verdicts. */
	stop = 1;
	pthread_mutex_lock(&mu);
	t1_go = 1;
	pthread_cond_signal(&cv);
	pthread_mutex_unlock(&mu);
	__atomic_store_n(&t2_word, 1, __ATOMIC_RELEASE);
	CHECK_SYS(syscall(SYS_futex, &t2_word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0) >= 0,
		  "futex wake");

	thread_check(&thr[0]);
	CHECK(!thr[0].err[0], "main thread: %s", thr[0].err);
	for (int i = 1; i < NTHR; i++) {
		void *res;

		e = pthread_join(thr[i].pt, &res);
		CHECK(e == 0, "pthread_join T%d: %s", i, strerror(e));
		CHECK(res == NULL, "T%d: %s", i, (const char *)res);
	}
	ckpt_pass();
}
