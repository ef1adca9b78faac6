//go:build linux && amd64

package procfs

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Mount is one line of /proc/PID/mountinfo (proc(5)).
type Mount struct {
	ID, Parent   int
	Major, Minor int
	// Root is the path inside its filesystem that is mounted; Point is
	// where, relative to the reading task's root. Both unescaped.
	Root, Point string
	// Options are the per-mount options ("rw,nosuid,relatime").
	Options string
	// Shared and Master are the peer group of a shared mount and the
	// group a slave mount receives from (shared:N, master:N); 0 if none.
	// Unbindable marks an unbindable mount.
	Shared, Master int
	Unbindable     bool
	// FSType is the filesystem type ("proc", "tmpfs", "fuse.sshfs").
	FSType string
	// Source is the mount source ("proc", "/dev/vda"), unescaped.
	Source string
	// Super are the superblock options ("rw,size=1024k,mode=755").
	Super string
}

// ReadMountinfo reads /proc/PID/mountinfo.
func ReadMountinfo(pid int) ([]Mount, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", pid))
	if err != nil {
		return nil, err
	}
	return ParseMountinfo(b)
}

// ParseMountinfo parses the contents of /proc/PID/mountinfo.
func ParseMountinfo(data []byte) ([]Mount, error) {
	var out []Mount
	it := lineIter{data: data}
	for {
		line, ok := it.next()
		if !ok {
			return out, nil
		}
		m, err := parseMountLine(line)
		if err != nil {
			return nil, fmt.Errorf("mountinfo line %d: %w", it.n, err)
		}
		out = append(out, m)
	}
}

func parseMountLine(line string) (Mount, error) {
	var m Mount
	f := strings.Split(line, " ")
	sep := -1
	for i := 6; i < len(f); i++ {
		if f[i] == "-" {
			sep = i
			break
		}
	}
	if len(f) < 10 || sep < 0 || len(f) != sep+4 {
		return m, fmt.Errorf("%q: not id parent major:minor root point options [optional...] - type source super", clip(line))
	}
	id, err := strconv.Atoi(f[0])
	if err != nil || id < 0 {
		return m, fmt.Errorf("mount id %q", clip(f[0]))
	}
	parent, err := strconv.Atoi(f[1])
	if err != nil || parent < 0 {
		return m, fmt.Errorf("parent id %q", clip(f[1]))
	}
	maj, min, ok := strings.Cut(f[2], ":")
	m.Major, err = strconv.Atoi(maj)
	if !ok || err != nil || m.Major < 0 {
		return m, fmt.Errorf("device %q", clip(f[2]))
	}
	if m.Minor, err = strconv.Atoi(min); err != nil || m.Minor < 0 {
		return m, fmt.Errorf("device %q", clip(f[2]))
	}
	m.ID, m.Parent = id, parent
	if m.Root, err = unescapeOctal(f[3]); err != nil {
		return m, err
	}
	if m.Point, err = unescapeOctal(f[4]); err != nil {
		return m, err
	}
	m.Options = f[5]
	for _, o := range f[6:sep] {
		k, v, _ := strings.Cut(o, ":")
		switch k {
		case "shared":
			if m.Shared, err = strconv.Atoi(v); err != nil || m.Shared <= 0 {
				return m, fmt.Errorf("optional field %q", clip(o))
			}
		case "master":
			if m.Master, err = strconv.Atoi(v); err != nil || m.Master <= 0 {
				return m, fmt.Errorf("optional field %q", clip(o))
			}
		case "unbindable":
			m.Unbindable = true
		default:
			// propagate_from:N and fields of later kernels: not needed
		}
	}
	m.FSType = f[sep+1]
	if m.Source, err = unescapeOctal(f[sep+2]); err != nil {
		return m, err
	}
	m.Super = f[sep+3]
	return m, nil
}

// unescapeOctal undoes the kernel's \ooo escaping of space, tab,
// newline and backslash in mountinfo paths (seq_path, mangle()).
func unescapeOctal(s string) (string, error) {
	if !strings.Contains(s, "\\") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		if i+3 >= len(s) {
			return "", fmt.Errorf("bad escape in %q", clip(s))
		}
		v, err := strconv.ParseUint(s[i+1:i+4], 8, 8)
		if err != nil {
			return "", fmt.Errorf("bad escape in %q", clip(s))
		}
		b.WriteByte(byte(v))
		i += 3
	}
	return b.String(), nil
}
