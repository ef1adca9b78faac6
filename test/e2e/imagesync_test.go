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
	dumpWritesImages(t, []string{"--no-sync"}, "", "images not synced (--no-sync)")
}

// TestDumpDirect dumps with every pages image written with O_DIRECT
// (CKPT_DIRECT=always; by default only a dump too large for the kernel's
// dirty page cache is): the pages go from the pipes the task vmspliced
// into straight to the disk: memory in many runs, a tree and the heap,
// -m64 and -m32.
func TestDumpDirect(t *testing.T) {
	dumpWritesImages(t, nil, "always", "written directly to the disk (O_DIRECT)")
}

// dumpWritesImages runs the programs with dumpArgs and CKPT_DIRECT=direct
// (unless empty), checks that the dump's log says logSays, and that each
// program passes after the restore.
func dumpWritesImages(t *testing.T, dumpArgs []string, direct, logSays string) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if direct != "" {
		t.Setenv("CKPT_DIRECT", direct)
	}
	progs, err := Programs(progsDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"mem_anon", "process_tree", "mem_heap"} {
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
			p.DumpArgs = dumpArgs
			t.Run(name+"/"+v.Column, func(t *testing.T) {
				if v.Compat() && !hostIA32 {
					t.Skip("this kernel does not run ia32 programs")
				}
				work := t.TempDir()
				bin, _ := filepath.Abs(filepath.Join(progsDir, "build", name+"."+v.Suffix))
				run := &Run{Variant: v, Ckpt: ckptBin, Binary: bin, Prog: p, Work: work, Logf: t.Logf}
				if res := run.Execute(); !res.Pass {
					t.Fatalf("dump and restore: %s", res.Reason)
				}
				log, err := os.ReadFile(filepath.Join(work, "img", "dump.log"))
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(string(log), logSays) {
					t.Errorf("the dump's log does not say %q: %s", logSays, testsupport.LastLines(string(log), 5))
				}
			})
		}
	}
}
