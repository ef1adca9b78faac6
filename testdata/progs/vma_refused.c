/* ckpt-test: expect=dump-fail dump-error=MLOCK_ONFAULT */
/*
 * A task with memory locked on fault (mlock2 MLOCK_ONFAULT): a kind of
 * area ckpt refuses by name (internal/kinds/vma, VmFlags "lf": the image
 * format has no flag for it, and a restore would either lock it all at
 * once or not at all). The dump must refuse the area, naming it, before
 * it stops the task, and leave the task as it was: afterwards the area
 * is still locked on fault and holds what was written to it.
 */
#include "ckpt_test.h"

#include <sys/mman.h>

#ifndef MLOCK_ONFAULT
#define MLOCK_ONFAULT 0x01
#endif

#define LEN (4 * 4096)

static int locked_on_fault(void *addr)
{
	static char buf[1 << 21];
	char head[32];
	char *p, *flags, *nl;

	if (ckpt_read_file("/proc/self/smaps", buf, sizeof(buf)) < 0)
		ckpt_fail("read smaps: %s", strerror(errno));
	snprintf(head, sizeof(head), "%lx-", (unsigned long)(uintptr_t)addr);
	for (p = buf; p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (strncmp(p, head, strlen(head)) == 0)
			break;
	if (!p || !(flags = strstr(p, "VmFlags:")))
		return -1;
	nl = strchr(flags, '\n');
	if (nl)
		*nl = '\0';
	return strstr(flags, " lf") != NULL;
}

int main(void)
{
	uint8_t *p;
	size_t off;

	ckpt_block_term();
	p = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK_SYS(p != MAP_FAILED, "mmap");
	CHECK_SYS(syscall(SYS_mlock2, p, LEN, MLOCK_ONFAULT) == 0, "mlock2(MLOCK_ONFAULT)");
	ckpt_fill(p, 4096, 3, 0);
	CHECK(locked_on_fault(p) == 1, "the area at %p is not locked on fault", (void *)p);

	ckpt_ready();
	ckpt_wait_term();

	CHECK(locked_on_fault(p) == 1, "the area at %p is no longer locked on fault after the refused dump", (void *)p);
	off = ckpt_verify(p, 4096, 3, 0);
	CHECK(off == (size_t)-1, "the area differs at byte %zu after the refused dump", off);
	ckpt_pass();
}
