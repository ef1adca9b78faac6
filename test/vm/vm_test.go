package vm

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ckpt/ckpt/test/testsupport"
)

// TestGuestRunsIA32 boots the guest with a 32-bit and a 64-bit program
// and checks that both ran there and that their output came back.
func TestGuestRunsIA32(t *testing.T) {
	kernel, err := FindKernel()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "hello.c")
	if err := os.WriteFile(src, []byte(`#include <stdio.h>
int main(int argc, char **argv) {
	FILE *f = fopen(argv[1], "a");
	if (!f) return 3;
	fprintf(f, "hello from %zu-bit code\n", sizeof(void *) * 8);
	return fclose(f) ? 4 : 0;
}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	a := NewInitramfs()
	for _, m := range []string{"32", "64"} {
		bin := filepath.Join(dir, "hello"+m)
		if err := testsupport.BuildC(bin, src, "-m"+m); err != nil {
			t.Fatal(err)
		}
		if err := a.Program("/bin/hello"+m, bin); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Program("/bin/sh", "/bin/dash"); err != nil {
		t.Fatal(err)
	}
	init := filepath.Join(dir, "init")
	if err := BuildInit(init); err != nil {
		t.Fatalf("build guestinit: %v", err)
	}
	if err := a.File("/init", init); err != nil {
		t.Fatal(err)
	}
	a.Bytes("/vm-args", []byte("/\n/bin/sh\n-c\n/bin/hello32 $CKPT_VM_OUT && /bin/hello64 $CKPT_VM_OUT && exit 7\n"), 0o644)
	img := filepath.Join(dir, "initramfs.cpio")
	if err := a.WriteFile(img); err != nil {
		t.Fatal(err)
	}
	g := &Guest{Kernel: kernel, Initramfs: img, Timeout: 5 * time.Minute}
	start := time.Now()
	out, err := g.Run(context.Background())
	t.Logf("guest ran for %v", time.Since(start).Round(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if out.ExitCode != 7 {
		t.Errorf("exit code %d, want 7", out.ExitCode)
	}
	want := "hello from 32-bit code\nhello from 64-bit code\n"
	if got := string(out.Output); got != want {
		t.Errorf("output %q, want %q", got, want)
	}
}
