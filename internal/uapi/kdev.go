//go:build linux && amd64

package uapi

// MINORBITS is the width of the minor number in the kernel's internal
// dev_t (include/linux/kdev_t.h: MKDEV(ma,mi) = ma<<MINORBITS | mi), the
// encoding fdinfo's "sdev:" fields use; user space's dev_t (stat(2)) is
// encoded differently (unix.Mkdev).
const MINORBITS = 20
