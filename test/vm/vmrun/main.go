// Command vmrun boots the test guest (package vm) with the given host
// files and runs one command in it, printing the guest's console: a way
// to try ia32 programs and ckpt by hand on a machine whose kernel
// refuses them.
//
//	go run ./test/vm/vmrun -f /bin/ckpt=/tmp/ckpt -d testdata/progs/build -- sh -c 'cd /tmp && ...'
//
// The guest has dash as /bin/sh and, when the host has it, busybox with
// its applets in /bin; every added ELF file gets its libraries.
package main

import (
	"context"
	"debug/elf"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/ckpt/ckpt/test/vm"
)

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	var files, dirs list
	flag.Var(&files, "f", "GUEST=HOST: add a host file at a guest path (repeatable)")
	flag.Var(&dirs, "d", "add a host directory's files at the same absolute path (repeatable)")
	timeout := flag.Duration("timeout", 20*time.Minute, "power the guest off after this long")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: vmrun [-f GUEST=HOST]... [-d DIR]... -- COMMAND [ARG]...")
		os.Exit(2)
	}
	if err := run(files, dirs, flag.Args(), *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "vmrun:", err)
		os.Exit(1)
	}
}

func run(files, dirs []string, args []string, timeout time.Duration) error {
	kernel, err := vm.FindKernel()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "vmrun-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	a := vm.NewInitramfs()
	// An ELF file comes with its libraries, any other file alone.
	addELF := func(guest, host string) error {
		if f, err := elf.Open(host); err == nil {
			f.Close()
			return a.Program(guest, host)
		}
		return a.File(guest, host)
	}
	initBin := filepath.Join(tmp, "init")
	if err := vm.BuildInit(initBin); err != nil {
		return fmt.Errorf("build guestinit: %v", err)
	}
	if err := a.File("/init", initBin); err != nil {
		return err
	}
	if err := a.KernelModules(kernel); err != nil {
		return err
	}
	if err := addELF("/bin/sh", "/bin/dash"); err != nil {
		return err
	}
	if bb, err := exec.LookPath("busybox"); err == nil {
		if err := addELF("/bin/busybox", bb); err != nil {
			return err
		}
		out, _ := exec.Command(bb, "--list").Output()
		for _, applet := range strings.Fields(string(out)) {
			if applet != "sh" && applet != "busybox" {
				a.Symlink("/bin/"+applet, "busybox")
			}
		}
	}
	for _, f := range files {
		guest, host, ok := strings.Cut(f, "=")
		if !ok {
			return fmt.Errorf("-f %s: want GUEST=HOST", f)
		}
		if err := addELF(guest, host); err != nil {
			return err
		}
	}
	for _, d := range dirs {
		abs, err := filepath.Abs(d)
		if err != nil {
			return err
		}
		ents, err := os.ReadDir(abs)
		if err != nil {
			return err
		}
		for _, e := range ents {
			if e.Type().IsRegular() {
				if err := addELF(filepath.Join(abs, e.Name()), filepath.Join(abs, e.Name())); err != nil {
					return err
				}
			}
		}
	}
	a.Bytes("/vm-args", []byte("/\n"+strings.Join(args, "\n")+"\n"), 0o644)
	img := filepath.Join(tmp, "initramfs.cpio")
	if err := a.WriteFile(img); err != nil {
		return err
	}
	g := &vm.Guest{Kernel: kernel, Initramfs: img, Timeout: timeout, Console: os.Stdout}
	out, err := g.Run(context.Background())
	if len(out.Output) > 0 {
		fmt.Printf("--- /tmp/vm-out of the guest:\n%s", out.Output)
	}
	if err != nil {
		return err
	}
	if out.ExitCode != 0 {
		return fmt.Errorf("the command exited with status %d", out.ExitCode)
	}
	return nil
}
