/* ckpt-test: expect=dump-fail dump-error=AIO */
/*
 * A task with an AIO context (io_setup): its ring is a memory area of a
 * kind ckpt refuses by name (internal/kinds/vma). A restore without it
 * would leave the program's context id pointing at nothing, so the dump
 * must refuse the area, naming it, before it stops the task, and leave
 * the task as it was: afterwards the context still works (io_destroy
 * accepts it) and its ring is still mapped.
 */
#include "ckpt_test.h"

#include <linux/aio_abi.h>

static int ring_mapped(unsigned long ctx)
{
	char line[512];
	FILE *f = fopen("/proc/self/maps", "r");
	int found = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long start = strtoul(line, NULL, 16);
		if (start == ctx && strstr(line, "[aio]"))
			found = 1;
	}
	fclose(f);
	return found;
}

int main(void)
{
	aio_context_t ctx = 0;

	ckpt_block_term();
	CHECK_SYS(syscall(SYS_io_setup, 4, &ctx) == 0, "io_setup");
	CHECK(ring_mapped(ctx) == 1, "the AIO ring at %#lx is not in /proc/self/maps", (unsigned long)ctx);

	ckpt_ready();
	ckpt_wait_term();

	CHECK(ring_mapped(ctx) == 1, "the AIO ring at %#lx is gone after the refused dump", (unsigned long)ctx);
	CHECK_SYS(syscall(SYS_io_destroy, ctx) == 0, "io_destroy after the refused dump");
	ckpt_pass();
}
