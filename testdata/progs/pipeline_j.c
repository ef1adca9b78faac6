/* ckpt-test: shelljob=yes */
/* pipeline.c, dumped and restored with --shell-job: the pipe inside the
 * tree must stay the tree's own, not be taken for stdio to inherit. */
#include "pipeline.c"
