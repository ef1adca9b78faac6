/* ckpt-test: expect=dump-fail dump-error=userfaultfd */
/*
 * A task with memory registered with userfaultfd (UFFDIO_REGISTER,
 * missing-page mode): a kind of area ckpt refuses by name
 * (internal/kinds/vma, VmFlags "um"), as it refuses the userfaultfd
 * itself: the kernel shows neither the registration's handler nor its
 * pending faults. The dump must refuse, naming it, before it stops the
 * task, and leave the task as it was: afterwards the area is still
 * registered and holds what was written to it (its pages were all
 * present before the registration, so reading them raises no fault).
 */
#include "ckpt_test.h"

#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#define LEN (4 * 4096)

/* Whether the area at addr shows VmFlags token tok in smaps. */
static int has_flag(void *addr, const char *tok)
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
	return strstr(flags, tok) != NULL;
}

int main(void)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg;
	uint8_t *p;
	size_t off;
	int uffd;

	ckpt_block_term();
	p = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK_SYS(p != MAP_FAILED, "mmap");
	ckpt_fill(p, LEN, 3, 0);
	uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	CHECK_SYS(uffd >= 0, "userfaultfd");
	CHECK_SYS(ioctl(uffd, UFFDIO_API, &api) == 0, "UFFDIO_API");
	memset(&reg, 0, sizeof(reg));
	reg.range.start = (uintptr_t)p;
	reg.range.len = LEN;
	reg.mode = UFFDIO_REGISTER_MODE_MISSING;
	CHECK_SYS(ioctl(uffd, UFFDIO_REGISTER, &reg) == 0, "UFFDIO_REGISTER");
	CHECK(has_flag(p, " um") == 1, "the area at %p is not registered with userfaultfd", (void *)p);

	ckpt_ready();
	ckpt_wait_term();

	CHECK(has_flag(p, " um") == 1, "the area at %p is no longer registered after the refused dump", (void *)p);
	off = ckpt_verify(p, LEN, 3, 0);
	CHECK(off == (size_t)-1, "the area differs at byte %zu after the refused dump", off);
	ckpt_pass();
}
