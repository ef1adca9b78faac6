package testsupport

import (
	"errors"
	"os/exec"

	"golang.org/x/sys/unix"
)

// ExitCode is the exit status in err, the result of exec.Cmd.Wait or Run:
// 0 for nil, the status of an *exec.ExitError (ckpt restore exits with
// 128+N when the restored task was killed by signal N), and -1 for an
// error that is not an exit.
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

// StatusCode is the exit status of a wait status as a shell reports it:
// 128+N for a task killed by signal N.
func StatusCode(ws unix.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}
