package testsupport

import (
	"os"
	"path/filepath"
)

// PagesBytes is the size of the pages images (pages-N.img) in dir.
func PagesBytes(dir string) (int64, error) {
	names, err := filepath.Glob(filepath.Join(dir, "pages-*.img"))
	if err != nil {
		return 0, err
	}
	var n int64
	for _, name := range names {
		fi, err := os.Stat(name)
		if err != nil {
			return 0, err
		}
		n += fi.Size()
	}
	return n, nil
}
