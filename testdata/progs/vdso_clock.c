/* ckpt-test: vdso=yes */
/*
 * vdso_clock: the vDSO after restore.
 *  - AT_SYSINFO_EHDR equals the [vdso] start, the [vdso] and [vvar*] lines
 *    of /proc/self/maps and the vDSO image bytes are unchanged;
 *  - clock_gettime (MONOTONIC, REALTIME, BOOTTIME, MONOTONIC_RAW, *_COARSE),
 *    gettimeofday and time work and are sane: monotonic clocks did not go
 *    backwards across the checkpoint, realtime agrees with time(), 1000
 *    calls in a row are monotonic;
 *  - the vDSO entry points, looked up in the vDSO's own symbol table and
 *    called directly, agree with the real system calls (their data page is
 *    live, not a stale copy);
 *  - sched_getcpu()/getcpu() (and the vDSO getcpu where present).
 */
#include "ckpt_test.h"

#include <elf.h>
#include <link.h>
#include <sched.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <sys/time.h>

typedef int (*vdso_clock_gettime_t)(clockid_t, struct timespec *);
typedef int (*vdso_gettimeofday_t)(struct timeval *, void *);
typedef long (*vdso_getcpu_t)(unsigned *, unsigned *, void *);

static uintptr_t vdso_base;

/* Look up a symbol in the vDSO's dynamic symbol table. */
static void *vdso_sym(const char *name)
{
	const ElfW(Ehdr) *eh = (const ElfW(Ehdr) *)vdso_base;
	const ElfW(Phdr) *ph = (const ElfW(Phdr) *)(vdso_base + eh->e_phoff);
	const ElfW(Shdr) *sh = (const ElfW(Shdr) *)(vdso_base + eh->e_shoff);
	uintptr_t bias = 0;
	int found_load = 0;

	for (int i = 0; i < eh->e_phnum; i++) {
		if (ph[i].p_type == PT_LOAD && !found_load) {
			bias = vdso_base + ph[i].p_offset - ph[i].p_vaddr;
			found_load = 1;
		}
	}
	if (!found_load || eh->e_shoff == 0)
		return NULL;
	for (int i = 0; i < eh->e_shnum; i++) {
		const ElfW(Sym) *sym;
		const char *str;
		size_t n;

		if (sh[i].sh_type != SHT_DYNSYM)
			continue;
		sym = (const ElfW(Sym) *)(vdso_base + sh[i].sh_offset);
		str = (const char *)(vdso_base + sh[sh[i].sh_link].sh_offset);
		n = sh[i].sh_size / sizeof(ElfW(Sym));
		for (size_t k = 0; k < n; k++) {
			if (sym[k].st_shndx == SHN_UNDEF || sym[k].st_name == 0)
				continue;
			if (strcmp(str + sym[k].st_name, name) == 0)
				return (void *)(bias + sym[k].st_value);
		}
	}
	return NULL;
}

static int64_t ts_ns(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000000000LL + ts->tv_nsec;
}

static int64_t sys_clock_ns(clockid_t clk)
{
	struct timespec ts;

	if (syscall(SYS_clock_gettime, clk, &ts) != 0)
		ckpt_fail("syscall clock_gettime(%d): %s", (int)clk, strerror(errno));
	return ts_ns(&ts);
}

static char vdso_line0[512], vvar_lines0[2048];
static uint32_t vdso_hash0;
static size_t vdso_len;

/* [vdso] line into vdso_line, all [vvar*] lines concatenated into vvar. */
static void special_lines(char *vdso_line, size_t vcap, char *vvar, size_t vvcap)
{
	static char maps[1 << 20];
	char *p;

	vdso_line[0] = '\0';
	vvar[0] = '\0';
	if (ckpt_read_file("/proc/self/maps", maps, sizeof(maps)) < 0)
		ckpt_fail("read maps: %s", strerror(errno));
	for (p = maps; *p; ) {
		char *nl = strchr(p, '\n');

		if (nl)
			*nl = '\0';
		if (strstr(p, "[vdso]"))
			snprintf(vdso_line, vcap, "%s", p);
		else if (strstr(p, "[vvar")) {
			size_t l = strlen(vvar);
			snprintf(vvar + l, vvcap - l, "%s;", p);
		}
		if (!nl)
			break;
		p = nl + 1;
	}
}

