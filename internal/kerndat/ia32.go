//go:build linux && amd64

package kerndat

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/internal/ptrace"
)

// ia32Result is the ia32 emulation probe and what follows for the other
// ia32 probes.
type ia32Result struct {
	result Result
	// works is true when a 32-bit program ran.
	works bool
	// why says in a few words why ia32 programs cannot run.
	why string
}

// gate makes an ia32 probe fail, with the reason, when ia32 programs
// cannot run at all: whatever the probe itself found, compat C/R will
// not work then.
func (ia ia32Result) gate(r Result) Result {
	if ia.works {
		return r
	}
	if r.OK {
		r.Detail = fmt.Sprintf("%s; but %s, so it is of no use", r.Detail, ia.why)
	} else {
		r.Detail = fmt.Sprintf("%s; %s", r.Detail, ia.why)
	}
	r.OK = false
	return r
}

// probeIA32 tells whether 32-bit (ia32) programs can run: from the kernel
// config and the command line, and by running a tiny ia32 program.
func probeIA32() ia32Result {
	var facts []string
	cfg, cfgErr := kernelConfig("CONFIG_IA32_EMULATION", "CONFIG_IA32_EMULATION_DEFAULT_DISABLED")
	if cfgErr == nil {
		switch v := cfg["CONFIG_IA32_EMULATION"]; v {
		case "y":
			facts = append(facts, "CONFIG_IA32_EMULATION=y")
			if cfg["CONFIG_IA32_EMULATION_DEFAULT_DISABLED"] == "y" {
				facts = append(facts, "CONFIG_IA32_EMULATION_DEFAULT_DISABLED=y")
			}
		case "":
			facts = append(facts, "CONFIG_IA32_EMULATION is not set")
		default:
			facts = append(facts, "CONFIG_IA32_EMULATION="+v)
		}
	}
	if p := cmdlineParam("ia32_emulation"); p != "" {
		facts = append(facts, "ia32_emulation="+p+" on the kernel command line")
	}

	status, err := runIA32()
	switch {
	case err == nil && status == ia32ExitCode:
		d := fmt.Sprintf("a 32-bit program ran (exit status %d)", status)
		if len(facts) > 0 {
			d += "; " + strings.Join(facts, ", ")
		}
		return ia32Result{result: ok(nameIA32, d, false), works: true}
	case err == nil:
		return ia32Result{
			result: fail(nameIA32, false, "a 32-bit program exited with status %d instead of %d: compat (ia32) checkpoint/restore will not work", status, ia32ExitCode),
			why:    "32-bit programs do not run correctly",
		}
	case errors.Is(err, unix.ENOEXEC):
		d := "32-bit exec refused (ENOEXEC): ia32 emulation is disabled, so compat (ia32) checkpoint/restore will not work"
		if cfg["CONFIG_IA32_EMULATION"] == "" && cfgErr == nil {
			d += "; the kernel is built without CONFIG_IA32_EMULATION"
		} else {
			if len(facts) > 0 {
				d += "; " + strings.Join(facts, ", ")
			}
			line := kernelLogLine(isIA32LogLine)
			if line != "" {
				d += fmt.Sprintf("; kernel log: %q", line)
			}
			if strings.Contains(line, "overridden") {
				d += " (the platform overrides ia32_emulation=, so booting with ia32_emulation=on does not help)"
			} else {
				d += " (boot with ia32_emulation=on)"
			}
		}
		return ia32Result{result: fail(nameIA32, false, "%s", d), why: "ia32 emulation is disabled (32-bit exec gives ENOEXEC)"}
	default:
		return ia32Result{
			result: fail(nameIA32, false, "could not run a 32-bit program: %v", err),
			why:    "32-bit programs could not be run",
		}
	}
}

// runIA32 writes the tiny ia32 program to a temporary file, runs it and
// returns its exit status.
func runIA32() (int, error) {
	dir, err := os.MkdirTemp("", "ckpt-ia32-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "exit42")
	if err := os.WriteFile(path, tinyELF32(), 0o700); err != nil {
		return 0, err
	}
	attr := &syscall.ProcAttr{Env: []string{}, Sys: &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}}
	var pid int
	for try := 0; ; try++ {
		pid, err = syscall.ForkExec(path, []string{path}, attr)
		// Another fork may briefly hold the file open for writing.
		if errors.Is(err, syscall.ETXTBSY) && try < 50 {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		break
	}
	if err != nil {
		return 0, err
	}
	timer := time.AfterFunc(helperTimeout, func() { _ = unix.Kill(pid, unix.SIGKILL) })
	_, ws, err := ptrace.Wait4(pid, 0)
	// The timer may only fire before the child is reaped.
	timedOut := !timer.Stop()
	if err != nil {
		return 0, fmt.Errorf("wait: %w", err)
	}
	if ws.Signaled() {
		if timedOut {
			return 0, fmt.Errorf("the 32-bit program %w after %v", errTimeout, helperTimeout)
		}
		return 0, fmt.Errorf("the 32-bit program was killed by %v", ws.Signal())
	}
	return ws.ExitStatus(), nil
}

// kernelConfig reads the given options from /proc/config.gz; an option
// that is not set is missing from the map.
func kernelConfig(names ...string) (map[string]string, error) {
	f, err := os.Open("/proc/config.gz")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("/proc/config.gz: %w", err)
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	out := map[string]string{}
	sc := bufio.NewScanner(zr)
	for sc.Scan() {
		k, v, found := strings.Cut(sc.Text(), "=")
		if found && want[k] {
			out[k] = v
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("/proc/config.gz: %w", err)
	}
	return out, nil
}

// cmdlineParam returns the value of a kernel command line parameter.
func cmdlineParam(name string) string {
	b, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return ""
	}
	for _, f := range strings.Fields(string(b)) {
		if f == "--" {
			break
		}
		if k, v, _ := strings.Cut(f, "="); k == name {
			return v
		}
	}
	return ""
}

func isIA32LogLine(s string) bool {
	l := strings.ToLower(s)
	return strings.Contains(l, "emulation") && (strings.Contains(l, "32-bit") || strings.Contains(l, "ia-32") || strings.Contains(l, "ia32"))
}

// kernelLogLine returns the first message of the kernel log (/dev/kmsg)
// that match accepts, or "" when there is none or the log is unreadable.
func kernelLogLine(match func(string) bool) string {
	fd, err := unix.Open("/dev/kmsg", unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return ""
	}
	defer unix.Close(fd)
	buf := make([]byte, 8192)
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		n, err := unix.Read(fd, buf)
		if err == unix.EPIPE || err == unix.EINTR {
			continue // a record was overwritten while reading
		}
		if err != nil || n <= 0 {
			return ""
		}
		// "prio,seq,usec,flags;message\n" followed by continuation lines.
		rec := string(buf[:n])
		_, msg, found := strings.Cut(rec, ";")
		if !found {
			continue
		}
		msg, _, _ = strings.Cut(msg, "\n")
		if match(msg) {
			return msg
		}
	}
	return ""
}

// IA32Runs reports whether this kernel runs 32-bit (ia32) programs, and
// if not, why, in a few words.
func IA32Runs() (bool, string) {
	ia := probeIA32()
	return ia.works, ia.why
}
