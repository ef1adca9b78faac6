/*
 * ckpt_test.h - shared helpers for the ckpt C test programs.
 *
 * Protocol:
 *   - output only through write(2) on fd 1;
 *   - "READY\n" exactly once when the state is set up;
 *   - then SIGTERM (blocked beforehand, fetched with sigwaitinfo);
 *   - then exactly one "PASS\n" (exit 0) or "FAIL: <reason>\n" (exit 1);
 *   - lines starting with "# " are diagnostics.
 *
 * Everything here is static inline so that each program stays a single
 * translation unit. Include this header before any system header.
 */
#ifndef CKPT_TEST_H
#define CKPT_TEST_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Write the whole buffer to fd, retrying on EINTR and short writes. */
static inline void ckpt_write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		buf += n;
		len -= (size_t)n;
	}
}

static inline void ckpt_vline(const char *prefix, const char *fmt, va_list ap)
{
	char buf[1024];
	size_t plen = strlen(prefix);
	int n;

	if (plen > 64)
		plen = 64;
	memcpy(buf, prefix, plen);
	n = vsnprintf(buf + plen, sizeof(buf) - plen - 1, fmt, ap);
	if (n < 0)
		n = 0;
	if ((size_t)n > sizeof(buf) - plen - 2)
		n = (int)(sizeof(buf) - plen - 2);
	/* Keep it one line: replace embedded newlines. */
	for (size_t i = plen; i < plen + (size_t)n; i++)
		if (buf[i] == '\n')
			buf[i] = ' ';
	buf[plen + (size_t)n] = '\n';
	ckpt_write_all(1, buf, plen + (size_t)n + 1);
}

/* "# ..." diagnostic line. */
static inline __attribute__((format(printf, 1, 2)))
void ckpt_log(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ckpt_vline("# ", fmt, ap);
	va_end(ap);
}

static inline __attribute__((noreturn, format(printf, 1, 2)))
void ckpt_fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ckpt_vline("FAIL: ", fmt, ap);
	va_end(ap);
	_exit(1);
}

static inline __attribute__((noreturn)) void ckpt_pass(void)
{
	ckpt_write_all(1, "PASS\n", 5);
	_exit(0);
}

static inline void ckpt_ready(void)
{
	ckpt_write_all(1, "READY\n", 6);
}

#define CHECK(cond, fmt, ...)                                              \
	do {                                                               \
		if (!(cond))                                               \
			ckpt_fail("%s:%d: " fmt, __FILE__, __LINE__,       \
				  ##__VA_ARGS__);                          \
	} while (0)

/* CHECK for a system call result: prints errno too. */
#define CHECK_SYS(cond, fmt, ...)                                          \
	do {                                                               \
		if (!(cond)) {                                             \
			int e__ = errno;                                   \
			ckpt_fail("%s:%d: " fmt ": %s (errno %d)",         \
				  __FILE__, __LINE__, ##__VA_ARGS__,       \
				  strerror(e__), e__);                     \
		}                                                          \
	} while (0)

/* Block SIGTERM (must happen before ckpt_ready()). */
static inline void ckpt_block_term(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &set, NULL) != 0)
		ckpt_fail("sigprocmask(SIG_BLOCK, SIGTERM): %s", strerror(errno));
}

/* Wait for the (blocked) SIGTERM with sigwaitinfo(). */
static inline void ckpt_wait_term(void)
{
	sigset_t set;
	siginfo_t si;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	for (;;) {
		int s = sigwaitinfo(&set, &si);
		if (s == SIGTERM)
			return;
		if (s < 0 && errno == EINTR)
			continue;
		ckpt_fail("sigwaitinfo(SIGTERM) returned %d: %s", s,
			  s < 0 ? strerror(errno) : "unexpected signal");
	}
}

/* ------------------------------------------------------------------ */
/* Small utilities                                                     */
/* ------------------------------------------------------------------ */

/*
 * Clock in nanoseconds through the real system call, so that programs that
 * are not about the vDSO never call into it (glibc's clock_gettime does).
 */
