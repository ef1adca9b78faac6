// Command guestinit is /init of the test guest (package vm): it mounts
// the pseudo file systems, runs the command given in /vm-args, reaps
// every orphan meanwhile, copies /tmp/vm-out to the second serial port,
// prints the command's exit code on the console and powers off.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/test/testsupport"
)

// outFile is what the command leaves for the host (see vm.Outcome.Output).
const outFile = "/tmp/vm-out"

func main() {
	code := run()
	fmt.Printf("ckpt-vm: exit code %d\n", code)
	unix.Sync()
	_ = unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	select {}
}

// modulesDir holds kernel modules to load at boot, in name order
// (vm.GuestModulesDir: the sock_diag modules of a modular kernel).
const modulesDir = "/ckpt-modules"

func loadModules() {
	ents, _ := os.ReadDir(modulesDir)
	for _, e := range ents {
		f, err := os.Open(modulesDir + "/" + e.Name())
		if err != nil {
			continue
		}
		if err := unix.FinitModule(int(f.Fd()), "", 0); err != nil && err != unix.EEXIST {
			fmt.Fprintf(os.Stderr, "ckpt-vm: load module %s: %v\n", e.Name(), err)
		}
		f.Close()
	}
}

// upLoopback brings up the loopback interface, which test programs use
// for TCP and UDP sockets (the kernel starts with it down).
func upLoopback() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP | unix.IFF_RUNNING)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}

func run() int {
	mounts := []struct{ src, dst, fs, data string }{
		{"proc", "/proc", "proc", ""},
		{"sysfs", "/sys", "sysfs", ""},
		{"devtmpfs", "/dev", "devtmpfs", ""},
		{"devpts", "/dev/pts", "devpts", "ptmxmode=0666"},
		{"tmpfs", "/dev/shm", "tmpfs", ""},
		{"tmpfs", "/run", "tmpfs", ""},
	}
	for _, m := range mounts {
		_ = os.MkdirAll(m.dst, 0o755)
		if err := unix.Mount(m.src, m.dst, m.fs, 0, m.data); err != nil {
			fmt.Fprintf(os.Stderr, "ckpt-vm: mount %s: %v\n", m.dst, err)
		}
	}
	// /tmp stays on the root file system (itself in memory): the
	// initramfs may bring files there.
	_ = os.MkdirAll("/tmp", 0o777)
	_ = os.Chmod("/tmp", 0o777|os.ModeSticky)
	// The kernel found no /dev/console in the archive: take the console
	// as stdio now that devtmpfs is there.
	if c, err := os.OpenFile("/dev/console", os.O_RDWR, 0); err == nil {
		for fd := 0; fd <= 2; fd++ {
			_ = unix.Dup2(int(c.Fd()), fd)
		}
		c.Close()
	}
	_ = unix.Sethostname([]byte("ckpt-guest"))
	loadModules()
	if err := upLoopback(); err != nil {
		fmt.Fprintf(os.Stderr, "ckpt-vm: bring up lo: %v\n", err)
	}
	b, err := os.ReadFile("/vm-args")
	if err != nil {
		fmt.Println("ckpt-vm:", err)
		return 125
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) < 2 {
		fmt.Println("ckpt-vm: /vm-args needs a directory and a command")
		return 125
	}
	var uts unix.Utsname
	_ = unix.Uname(&uts)
	fmt.Printf("ckpt-vm: kernel %s, running %q in %s\n", unix.ByteSliceToString(uts.Release[:]), lines[1:], lines[0])
	env := []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/root", "TMPDIR=/tmp", "CKPT_VM_OUT=" + outFile}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		_ = os.Setenv(k, v) // for the PATH lookup below
	}
	cmd := exec.Command(lines[1], lines[2:]...)
	cmd.Dir = lines[0]
	cmd.Env = env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		fmt.Println("ckpt-vm:", err)
		return 126
	}
	code := 0
	// PID 1 reaps every orphan, and notes the command's own status.
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			break
		}
		if pid == cmd.Process.Pid {
			code = testsupport.StatusCode(ws)
			break
		}
	}
	if out, err := os.ReadFile(outFile); err == nil {
		if tty, err := os.OpenFile("/dev/ttyS1", os.O_WRONLY|syscall.O_NOCTTY, 0); err == nil {
			_, _ = tty.Write(out)
			tty.Close()
		}
	}
	return code
}
