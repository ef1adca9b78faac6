package restore

import (
	"testing"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/model"
)

func TestHelperABI(t *testing.T) {
	p := func(compat, zombie bool) *model.Process { return &model.Process{Compat: compat, Zombie: zombie} }
	for _, c := range []struct {
		name string
		tree []*model.Process
		want x86.ABI
	}{
		{"x86_64", []*model.Process{p(false, false)}, x86.ABI64},
		{"ia32", []*model.Process{p(true, false)}, x86.ABI32},
		{"ia32 tree", []*model.Process{p(true, false), p(true, false), p(true, true)}, x86.ABI32},
		// A zombie runs no code: whatever it was, it needs no mm.
		{"ia32 with an x86_64 zombie", []*model.Process{p(true, false), p(false, true)}, x86.ABI32},
		// TIF_ADDR32 would keep the 64-bit child below 4 GiB.
		{"ia32 parent, x86_64 child", []*model.Process{p(true, false), p(false, false)}, x86.ABI64},
		{"x86_64 parent, ia32 child", []*model.Process{p(false, false), p(true, false)}, x86.ABI64},
	} {
		if got := helperABI(c.tree); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
