/* ckpt-test: expect=dump-fail dump-error=namespace */
/*
 * A task in a UTS namespace of its own, with a hostname of its own. A
 * restore would put it into ckpt's namespace and its hostname would
 * silently become the host's, so the dump must refuse it, naming the
 * namespace, and leave it as it was: afterwards it is still in its own
 * namespace with its own hostname.
 */
#include "ckpt_test.h"

#include <sched.h>

int main(void)
{
	char name[64] = {0};

	ckpt_block_term();
	CHECK_SYS(unshare(CLONE_NEWUTS) == 0, "unshare(CLONE_NEWUTS)");
	CHECK_SYS(sethostname("ckpt-uts-test", 13) == 0, "sethostname");

	ckpt_ready();
	ckpt_wait_term();

	CHECK_SYS(gethostname(name, sizeof(name) - 1) == 0, "gethostname");
	CHECK(strcmp(name, "ckpt-uts-test") == 0, "hostname %s after the refused dump", name);
	ckpt_pass();
}
