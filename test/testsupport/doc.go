// Package testsupport holds what the end-to-end suite (test/e2e), the test
// guest (test/vm) and the benchmark (test/bench) share about the processes
// they start: waiting for a program's READY line and for ckpt's pidfile,
// waiting for a dumped task's PID to be free, listing, describing, killing
// and reaping the children of this process (a child subreaper), turning
// wait results into exit codes, and building Go and C test programs.
//
// It knows nothing of images or of ckpt's engine, and it does not import
// package testing, so that commands (test/vm/vmrun, the guest's init) can
// use it too; callers turn its errors into test failures.
package testsupport
