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
	dumpWritesImages(t, imageProgs, []string{"--no-sync"}, nil, "images not synced (--no-sync)", "")
}

// TestDumpDirect dumps with every pages image written with O_DIRECT
// (CKPT_DIRECT=always; by default only a dump too large for the kernel's
// dirty page cache is): the pages go from the pipes the task vmspliced
// into straight to the disk: memory in many runs, a tree and the heap,
// -m64 and -m32.
func TestDumpDirect(t *testing.T) {
	dumpWritesImages(t, imageProgs, nil, map[string]string{"CKPT_DIRECT": "always"}, "written directly to the disk (O_DIRECT)", "")
}

// TestDumpPageWriters dumps with the pages moved from the pipes to the
// image by two writers at once (splice, and reads into a shared mapping
// of the image, which by default helps only a slow splice: here it takes
// pipes whenever it is free), and by splice alone, synced and not: many
// runs of single pages and the heap, -m64 and -m32.
func TestDumpPageWriters(t *testing.T) {
	const two = "copied by 2 writers"
	for _, sync := range []string{"synced", "no-sync"} {
		var args []string
		if sync == "no-sync" {
			args = []string{"--no-sync"}
		}
		t.Run("two/"+sync, func(t *testing.T) {
			dumpWritesImages(t, writerProgs, args, map[string]string{"CKPT_PAGE_WRITERS": "2", "CKPT_DIRECT": "off"}, two, "")
		})
		t.Run("one/"+sync, func(t *testing.T) {
			dumpWritesImages(t, writerProgs, args, map[string]string{"CKPT_PAGE_WRITERS": "1", "CKPT_DIRECT": "off"}, "", two)
		})
	}
}

// imageProgs are memory in many runs, a tree and the heap.
var imageProgs = []string{"mem_anon", "process_tree", "mem_heap"}

// writerProgs are memory in many runs and the heap: each process holds
// enough pages for the pipes (spliceMin).
var writerProgs = []string{"mem_anon", "mem_heap"}

// dumpWritesImages runs the programs names with dumpArgs and the environment
// env, checks that the dump's log says logSays and not logLacks (each
// unless empty), and that each program passes after the restore.
func dumpWritesImages(t *testing.T, names, dumpArgs []string, env map[string]string, logSays, logLacks string) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	progs, err := Programs(progsDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
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
				if logSays != "" && !strings.Contains(string(log), logSays) {
					t.Errorf("the dump's log does not say %q: %s", logSays, testsupport.LastLines(string(log), 5))
				}
				if logLacks != "" && strings.Contains(string(log), logLacks) {
					t.Errorf("the dump's log says %q: %s", logLacks, testsupport.LastLines(string(log), 5))
				}
			})
		}
	}
}
