/* ckpt-test: expect=dump-fail dump-error=MCL_FUTURE */
/*
 * mlockall_future: mlockall(MCL_CURRENT|MCL_FUTURE) sets the mm's
 * def_flags, which CRIU's images cannot hold: the dump must refuse the
 * task, naming MCL_FUTURE, and leave it as it was: still locking every
 * new mapping (a mapping made after the refused dump is locked), its
 * memory intact.
 */
#include "ckpt_test.h"

#include <sys/mman.h>

/* Whether /proc/self/status says some memory is locked (VmLck > 0). */
static long vmlck_kb(void)
{
	static char buf[1 << 16];
	char *p;

	CHECK(ckpt_read_file("/proc/self/status", buf, sizeof(buf)) > 0, "read status");
	p = strstr(buf, "VmLck:");
	CHECK(p, "no VmLck in status");
	return strtol(p + 6, NULL, 10);
}

int main(void)
{
	long pagesz = sysconf(_SC_PAGESIZE), before, after;
	unsigned char *m;

	ckpt_block_term();
	m = mmap(NULL, 4 * pagesz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK_SYS(m != MAP_FAILED, "mmap");
	memset(m, 0x3c, 4 * pagesz);
	CHECK_SYS(mlockall(MCL_CURRENT | MCL_FUTURE) == 0, "mlockall");
	ckpt_ready();
	ckpt_wait_term();

	before = vmlck_kb();
	m = mmap(NULL, 16 * pagesz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK_SYS(m != MAP_FAILED, "mmap after");
	after = vmlck_kb();
	CHECK(after >= before + 16 * pagesz / 1024, "a new mapping is not locked: VmLck %ld kB, then %ld kB", before, after);
	ckpt_pass();
}
