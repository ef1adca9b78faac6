/* ckpt-test: pidns=yes */
/*
 * pidns_nested inside a tree that has a PID namespace of its own: the
 * process is the init of one namespace (the harness makes it) and its
 * child the init of a second one below it, made by the process. The
 * images name the tasks by their PIDs in the first namespace, and the
 * second level's PIDs are kept besides: after the restore every level is
 * as it was.
 */
#define OUTER_LEVELS 1 /* the host's PID of each task changes */
#include "pidns_nested.c"
