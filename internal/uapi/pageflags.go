//go:build linux && amd64

package uapi

// KPF_ZERO_PAGE is the bit of /proc/kpageflags set for the shared zero
// page (include/uapi/linux/kernel-page-flags.h).
const KPF_ZERO_PAGE = 24
