package vm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// KernelCacheDir is where scripts/setup.sh unpacks the guest kernel
// (Debian stable's cloud kernel).
const KernelCacheDir = "/var/cache/ckpt-vm"

// FindKernel returns the guest kernel: $CKPT_VM_KERNEL, or the newest
// vmlinuz-* in KernelCacheDir.
func FindKernel() (string, error) {
	if k := os.Getenv("CKPT_VM_KERNEL"); k != "" {
		return k, nil
	}
	ks, _ := filepath.Glob(filepath.Join(KernelCacheDir, "vmlinuz-*"))
	if len(ks) == 0 {
		return "", fmt.Errorf("no guest kernel in %s (run scripts/setup.sh as root, or set CKPT_VM_KERNEL)", KernelCacheDir)
	}
	sort.Strings(ks)
	return ks[len(ks)-1], nil
}

// OtherKernel returns a second guest kernel for restores across kernels,
// $CKPT_VM_OTHER_KERNEL (scripts/fetch-other-kernel.sh fetches one), or
// "" when it is not set.
func OtherKernel() string { return os.Getenv("CKPT_VM_OTHER_KERNEL") }

// Guest is one boot of the initramfs: /init gets Args, one per line, in
// /vm-args.
type Guest struct {
	Kernel    string
	Initramfs string // path of the cpio archive
	MemoryMiB int
	CPUs      int
	Timeout   time.Duration
	// Console receives the guest's console (ttyS0) as it comes.
	Console *os.File
}

// Outcome is what a boot returned.
type Outcome struct {
	ExitCode int    // the exit code /init reported, -1 if it reported none
	Output   []byte // what the guest wrote to its second serial port (ttyS1)
}

// exitRe is the line guestinit prints on the console last.
var exitRe = regexp.MustCompile(`ckpt-vm: exit code (-?\d+)`)

// Run boots the guest and waits for it to power off.
func (g *Guest) Run(ctx context.Context) (Outcome, error) {
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		return Outcome{ExitCode: -1}, fmt.Errorf("qemu-system-x86_64 not found (run scripts/setup.sh as root): %w", err)
	}
	dir, err := os.MkdirTemp("", "ckpt-vm-")
	if err != nil {
		return Outcome{ExitCode: -1}, err
	}
	defer os.RemoveAll(dir)
	consolePath := filepath.Join(dir, "console")
	outPath := filepath.Join(dir, "ttyS1")
	if g.MemoryMiB == 0 {
		g.MemoryMiB = 2048
	}
	if g.CPUs == 0 {
		g.CPUs = 2
	}
	ctx, cancel := context.WithTimeout(ctx, g.Timeout)
	defer cancel()
	// TCG unless asked otherwise: on these machines /dev/kvm, where there
	// is one, is a nested KVM that aborts ("failed to set MSR 0x10a") or
	// stalls the guest before its first console line (kvm-pvm:
	// INTERNAL_ERROR in batch emul); TCG runs the guest everywhere.
	accel := "tcg,thread=multi"
	if os.Getenv("CKPT_VM_KVM") == "1" {
		accel = "kvm"
	}
	cmd := exec.CommandContext(ctx, qemu,
		"-machine", "q35", "-accel", accel,
		// qemu 7.2's TCG does far returns (lret) with a supervisor stack
		// access, which SMAP turns into a kernel oops in the guest.
		"-cpu", "max,-smap",
		"-smp", strconv.Itoa(g.CPUs), "-m", strconv.Itoa(g.MemoryMiB),
		"-nodefaults", "-display", "none", "-no-reboot",
		"-kernel", g.Kernel, "-initrd", g.Initramfs,
		// panic=-1: a guest that panics reboots, and -no-reboot ends qemu.
		"-append", "console=ttyS0 panic=-1 rdinit=/init quiet loglevel=4",
		"-serial", "file:"+consolePath,
		"-serial", "file:"+outPath,
	)
	var qerr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &qerr, &qerr
	if err := cmd.Start(); err != nil {
		return Outcome{ExitCode: -1}, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// Follow the console file while the guest runs.
	var off int64
	follow := func() {
		f, err := os.Open(consolePath)
		if err != nil {
			return
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil || st.Size() <= off {
			return
		}
		buf := make([]byte, st.Size()-off)
		n, _ := f.ReadAt(buf, off)
		off += int64(n)
		if g.Console != nil {
			_, _ = g.Console.Write(bytes.ReplaceAll(buf[:n], []byte("\r\n"), []byte("\n")))
		}
	}
	var werr error
wait:
	for {
		select {
		case werr = <-done:
			break wait
		case <-time.After(500 * time.Millisecond):
			follow()
		}
	}
	follow()
	out := Outcome{ExitCode: -1}
	b, _ := os.ReadFile(outPath)
	out.Output = bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
	console, _ := os.ReadFile(consolePath)
	if m := exitRe.FindAllSubmatch(console, -1); m != nil {
		out.ExitCode, _ = strconv.Atoi(string(m[len(m)-1][1]))
	}
	if ctx.Err() != nil {
		return out, fmt.Errorf("guest did not power off within %v", g.Timeout)
	}
	if werr != nil {
		var ee *exec.ExitError
		if errors.As(werr, &ee) {
			return out, fmt.Errorf("qemu: %v: %s", werr, strings.TrimSpace(qerr.String()))
		}
		return out, werr
	}
	if out.ExitCode == -1 {
		return out, fmt.Errorf("the guest stopped without reporting an exit code (kernel panic or init crash; see its console)")
	}
	return out, nil
}

// sockDiagModules are the kernel modules that answer sock_diag (ckpt
// reads unix sockets' peers and queues through UNIX_DIAG, and names
// other sockets through the others), in an order that loads each after
// what it needs. Debian's kernel has them as modules, which a guest
// without /lib/modules cannot load on demand; scripts/setup.sh keeps
// them next to the kernel, in modules-RELEASE.
var sockDiagModules = []string{"inet_diag", "tcp_diag", "udp_diag", "raw_diag", "unix_diag", "netlink_diag", "af_packet_diag"}

// GuestModulesDir is where the guest finds the modules to load at boot
// (test/vm/guestinit loads every file there, in name order); at the
// root, where no symlink of the archive (/lib -> usr/lib) can hide it.
const GuestModulesDir = "/ckpt-modules"

// KernelModules adds the sock_diag modules kept for kernel (a
// vmlinuz-RELEASE file) to the archive, if scripts/setup.sh kept them.
func (a *Initramfs) KernelModules(kernel string) error {
	rel := strings.TrimPrefix(filepath.Base(kernel), "vmlinuz-")
	dir := filepath.Join(filepath.Dir(kernel), "modules-"+rel)
	for i, m := range sockDiagModules {
		src := filepath.Join(dir, m+".ko")
		if _, err := os.Stat(src); err != nil {
			continue
		}
		if err := a.File(fmt.Sprintf("%s/%02d-%s.ko", GuestModulesDir, i, m), src); err != nil {
			return err
		}
	}
	return nil
}
