//go:build linux && amd64

package imgsummary

import (
	"fmt"
	"io"
	"time"

	"github.com/ckpt/ckpt/internal/model"
)

// printStats prints stats-dump and stats-restore, those there are
// (CRIU's or ckpt's): times, then page counts. Optional fields are
// printed only when the image has them.
func printStats(w io.Writer, st model.Stats) {
	us := func(v uint32) string { return (time.Duration(v) * time.Microsecond).String() }
	if d := st.Dump; d != nil {
		fmt.Fprintf(w, "stats-dump: freezing %s, frozen %s, memory dump %s (copying pages %s); pages scanned %d, written %d, skipped for a parent %d, lazy %d",
			us(d.GetFreezingTime()), us(d.GetFrozenTime()), us(d.GetMemdumpTime()), us(d.GetMemwriteTime()),
			d.GetPagesScanned(), d.GetPagesWritten(), d.GetPagesSkippedParent(), d.GetPagesLazy())
		if d.IrmapResolve != nil {
			fmt.Fprintf(w, ", irmap resolve %s", us(d.GetIrmapResolve()))
		}
		if d.PagePipes != nil || d.PagePipeBufs != nil {
			fmt.Fprintf(w, ", page pipes %d (%d buffers)", d.GetPagePipes(), d.GetPagePipeBufs())
		}
		if d.ShpagesScanned != nil || d.ShpagesWritten != nil || d.ShpagesSkippedParent != nil {
			fmt.Fprintf(w, "; shared memory pages scanned %d, written %d, skipped for a parent %d",
				d.GetShpagesScanned(), d.GetShpagesWritten(), d.GetShpagesSkippedParent())
		}
		fmt.Fprintln(w)
	}
	if r := st.Restore; r != nil {
		fmt.Fprintf(w, "stats-restore: restore %s, forking %s; pages compared with the parent's %d, left shared with it %d",
			us(r.GetRestoreTime()), us(r.GetForkingTime()), r.GetPagesCompared(), r.GetPagesSkippedCow())
		if r.PagesRestored != nil {
			fmt.Fprintf(w, ", restored %d", r.GetPagesRestored())
		}
		fmt.Fprintln(w)
	}
}