static uint32_t hash_bytes(const uint8_t *p, size_t n)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

/* Through glibc, i.e. through the vDSO (ckpt_clock_ns is a raw syscall). */
static int64_t vclock_ns(clockid_t clk)
{
	struct timespec ts;

	if (clock_gettime(clk, &ts) != 0)
		ckpt_fail("clock_gettime(%d): %s", (int)clk, strerror(errno));
	return ts_ns(&ts);
}

static void check_monotonic_loop(const char *what, clockid_t clk)
{
	int64_t prev = vclock_ns(clk);

	for (int i = 0; i < 1000; i++) {
		int64_t now = vclock_ns(clk);

		CHECK(now >= prev, "%s went backwards in a loop: %lld -> %lld", what,
		      (long long)prev, (long long)now);
		prev = now;
	}
}

static void check_vdso_vs_syscall(const char *name, clockid_t clk)
{
	vdso_clock_gettime_t fn = (vdso_clock_gettime_t)vdso_sym(name);

	if (!fn)
		return;
	for (int i = 0; i < 100; i++) {
		struct timespec ts;
		int64_t a = sys_clock_ns(clk), v, b;

		CHECK(fn(clk, &ts) == 0, "%s(%d) failed", name, (int)clk);
		v = ts_ns(&ts);
		b = sys_clock_ns(clk);
		CHECK(a <= v && v <= b,
		      "%s(%d) = %lld not between system calls %lld and %lld (stale vvar?)", name,
		      (int)clk, (long long)v, (long long)a, (long long)b);
	}
}

