//go:build linux && amd64

package restore

import (
	"fmt"
	"path/filepath"
	"strconv"

	"github.com/ckpt/ckpt/internal/arch/x86"
)

// restoreFS sets cwd, root and umask, unless the task shares them with
// its parent (CLONE_FS), which set them.
func (r *restorer) restoreFS() error {
	if r.sharedFS {
		return nil
	}
	fs := r.im.FS
	root, err := r.im.RegFile(fs.GetRootId())
	if err != nil {
		return fmt.Errorf("root: %w", err)
	}
	cwd, err := r.im.RegFile(fs.GetCwdId())
	if err != nil {
		return fmt.Errorf("cwd: %w", err)
	}
	rootPath := root.GetReg().GetName()
	cwdPath := cwd.GetReg().GetName()
	if p, err := r.putString(0, cwdPath); err != nil {
		return err
	} else if _, err := r.inj.Syscall(x86.SysChdir, p); err != nil {
		return fmt.Errorf("chdir %s: %w", cwdPath, err)
	}
	if filepath.Clean(rootPath) != "/" {
		if p, err := r.putString(0, rootPath); err != nil {
			return err
		} else if _, err := r.inj.Syscall(x86.SysChroot, p); err != nil {
			return fmt.Errorf("chroot %s: %w", rootPath, err)
		}
	}
	if _, err := r.inj.Syscall(x86.SysUmask, uint64(fs.GetUmask())); err != nil {
		return fmt.Errorf("umask %s: %w", strconv.FormatUint(uint64(fs.GetUmask()), 8), err)
	}
	return nil
}
