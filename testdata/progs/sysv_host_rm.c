/* ckpt-test: between=ipcrm */
/*
 * sysv_host, with its SysV objects removed between the dump and the
 * restore (the harness does it), as on a fresh machine: the restore makes
 * every one again with its id.
 */
#include "sysv_host.c"
