// Package vm runs a command in a qemu guest whose whole root file system
// is an initramfs made of host files. The tests use it to run ia32
// programs on machines whose kernel refuses them: the guest boots a
// distribution kernel that has ia32 emulation.
package vm

import (
	"bytes"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Initramfs collects files, directories and symlinks and writes them as
// a "newc" cpio archive (the format the kernel unpacks at boot, see
// Documentation/driver-api/early-userspace/buffer-format.rst).
type Initramfs struct {
	entries map[string]entry
}

type entry struct {
	mode uint32 // S_IF* | permissions
	data []byte // file contents, or the symlink target
	src  string // host file to read at write time (instead of data)
}

// cpio mode bits, from <linux/stat.h>.
const (
	sIFDIR = 0o040000
	sIFREG = 0o100000
	sIFLNK = 0o120000
)

// NewInitramfs returns an empty archive.
func NewInitramfs() *Initramfs { return &Initramfs{entries: map[string]entry{}} }

func clean(p string) string { return strings.TrimPrefix(filepath.Clean("/"+p), "/") }

// resolve follows the archive's own symlinks in the parent directories
// of p, so that a file added under /bin lands in usr/bin when /bin is a
// link to it.
func (a *Initramfs) resolve(p string) string {
	p = clean(p)
	for i := 0; i < 40; i++ {
		parts := strings.Split(p, "/")
		changed := false
		for j := 1; j < len(parts); j++ {
			dir := strings.Join(parts[:j], "/")
			e, ok := a.entries[dir]
			if !ok || e.mode&sIFLNK != sIFLNK {
				continue
			}
			target := string(e.data)
			if !filepath.IsAbs(target) {
				target = filepath.Join("/", filepath.Dir(dir), target)
			}
			p = clean(filepath.Join(append([]string{target}, parts[j:]...)...))
			changed = true
			break
		}
		if !changed {
			return p
		}
	}
	return p
}

// Dir adds a directory and its parents.
func (a *Initramfs) Dir(p string) {
	p = a.resolve(p)
	for p != "" && p != "." {
		if _, ok := a.entries[p]; ok {
			return
		}
		a.entries[p] = entry{mode: sIFDIR | 0o755}
		p = filepath.Dir(p)
		if p == "." {
			return
		}
	}
}

// Bytes adds a file with the given contents.
func (a *Initramfs) Bytes(p string, data []byte, perm uint32) {
	p = a.resolve(p)
	a.Dir(filepath.Dir(p))
	a.entries[p] = entry{mode: sIFREG | perm, data: data}
}

// File adds host file src at path p in the guest.
func (a *Initramfs) File(p, src string) error {
	st, err := os.Stat(src)
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s: not a regular file", src)
	}
	p = a.resolve(p)
	a.Dir(filepath.Dir(p))
	a.entries[p] = entry{mode: sIFREG | uint32(st.Mode().Perm()), src: src}
	return nil
}

// Mirror adds host path p at the same path in the guest, with every
// symlink on the way (/lib -> usr/lib, a library's soname link) kept as
// a symlink, so that the loader finds it where it looks on the host.
func (a *Initramfs) Mirror(p string) error {
	return a.mirror(p, 0)
}

func (a *Initramfs) mirror(p string, depth int) error {
	if depth > 40 {
		return fmt.Errorf("%s: too many symlinks", p)
	}
	p = filepath.Clean(p)
	if !filepath.IsAbs(p) {
		return fmt.Errorf("%s: not absolute", p)
	}
	// Resolve the parent directories first, one component at a time.
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	cur := "/"
	for i, part := range parts {
		next := filepath.Join(cur, part)
		st, err := os.Lstat(next)
		if err != nil {
			return err
		}
		last := i == len(parts)-1
		if st.Mode()&os.ModeSymlink != 0 {
			target, err := os.Readlink(next)
			if err != nil {
				return err
			}
			a.Symlink(next, target)
			if !filepath.IsAbs(target) {
				target = filepath.Join(filepath.Dir(next), target)
			}
			rest := filepath.Join(append([]string{target}, parts[i+1:]...)...)
			return a.mirror(rest, depth+1)
		}
		if last {
			if st.IsDir() {
				a.Dir(next)
				return nil
			}
			return a.File(next, next)
		}
		cur = next
	}
	return nil
}

