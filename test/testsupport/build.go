package testsupport

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// GoBuild runs the go command with args and without cgo, so that what it
// builds runs in the test guest, which has no host libraries but those
// its initramfs brings. The error holds go's output.
func GoBuild(args ...string) error {
	cmd := exec.Command("go", args...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// BuildC compiles the C program src into out with gcc and flags. The
// error holds gcc's output.
func BuildC(out, src string, flags ...string) error {
	args := append(append([]string{}, flags...), "-o", out, src)
	if b, err := exec.Command("gcc", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("gcc %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	return nil
}
