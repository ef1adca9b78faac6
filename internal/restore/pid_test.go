package restore

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/ckpt/ckpt/internal/ckerr"
)

func TestPidInUse(t *testing.T) {
	err := fmt.Errorf("restore task 1: %w", pidInUse(os.Getpid()))
	if !errors.Is(err, ckerr.ErrPidInUse) || errors.Is(err, ckerr.ErrUnsupported) {
		t.Errorf("errors.Is: %v", err)
	}
	var pe *ckerr.PidInUseError
	if !errors.As(err, &pe) || pe.Pid != os.Getpid() || pe.Holder == "" {
		t.Fatalf("errors.As: %+v", pe)
	}
	if want := fmt.Sprintf("pid %d is in use by ", os.Getpid()); !strings.Contains(err.Error(), want) {
		t.Errorf("message %q lacks %q", err, want)
	}
}