// Program adds the host ELF program host at path guest, with its
// interpreter and shared libraries (Libraries).
func (a *Initramfs) Program(guest, host string) error {
	if err := a.File(guest, host); err != nil {
		return err
	}
	return a.Libraries(host)
}

// Libraries adds the ELF program's interpreter and every shared library
// it needs, recursively, found in the usual directories for its class.
// It reads the ELF headers instead of running ldd, which would have to
// run the (32-bit) loader.
func (a *Initramfs) Libraries(prog string) error {
	seen := map[string]bool{}
	return a.libraries(prog, seen)
}

var libDirs = map[elf.Class][]string{
	elf.ELFCLASS64: {"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64"},
	elf.ELFCLASS32: {"/usr/lib32", "/lib32", "/lib/i386-linux-gnu", "/usr/lib/i386-linux-gnu"},
}

func (a *Initramfs) libraries(path string, seen map[string]bool) error {
	if seen[path] {
		return nil
	}
	seen[path] = true
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("libraries of %s: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		b, err := io.ReadAll(p.Open())
		if err != nil {
			return fmt.Errorf("interpreter of %s: %w", path, err)
		}
		interp := string(bytes.TrimRight(b, "\x00"))
		if err := a.Mirror(interp); err != nil {
			return fmt.Errorf("interpreter of %s: %w", path, err)
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		return nil // static
	}
	for _, lib := range libs {
		found := ""
		for _, d := range libDirs[f.Class] {
			cand := filepath.Join(d, lib)
			if g, err := elf.Open(cand); err == nil {
				ok := g.Class == f.Class
				g.Close()
				if ok {
					found = cand
					break
				}
			}
		}
		if found == "" {
			return fmt.Errorf("%s needs %s (%v), not found in %v", path, lib, f.Class, libDirs[f.Class])
		}
		if err := a.Mirror(found); err != nil {
			return err
		}
		if err := a.libraries(found, seen); err != nil {
			return err
		}
	}
	return nil
}

// WriteTo writes the archive.
func (a *Initramfs) WriteTo(w io.Writer) (int64, error) {
	names := make([]string, 0, len(a.entries))
	for n := range a.entries {
		names = append(names, n)
	}
	// Parents before children: the kernel creates entries in order.
	sort.Strings(names)
	cw := &countWriter{w: w}
	ino := uint32(1)
	for _, n := range names {
		e := a.entries[n]
		data := e.data
		if e.src != "" {
			b, err := os.ReadFile(e.src)
			if err != nil {
				return cw.n, err
			}
			data = b
		}
		if e.mode&sIFDIR != 0 {
			data = nil
		}
		if err := writeRecord(cw, n, e.mode, ino, data); err != nil {
			return cw.n, err
		}
		ino++
	}
	err := writeRecord(cw, "TRAILER!!!", 0, 0, nil)
	return cw.n, err
}

func writeRecord(w io.Writer, name string, mode, ino uint32, data []byte) error {
	nlink := 1
	if mode&sIFDIR != 0 {
		nlink = 2
	}
	// 13 fields of 8 hex digits after the magic: ino, mode, uid, gid,
	// nlink, mtime, filesize, devmajor, devminor, rdevmajor, rdevminor,
	// namesize (with its NUL), check.
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		ino, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0, len(name)+1, 0)
	var b bytes.Buffer
	b.WriteString(hdr)
	b.WriteString(name)
	b.WriteByte(0)
	pad(&b)
	b.Write(data)
	pad(&b)
	_, err := w.Write(b.Bytes())
	return err
}

// pad aligns to 4 bytes, as newc requires after the name and the data.
func pad(b *bytes.Buffer) {
	for b.Len()%4 != 0 {
		b.WriteByte(0)
	}
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Symlink adds a symbolic link at p pointing to target.
func (a *Initramfs) Symlink(p, target string) {
	p = a.resolve(p)
	a.Dir(filepath.Dir(p))
	a.entries[p] = entry{mode: sIFLNK | 0o777, data: []byte(target)}
}

// Tree adds host directory dir and everything under it at the same path:
// directories and regular files (symlinks and special files are left out).
func (a *Initramfs) Tree(dir string) error {
	return filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			a.Dir(p)
		case d.Type().IsRegular():
			return a.File(p, p)
		}
		return nil
	})
}

// WriteFile writes the archive to a new file at path.
func (a *Initramfs) WriteFile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := a.WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
