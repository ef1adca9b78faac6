/* ckpt-test: */
/*
 * posix_mqueue.c in an IPC namespace of its own (unshare(CLONE_NEWIPC)):
 * the restore makes the namespace anew, so every queue, the named ones
 * too, is made again in it with its attributes and messages, and not in
 * the host's namespace.
 */
#define _GNU_SOURCE
#define MQ_OWN_NS 1
#include "posix_mqueue.c"