static inline int64_t ckpt_clock_ns(clockid_t clk)
{
	struct timespec ts;

	if (syscall(SYS_clock_gettime, clk, &ts) != 0)
		ckpt_fail("clock_gettime(%d): %s", (int)clk, strerror(errno));
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static inline int64_t ckpt_mono_ns(void)
{
	return ckpt_clock_ns(CLOCK_MONOTONIC);
}

/*
 * Read a whole (proc) file into buf (NUL terminated). Returns the number of
 * bytes read, or -1 with errno set. Fails the test if it does not fit.
 */
static inline ssize_t ckpt_read_file(const char *path, char *buf, size_t cap)
{
	size_t len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	for (;;) {
		ssize_t n;

		if (len + 1 >= cap)
			ckpt_fail("ckpt_read_file(%s): buffer of %zu bytes too small",
				  path, cap);
		n = read(fd, buf + len, cap - 1 - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			int e = errno;
			close(fd);
			errno = e;
			return -1;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	return (ssize_t)len;
}

/*
 * Find the /proc/self/maps line describing the mapping that contains addr.
 * The line (without newline) is copied into out. Returns 0 on success,
 * -1 if no mapping contains addr.
 */
static inline int ckpt_maps_line(const void *addr, char *out, size_t outcap)
{
	static char mbuf[1 << 20];
	uintptr_t a = (uintptr_t)addr;
	char *p;

	if (ckpt_read_file("/proc/self/maps", mbuf, sizeof(mbuf)) < 0)
		ckpt_fail("read /proc/self/maps: %s", strerror(errno));
	for (p = mbuf; *p; ) {
		char *nl = strchr(p, '\n');
		size_t l = nl ? (size_t)(nl - p) : strlen(p);
		unsigned long long s, e;

		if (sscanf(p, "%llx-%llx", &s, &e) == 2 && a >= s && a < e) {
			if (l >= outcap)
				l = outcap - 1;
			memcpy(out, p, l);
			out[l] = '\0';
			return 0;
		}
		if (!nl)
			break;
		p = nl + 1;
	}
	return -1;
}

/*
 * Like ckpt_maps_line but keeps only "start-end perms" (the first two
 * fields), which is what most programs compare.
 */
static inline int ckpt_maps_range(const void *addr, char *out, size_t outcap)
{
	char line[512];
	char *sp;

	if (ckpt_maps_line(addr, line, sizeof(line)) != 0)
		return -1;
	sp = strchr(line, ' ');
	if (sp) {
		sp = strchr(sp + 1, ' ');
		if (sp)
			*sp = '\0';
	}
	snprintf(out, outcap, "%s", line);
	return 0;
}

/*
 * Copy the value of a "Name:\tvalue" line of /proc/self/status (value
 * without leading whitespace and trailing newline). Returns 0 or -1.
 */
/*
 * Value of a "Name:" line of a /proc status-style file at path, without
 * leading blanks, into out. Returns -1 if there is no such line.
 */
static inline int ckpt_file_field(const char *path, const char *name, char *out, size_t outcap)
{
	static char sbuf[16384];
	size_t nlen = strlen(name);
	char *p;

	if (ckpt_read_file(path, sbuf, sizeof(sbuf)) < 0)
		ckpt_fail("read %s: %s", path, strerror(errno));
	for (p = sbuf; *p; ) {
		char *nl = strchr(p, '\n');

		if (strncmp(p, name, nlen) == 0 && p[nlen] == ':') {
			char *v = p + nlen + 1;
			size_t l;

			while (*v == ' ' || *v == '\t')
				v++;
			l = nl ? (size_t)(nl - v) : strlen(v);
			if (l >= outcap)
				l = outcap - 1;
			memcpy(out, v, l);
			out[l] = '\0';
			return 0;
		}
		if (!nl)
			break;
		p = nl + 1;
	}
	return -1;
}

static inline int ckpt_status_field(const char *name, char *out, size_t outcap)
{
	return ckpt_file_field("/proc/self/status", name, out, outcap);
}

/* State letter of /proc/ID/stat (a process or a thread), '?' if unreadable. */
static inline char ckpt_proc_state(pid_t id)
{
	char path[64], buf[1024];
	char *p;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)id);
	if (ckpt_read_file(path, buf, sizeof(buf)) < 0)
		return '?';
	p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : '?';
}

/* Sleep ms milliseconds, through EINTR. */
static inline void ckpt_sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Compare two signal sets over signals 1..64. Returns the first differing
 * signal number, or 0 if equal. */
static inline int ckpt_sigset_diff(const sigset_t *a, const sigset_t *b)
{
	for (int s = 1; s <= 64; s++)
		if (sigismember(a, s) != sigismember(b, s))
			return s;
	return 0;
}

/* Deterministic byte pattern generator. */
static inline uint8_t ckpt_pattern(uint32_t seed, size_t off)
{
	uint32_t x = seed * 2654435761u + (uint32_t)off * 40503u + (uint32_t)(off >> 13);

	x ^= x >> 15;
	x *= 2246822519u;
	x ^= x >> 13;
	return (uint8_t)x;
}

static inline void ckpt_fill(void *p, size_t len, uint32_t seed, size_t base)
{
	uint8_t *b = p;

	for (size_t i = 0; i < len; i++)
		b[i] = ckpt_pattern(seed, base + i);
}

/* Returns the offset of the first mismatch, or (size_t)-1 if all match. */
static inline size_t ckpt_verify(const void *p, size_t len, uint32_t seed, size_t base)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < len; i++)
		if (b[i] != ckpt_pattern(seed, base + i))
			return i;
	return (size_t)-1;
}

#endif /* CKPT_TEST_H */