int main(void)
{
	char vdso_line[512], vvar_lines[2048];
	unsigned long ehdr0;
	unsigned long long vs, ve;
	int64_t mono0, boot0, raw0, real0;

	ehdr0 = getauxval(AT_SYSINFO_EHDR);
	CHECK(ehdr0 != 0, "no AT_SYSINFO_EHDR: no vDSO");
	special_lines(vdso_line0, sizeof(vdso_line0), vvar_lines0, sizeof(vvar_lines0));
	CHECK(vdso_line0[0] != '\0', "no [vdso] in maps");
	CHECK(sscanf(vdso_line0, "%llx-%llx", &vs, &ve) == 2, "bad vdso line");
	CHECK(vs == ehdr0, "AT_SYSINFO_EHDR %#lx != [vdso] start %#llx", ehdr0, vs);
	vdso_base = (uintptr_t)ehdr0;
	vdso_len = (size_t)(ve - vs);
	CHECK(memcmp((void *)vdso_base, ELFMAG, SELFMAG) == 0, "vDSO has no ELF magic");
	vdso_hash0 = hash_bytes((const uint8_t *)vdso_base, vdso_len);
	CHECK(vdso_sym("__vdso_clock_gettime") != NULL, "no __vdso_clock_gettime in the vDSO");

	mono0 = vclock_ns(CLOCK_MONOTONIC);
	boot0 = vclock_ns(CLOCK_BOOTTIME);
	raw0 = vclock_ns(CLOCK_MONOTONIC_RAW);
	real0 = vclock_ns(CLOCK_REALTIME);
	ckpt_log("before: vdso %s", vdso_line0);
	ckpt_log("vdso symbols: clock_gettime=%p gettimeofday=%p time=%p getcpu=%p",
		 vdso_sym("__vdso_clock_gettime"), vdso_sym("__vdso_gettimeofday"),
		 vdso_sym("__vdso_time"), vdso_sym("__vdso_getcpu"));

	ckpt_block_term();
	ckpt_ready();
	ckpt_wait_term();

	/* Where the vDSO is. */
	CHECK(getauxval(AT_SYSINFO_EHDR) == ehdr0, "AT_SYSINFO_EHDR changed");
	special_lines(vdso_line, sizeof(vdso_line), vvar_lines, sizeof(vvar_lines));
	if (strcmp(vdso_line, vdso_line0) == 0) {
		/* Same kernel vDSO at the same place: same image, same vvar. */
		CHECK(strcmp(vvar_lines, vvar_lines0) == 0, "[vvar] lines '%s' -> '%s'",
		      vvar_lines0, vvar_lines);
		CHECK(hash_bytes((const uint8_t *)vdso_base, vdso_len) == vdso_hash0,
		      "vDSO image bytes changed");
	} else {
		/*
		 * The restore moved the kernel's vDSO (another kernel, or the
		 * trampoline path forced): the old range must still hold an
		 * executable ELF image (the proxy whose entry points jump to the
		 * new vDSO); the calls below prove the jumps work.
		 */
		char line[256];
		CHECK(ckpt_maps_line((const void *)ehdr0, line, sizeof line) == 0,
		      "[vdso] moved ('%s' -> '%s') and nothing is mapped at AT_SYSINFO_EHDR",
		      vdso_line0, vdso_line);
		CHECK(strstr(line, "r-x") != NULL, "vDSO proxy not executable: %s", line);
		CHECK(memcmp((const void *)ehdr0, "\177ELF", 4) == 0, "no ELF image at AT_SYSINFO_EHDR");
		ckpt_log("vDSO moved: %s; proxy: %s", vdso_line, line);
	}

	/* All clocks work through glibc (which uses the vDSO). */
	{
		static const clockid_t clks[] = { CLOCK_MONOTONIC, CLOCK_REALTIME, CLOCK_BOOTTIME,
						  CLOCK_MONOTONIC_RAW, CLOCK_MONOTONIC_COARSE,
						  CLOCK_REALTIME_COARSE, CLOCK_PROCESS_CPUTIME_ID,
						  CLOCK_THREAD_CPUTIME_ID };
		for (size_t i = 0; i < sizeof(clks) / sizeof(clks[0]); i++) {
			struct timespec ts;

			CHECK(clock_gettime(clks[i], &ts) == 0, "clock_gettime(%d): %s",
			      (int)clks[i], strerror(errno));
			CHECK(ts.tv_nsec >= 0 && ts.tv_nsec < 1000000000, "clock %d tv_nsec %ld",
			      (int)clks[i], (long)ts.tv_nsec);
			CHECK(clock_getres(clks[i], &ts) == 0, "clock_getres(%d)", (int)clks[i]);
		}
	}
	{
		int64_t mono = vclock_ns(CLOCK_MONOTONIC);
		int64_t boot = vclock_ns(CLOCK_BOOTTIME);
		int64_t raw = vclock_ns(CLOCK_MONOTONIC_RAW);
		int64_t real = vclock_ns(CLOCK_REALTIME);
		struct timeval tv;
		time_t t;

		CHECK(mono >= mono0, "CLOCK_MONOTONIC went backwards: %lld -> %lld",
		      (long long)mono0, (long long)mono);
		CHECK(boot >= boot0, "CLOCK_BOOTTIME went backwards");
		CHECK(raw >= raw0, "CLOCK_MONOTONIC_RAW went backwards");
		CHECK(boot >= mono, "BOOTTIME %lld < MONOTONIC %lld", (long long)boot, (long long)mono);
		CHECK(mono - mono0 < 3600LL * 1000000000LL, "MONOTONIC jumped by %lld s",
		      (long long)((mono - mono0) / 1000000000LL));
		CHECK(real > real0 - 300LL * 1000000000LL, "REALTIME went back by minutes");
		t = time(NULL);
		CHECK(t != (time_t)-1, "time() failed");
		CHECK(real / 1000000000LL >= (int64_t)t - 300 && real / 1000000000LL <= (int64_t)t + 300,
		      "REALTIME %lld vs time() %lld", (long long)(real / 1000000000LL), (long long)t);
		CHECK(gettimeofday(&tv, NULL) == 0, "gettimeofday: %s", strerror(errno));
		CHECK(tv.tv_usec >= 0 && tv.tv_usec < 1000000, "gettimeofday usec %ld", (long)tv.tv_usec);
		CHECK((int64_t)tv.tv_sec >= (int64_t)t - 2 && (int64_t)tv.tv_sec <= (int64_t)t + 2,
		      "gettimeofday %lld vs time() %lld", (long long)tv.tv_sec, (long long)t);
	}
	check_monotonic_loop("CLOCK_MONOTONIC", CLOCK_MONOTONIC);
	check_monotonic_loop("CLOCK_BOOTTIME", CLOCK_BOOTTIME);
	check_monotonic_loop("CLOCK_MONOTONIC_RAW", CLOCK_MONOTONIC_RAW);
	check_monotonic_loop("CLOCK_MONOTONIC_COARSE", CLOCK_MONOTONIC_COARSE);

	/* Call the vDSO directly and compare with the kernel. */
	check_vdso_vs_syscall("__vdso_clock_gettime", CLOCK_MONOTONIC);
	check_vdso_vs_syscall("__vdso_clock_gettime", CLOCK_REALTIME);
	check_vdso_vs_syscall("__vdso_clock_gettime", CLOCK_BOOTTIME);
	{
		vdso_gettimeofday_t gtod = (vdso_gettimeofday_t)vdso_sym("__vdso_gettimeofday");

		if (gtod) {
			struct timeval tv;
			int64_t a = sys_clock_ns(CLOCK_REALTIME) / 1000, v, b;

			CHECK(gtod(&tv, NULL) == 0, "__vdso_gettimeofday failed");
			v = (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
			b = sys_clock_ns(CLOCK_REALTIME) / 1000;
			CHECK(a <= v && v <= b + 1, "__vdso_gettimeofday %lld not in [%lld, %lld]",
			      (long long)v, (long long)a, (long long)b);
		}
	}

	/* CPU number. */
	{
		long ncpu = sysconf(_SC_NPROCESSORS_CONF);
		unsigned cpu = ~0u, node = ~0u;
		vdso_getcpu_t vgetcpu = (vdso_getcpu_t)vdso_sym("__vdso_getcpu");
		int c;

		if (ncpu < 1)
			ncpu = 1;
		sched_yield();
		c = sched_getcpu();
		CHECK(c >= 0 && c < ncpu + 64, "sched_getcpu() = %d (%s)", c, strerror(errno));
		CHECK(getcpu(&cpu, &node) == 0, "getcpu: %s", strerror(errno));
		CHECK(cpu < (unsigned)ncpu + 64, "getcpu cpu = %u", cpu);
		CHECK_SYS(syscall(SYS_getcpu, &cpu, &node, NULL) == 0, "SYS_getcpu");
		if (vgetcpu) {
			unsigned vcpu = ~0u, vnode = ~0u;

			CHECK(vgetcpu(&vcpu, &vnode, NULL) == 0, "__vdso_getcpu failed");
			CHECK(vcpu < (unsigned)ncpu + 64, "__vdso_getcpu cpu = %u", vcpu);
			/* The CPU may change between the calls; retry for agreement. */
			for (int i = 0; i < 100; i++) {
				syscall(SYS_getcpu, &cpu, &node, NULL);
				vgetcpu(&vcpu, &vnode, NULL);
				if (vcpu == cpu && vnode == node)
					break;
			}
			CHECK(vcpu == cpu && vnode == node, "__vdso_getcpu %u/%u vs syscall %u/%u",
			      vcpu, vnode, cpu, node);
		}
	}

	ckpt_pass();
}
