/* ckpt-test: expect=dump-fail dump-error=network */
/*
 * A task in a network namespace of its own. Its interfaces, addresses
 * and sockets cannot be made again yet, so the dump must refuse it,
 * naming the network namespace, and leave it as it was: afterwards it
 * is still in its own namespace, not ckpt's.
 */
#include "ckpt_test.h"

#include <sched.h>
#include <sys/stat.h>

int main(void)
{
	struct stat before, after, parent;
	char path[64];

	ckpt_block_term();
	CHECK_SYS(unshare(CLONE_NEWNET) == 0, "unshare(CLONE_NEWNET)");
	CHECK_SYS(stat("/proc/self/ns/net", &before) == 0, "stat /proc/self/ns/net");

	ckpt_ready();
	ckpt_wait_term();

	CHECK_SYS(stat("/proc/self/ns/net", &after) == 0, "stat /proc/self/ns/net");
	CHECK(after.st_ino == before.st_ino, "another network namespace after the refused dump");
	snprintf(path, sizeof(path), "/proc/%d/ns/net", getppid());
	CHECK_SYS(stat(path, &parent) == 0, "stat %s", path);
	CHECK(parent.st_ino != after.st_ino, "in the parent's network namespace");
	ckpt_pass();
}
