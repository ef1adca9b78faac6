//go:build !(linux && amd64)

// ckpt checkpoints Linux processes on x86_64 only: it drives tasks with
// ptrace and the x86 register layouts of Linux. Built elsewhere, this
// file stops the build with a message that says so.
package ckpt

const _ = ckpt_builds_only_for_GOOS_linux_GOARCH_amd64
