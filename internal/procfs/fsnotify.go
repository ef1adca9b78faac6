//go:build linux && amd64

package procfs

import (
	"encoding/hex"
	"fmt"
	"strings"
)

// InotifyWatch is one watch of an inotify instance, from an
// "inotify wd:" line of its fdinfo (fs/notify/fdinfo.c,
// inotify_fdinfo and show_mark_fhandle):
//
//	inotify wd:%x ino:%lx sdev:%x mask:%x ignored_mask:%x fhandle-bytes:%x fhandle-type:%x f_handle:%02x...
//
// All numbers are hex. The file handle fields are missing on kernels
// built without CONFIG_EXPORTFS.
type InotifyWatch struct {
	Wd          int32
	Ino         uint64
	Sdev        uint32 // the kernel's dev_t: major<<20 | minor
	Mask        uint32
	IgnoredMask uint32
	HandleType  int32
	Handle      []byte // nil without a file handle
}

// ParseInotify reads the watches of a parsed inotify fdinfo, in the
// kernel's order.
func ParseInotify(fi *FdInfo) ([]InotifyWatch, error) {
	raw, ok := fi.Extra["inotify wd"]
	if !ok {
		return nil, nil
	}
	var out []InotifyWatch
	for _, l := range strings.Split(raw, "\n") {
		fs := strings.Fields(l)
		if len(fs) == 0 {
			return nil, fmt.Errorf("fdinfo: empty inotify line")
		}
		// The first field is the wd itself: splitKV took "inotify wd:".
		v, err := parseUint("inotify wd", fs[0], 16, 31)
		if err != nil {
			return nil, fmt.Errorf("fdinfo: %w", err)
		}
		w := InotifyWatch{Wd: int32(v)}
		seen := map[string]bool{}
		nbytes := -1
		for _, f := range fs[1:] {
			k, val, ok := strings.Cut(f, ":")
			if !ok {
				return nil, fmt.Errorf("fdinfo: inotify wd %x: field %q without ':'", w.Wd, clip(f))
			}
			if seen[k] {
				return nil, fmt.Errorf("fdinfo: inotify wd %x: duplicate %q", w.Wd, k)
			}
			seen[k] = true
			var n uint64
			switch k {
			case "ino":
				w.Ino, err = parseUint(k, val, 16, 64)
			case "sdev":
				n, err = parseUint(k, val, 16, 32)
				w.Sdev = uint32(n)
			case "mask":
				n, err = parseUint(k, val, 16, 32)
				w.Mask = uint32(n)
			case "ignored_mask":
				n, err = parseUint(k, val, 16, 32)
				w.IgnoredMask = uint32(n)
			case "fhandle-bytes":
				n, err = parseUint(k, val, 16, 16)
				nbytes = int(n)
			case "fhandle-type":
				n, err = parseUint(k, val, 16, 32)
				w.HandleType = int32(n)
			case "f_handle":
				w.Handle, err = hex.DecodeString(val)
				if err == nil && w.Handle == nil {
					w.Handle = []byte{}
				}
			}
			if err != nil {
				return nil, fmt.Errorf("fdinfo: inotify wd %x: %s: %v", w.Wd, k, err)
			}
		}
		for _, k := range []string{"ino", "sdev", "mask"} {
			if !seen[k] {
				return nil, fmt.Errorf("fdinfo: inotify wd %x: no %s", w.Wd, k)
			}
		}
		if seen["f_handle"] && len(w.Handle) != nbytes {
			return nil, fmt.Errorf("fdinfo: inotify wd %x: handle of %d bytes, fhandle-bytes says %d", w.Wd, len(w.Handle), nbytes)
		}
		out = append(out, w)
	}
	return out, nil
}
