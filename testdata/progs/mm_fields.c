/* ckpt-test: */
/*
 * mm_fields: per-mm values that the restorer has to set explicitly.
 *  - /proc/self/cmdline, /proc/self/environ (read from arg_start..arg_end
 *    and env_start..env_end), /proc/self/auxv (saved_auxv), the exe link;
 *  - getauxval() values (AT_PAGESZ, AT_PHDR, AT_ENTRY, AT_RANDOM and its 16
 *    bytes, AT_SYSINFO_EHDR, AT_EXECFN string, ...);
 *  - the program break (sbrk(0) and the kernel's brk(0));
 *  - argv/envp pointers and strings;
 *  - /proc/self/stat mm fields: startcode endcode startstack start_data
 *    end_data start_brk arg_start arg_end env_start env_end;
 *  - the task name (PR_SET_NAME), /proc/self/comm;
 *  - the whole of /proc/self/maps, except the [vdso]/[vvar] lines and
 *    the dumped vDSO's range.
 */
#include "ckpt_test.h"

#include <sys/auxv.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

extern char **environ;

#define BIG (256 * 1024)

static char cmdline0[BIG], environ0[BIG], auxv0[8192], maps0[BIG], comm0[64];
static char cmdline1[BIG], environ1[BIG], auxv1[8192], maps1[BIG], comm1[64];
static ssize_t cmdline0_len, environ0_len, auxv0_len;
static char exe0[4096], exe1[4096];

static const struct {
	unsigned long type;
	const char *name;
} auxtypes[] = {
	{ AT_PHDR, "AT_PHDR" },       { AT_PHENT, "AT_PHENT" },   { AT_PHNUM, "AT_PHNUM" },
	{ AT_PAGESZ, "AT_PAGESZ" },   { AT_BASE, "AT_BASE" },     { AT_FLAGS, "AT_FLAGS" },
	{ AT_ENTRY, "AT_ENTRY" },     { AT_UID, "AT_UID" },       { AT_EUID, "AT_EUID" },
	{ AT_GID, "AT_GID" },         { AT_EGID, "AT_EGID" },     { AT_PLATFORM, "AT_PLATFORM" },
	{ AT_HWCAP, "AT_HWCAP" },     { AT_CLKTCK, "AT_CLKTCK" }, { AT_SECURE, "AT_SECURE" },
	{ AT_RANDOM, "AT_RANDOM" },   { AT_HWCAP2, "AT_HWCAP2" }, { AT_EXECFN, "AT_EXECFN" },
	{ AT_SYSINFO_EHDR, "AT_SYSINFO_EHDR" },
	{ AT_MINSIGSTKSZ, "AT_MINSIGSTKSZ" },
};
#define NAUX (sizeof(auxtypes) / sizeof(auxtypes[0]))

static unsigned long aux0[NAUX];
static uint8_t random0[16];
static char execfn0[4096], platform0[256];

#define MAXARGS 64
static int argc0;
static char **argv0;
static char *argvp0[MAXARGS];
static char argvs0[MAXARGS][256];
static char **envp0, **environ_ptr0;
static int envc0;
static char *envpp0[MAXARGS * 4];
static char envps0[MAXARGS * 4][512];

/* /proc/self/stat fields (1-based numbering as in proc(5)). */
static const int stat_fields[] = { 26, 27, 28, 45, 46, 47, 48, 49, 50, 51 };
static const char *const stat_names[] = { "startcode", "endcode", "startstack", "start_data",
					  "end_data", "start_brk", "arg_start", "arg_end",
					  "env_start", "env_end" };
#define NSTAT (sizeof(stat_fields) / sizeof(stat_fields[0]))
static unsigned long long stat0[NSTAT];

static void read_stat(unsigned long long *out)
{
	static char sbuf[4096];
	char *p;
	int field = 3;

	if (ckpt_read_file("/proc/self/stat", sbuf, sizeof(sbuf)) < 0)
		ckpt_fail("read /proc/self/stat: %s", strerror(errno));
	p = strrchr(sbuf, ')');
	if (!p)
		ckpt_fail("bad /proc/self/stat");
	p += 2; /* now at field 3 (state) */
	for (size_t k = 0; k < NSTAT; k++)
		out[k] = ~0ULL;
	while (*p) {
		char *end;
		unsigned long long v = strtoull(p, &end, 10);

		for (size_t k = 0; k < NSTAT; k++)
			if (stat_fields[k] == field)
				out[k] = v;
		p = strchr(p, ' ');
		if (!p)
			break;
		p++;
		field++;
	}
	for (size_t k = 0; k < NSTAT; k++)
		if (out[k] == ~0ULL)
			ckpt_fail("/proc/self/stat has no field %d (%s)", stat_fields[k], stat_names[k]);
}

/* Range "start-end" of the first [vdso] seen (before the dump). */
static char vdso_range[64];

