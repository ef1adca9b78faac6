package vm

import "github.com/ckpt/ckpt/test/testsupport"

// InitPackage is the guest's /init (test/vm/guestinit).
const InitPackage = "github.com/ckpt/ckpt/test/vm/guestinit"

// BuildInit builds the guest's /init into dst: static, as the guest has no
// libraries but those its initramfs brings. It runs go from the current
// directory, which must be inside this module.
func BuildInit(dst string) error {
	return testsupport.GoBuild("build", "-o", dst, InitPackage)
}
