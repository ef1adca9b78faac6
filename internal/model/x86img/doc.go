//go:build linux && amd64

// Package x86img converts the x86 ABI values of arch/x86 to and from CRIU
// image messages: general registers to user_x86_regs_entry, the xsave
// area to user_x86_fpregs_entry, user_desc to user_desc_t (CRIU's
// images/core-x86.proto, go-criu's core-x86 package).
package x86img