/*
 * Copy maps without the lines of kernel-provided special mappings, nor
 * what stands at the dumped vDSO's range: after a restore through vDSO
 * trampolines that is an anonymous copy of the old vDSO, and the real one
 * is elsewhere.
 */
static void read_maps_filtered(char *out, size_t cap)
{
	static char raw[BIG];
	char *p, *o = out;
	size_t vl;

	if (ckpt_read_file("/proc/self/maps", raw, sizeof(raw)) < 0)
		ckpt_fail("read maps: %s", strerror(errno));
	for (p = raw; *p; ) {
		char *nl = strchr(p, '\n');
		size_t l = nl ? (size_t)(nl - p) + 1 : strlen(p);

		if (!vdso_range[0] && memmem(p, l, "[vdso]", 6)) {
			vl = strcspn(p, " ");
			if (vl < sizeof(vdso_range))
				memcpy(vdso_range, p, vl);
		}
		vl = strlen(vdso_range);
		if (vl && l > vl && !memcmp(p, vdso_range, vl) && p[vl] == ' ')
			; /* the dumped vDSO's range */
		else if (!memmem(p, l, "[vdso]", 6) && !memmem(p, l, "[vvar", 5)) {
			if ((size_t)(o - out) + l + 1 > cap)
				ckpt_fail("maps too large");
			memcpy(o, p, l);
			o += l;
		}
		p += l;
	}
	*o = '\0';
}

/* First differing line of two multi-line strings, for the message. */
static void first_diff(const char *a, const char *b, char *out, size_t cap)
{
	while (*a && *b) {
		const char *na = strchr(a, '\n'), *nb = strchr(b, '\n');
		size_t la = na ? (size_t)(na - a) : strlen(a);
		size_t lb = nb ? (size_t)(nb - b) : strlen(b);

		if (la != lb || memcmp(a, b, la) != 0) {
			snprintf(out, cap, "'%.*s' vs '%.*s'", (int)la, a, (int)lb, b);
			return;
		}
		a += la + (na ? 1 : 0);
		b += lb + (nb ? 1 : 0);
	}
	snprintf(out, cap, "'%.100s' vs '%.100s'", a, b);
}

