/* ckpt-test: expect=dump-fail dump-error=outside */
/*
 * posix_mqueue_outside.c with the queue unlinked: a process outside the
 * tree holds it, and the restore could not open it again by name, so
 * the dump refuses it by name and leaves it as it was (the program then
 * finds its two messages).
 */
#define MQ_UNLINKED 1
#include "posix_mqueue_outside.c"
