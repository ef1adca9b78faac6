package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckpt/ckpt/test/testsupport"
)

// TestDumpNoSync dumps with --no-sync (the images left in the page
// cache, as CRIU leaves them) a single process and a tree, -m64 and
// -m32: the restore must find the same dump as a synced one gives, and
// each program checks its state itself.
func TestDumpNoSync(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	progs, err := Programs(progsDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"mem_anon", "process_tree"} {
		var prog *Program
		for i := range progs {
			if progs[i].Name == name {
				prog = &progs[i]
			}
		}
		if prog == nil {
			t.Fatalf("no test program %s", name)
		}
		for _, v := range []Variant{{Column: "native", Suffix: "64"}, {Column: "compat", Suffix: "32"}} {
			p, v := *prog, v
			p.DumpArgs = []string{"--no-sync"}
			t.Run(name+"/"+v.Column, func(t *testing.T) {
				if v.Compat() && !hostIA32 {
					t.Skip("this kernel does not run ia32 programs")
				}
				work := t.TempDir()
				bin, _ := filepath.Abs(filepath.Join(progsDir, "build", name+"."+v.Suffix))
				run := &Run{Variant: v, Ckpt: ckptBin, Binary: bin, Prog: p, Work: work, Logf: t.Logf}
				if res := run.Execute(); !res.Pass {
					t.Fatalf("dump --no-sync and restore: %s", res.Reason)
				}
				log, err := os.ReadFile(filepath.Join(work, "img", "dump.log"))
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(string(log), "not synced (--no-sync)") {
					t.Errorf("the dump's log does not say the images were left unsynced: %s", testsupport.LastLines(string(log), 5))
				}
			})
		}
	}
}