int main(int argc, char **argv, char **envp)
{
	void *sbrk0;
	uintptr_t brk0;
	ssize_t n;

	/* The task name is per-thread state, but cheap to check here. */
	CHECK_SYS(prctl(PR_SET_NAME, "mmfields-ckpt", 0, 0, 0) == 0, "PR_SET_NAME");

	cmdline0_len = ckpt_read_file("/proc/self/cmdline", cmdline0, sizeof(cmdline0));
	CHECK_SYS(cmdline0_len > 0, "read cmdline");
	environ0_len = ckpt_read_file("/proc/self/environ", environ0, sizeof(environ0));
	CHECK_SYS(environ0_len >= 0, "read environ");
	auxv0_len = ckpt_read_file("/proc/self/auxv", auxv0, sizeof(auxv0));
	CHECK_SYS(auxv0_len > 0, "read auxv");
	CHECK_SYS(ckpt_read_file("/proc/self/comm", comm0, sizeof(comm0)) > 0, "read comm");
	n = readlink("/proc/self/exe", exe0, sizeof(exe0) - 1);
	CHECK_SYS(n > 0, "readlink exe");
	exe0[n] = '\0';

	for (size_t i = 0; i < NAUX; i++)
		aux0[i] = getauxval(auxtypes[i].type);
	CHECK(aux0[3] == (unsigned long)sysconf(_SC_PAGESIZE), "AT_PAGESZ");
	CHECK(getauxval(AT_RANDOM) != 0, "no AT_RANDOM");
	memcpy(random0, (const void *)getauxval(AT_RANDOM), 16);
	if (getauxval(AT_EXECFN))
		snprintf(execfn0, sizeof(execfn0), "%s", (const char *)getauxval(AT_EXECFN));
	if (getauxval(AT_PLATFORM))
		snprintf(platform0, sizeof(platform0), "%s", (const char *)getauxval(AT_PLATFORM));

	sbrk0 = sbrk(0);
	brk0 = (uintptr_t)syscall(SYS_brk, 0);

	argc0 = argc;
	argv0 = argv;
	CHECK(argc < MAXARGS, "too many args");
	for (int i = 0; i <= argc; i++) {
		argvp0[i] = argv[i];
		if (argv[i])
			snprintf(argvs0[i], sizeof(argvs0[i]), "%s", argv[i]);
	}
	envp0 = envp;
	environ_ptr0 = environ;
	for (envc0 = 0; envp[envc0]; envc0++) {
		CHECK(envc0 + 1 < MAXARGS * 4, "too many env vars");
		envpp0[envc0] = envp[envc0];
		snprintf(envps0[envc0], sizeof(envps0[envc0]), "%s", envp[envc0]);
	}

	read_stat(stat0);
	read_maps_filtered(maps0, sizeof(maps0));

	ckpt_block_term();
	ckpt_ready();
	ckpt_wait_term();

	/* /proc files, byte for byte. */
	n = ckpt_read_file("/proc/self/cmdline", cmdline1, sizeof(cmdline1));
	CHECK(n == cmdline0_len && memcmp(cmdline0, cmdline1, (size_t)n) == 0,
	      "/proc/self/cmdline changed (%zd -> %zd bytes): '%s' -> '%s'", cmdline0_len, n,
	      cmdline0, cmdline1);
	n = ckpt_read_file("/proc/self/environ", environ1, sizeof(environ1));
	CHECK(n == environ0_len && memcmp(environ0, environ1, (size_t)n) == 0,
	      "/proc/self/environ changed (%zd -> %zd bytes)", environ0_len, n);
	n = ckpt_read_file("/proc/self/auxv", auxv1, sizeof(auxv1));
	CHECK(n == auxv0_len && memcmp(auxv0, auxv1, (size_t)n) == 0,
	      "/proc/self/auxv changed (%zd -> %zd bytes)", auxv0_len, n);
	CHECK_SYS(ckpt_read_file("/proc/self/comm", comm1, sizeof(comm1)) > 0, "read comm");
	CHECK(strcmp(comm0, comm1) == 0, "comm changed: '%s' -> '%s'", comm0, comm1);
	{
		char name[32] = "";

		CHECK_SYS(prctl(PR_GET_NAME, name, 0, 0, 0) == 0, "PR_GET_NAME");
		CHECK(strcmp(name, "mmfields-ckpt") == 0, "PR_GET_NAME = '%s'", name);
	}
	n = readlink("/proc/self/exe", exe1, sizeof(exe1) - 1);
	CHECK_SYS(n > 0, "readlink exe");
	exe1[n] = '\0';
	CHECK(strcmp(exe0, exe1) == 0, "/proc/self/exe changed: '%s' -> '%s'", exe0, exe1);

	/* auxv as seen through glibc (its memory) and the strings it points at. */
	for (size_t i = 0; i < NAUX; i++)
		CHECK(getauxval(auxtypes[i].type) == aux0[i], "getauxval(%s) %#lx -> %#lx",
		      auxtypes[i].name, aux0[i], getauxval(auxtypes[i].type));
	CHECK(memcmp((const void *)getauxval(AT_RANDOM), random0, 16) == 0,
	      "AT_RANDOM bytes changed");
	if (getauxval(AT_EXECFN))
		CHECK(strcmp((const char *)getauxval(AT_EXECFN), execfn0) == 0, "AT_EXECFN string");
	if (getauxval(AT_PLATFORM))
		CHECK(strcmp((const char *)getauxval(AT_PLATFORM), platform0) == 0,
		      "AT_PLATFORM string");

	/* Program break. */
	CHECK(sbrk(0) == sbrk0, "sbrk(0) %p -> %p", sbrk0, sbrk(0));
	CHECK((uintptr_t)syscall(SYS_brk, 0) == brk0, "brk(0) %#lx -> %#lx",
	      (unsigned long)brk0, (unsigned long)syscall(SYS_brk, 0));

	/* argv / envp. */
	CHECK(argc == argc0 && argv == argv0, "argc/argv changed");
	for (int i = 0; i <= argc0; i++) {
		CHECK(argv[i] == argvp0[i], "argv[%d] pointer changed", i);
		if (argv[i])
			CHECK(strcmp(argv[i], argvs0[i]) == 0, "argv[%d] '%s' -> '%s'", i,
			      argvs0[i], argv[i]);
	}
	CHECK(envp == envp0 && environ == environ_ptr0, "envp/environ pointer changed");
	for (int i = 0; i <= envc0; i++) {
		CHECK(envp[i] == envpp0[i], "envp[%d] pointer changed", i);
		if (envp[i])
			CHECK(strcmp(envp[i], envps0[i]) == 0, "envp[%d] '%s' -> '%s'", i,
			      envps0[i], envp[i]);
	}
	/* The cmdline as read from /proc must equal the argv strings. */
	{
		const char *p = cmdline1;

		for (int i = 0; i < argc0; i++) {
			CHECK(strcmp(p, argv[i]) == 0, "cmdline arg %d '%s' != argv '%s'", i, p, argv[i]);
			p += strlen(p) + 1;
		}
	}

	/* /proc/self/stat mm fields. */
	{
		unsigned long long st[NSTAT];

		read_stat(st);
		for (size_t k = 0; k < NSTAT; k++)
			CHECK(st[k] == stat0[k], "/proc/self/stat %s: %#llx -> %#llx", stat_names[k],
			      stat0[k], st[k]);
	}

	/* The whole address space layout. */
	read_maps_filtered(maps1, sizeof(maps1));
	if (strcmp(maps0, maps1) != 0) {
		char d[600];

		first_diff(maps0, maps1, d, sizeof(d));
		ckpt_fail("/proc/self/maps changed (ignoring vdso/vvar): %s", d);
	}

	ckpt_pass();
}
