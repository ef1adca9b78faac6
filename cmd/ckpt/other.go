//go:build !(linux && amd64)

// ckpt runs on Linux x86_64 only; built elsewhere, this file stops the
// build with a message that says so.
package main

const _ = ckpt_builds_only_for_GOOS_linux_GOARCH_amd64
