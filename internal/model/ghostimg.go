//go:build linux && amd64

package model

import (
	"fmt"
	"os"
	"path/filepath"

	ghostfile "github.com/checkpoint-restore/go-criu/v8/crit/images/ghost-file"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/image"
)

// maxGhostSize is the largest unlinked file Load takes whole into memory
// (a chunked ghost's size may be that of a sparse file far larger than
// its image).
const maxGhostSize = 1 << 30

// readGhost reads ghost-file-ID.img in either of the forms CRIU writes
// (criu/files-reg.c, dump_ghost_file and mkreg_ghost), ckpt writing the
// first:
//
//   - a GhostFileEntry, then the file's contents raw up to the end of the
//     image (CRIU sets no size; ckpt sets size, which must match);
//   - a GhostFileEntry with chunks and size, then pairs of a
//     GhostChunkEntry (len, off) and its len bytes: the data areas of a
//     sparse file, which CRIU writes for files of 3 pages and more;
//   - for a ghost that is not a regular file (a FIFO), the entry alone.
func readGhost(d image.Dir, gid uint32) (*Ghost, error) {
	name := image.GhostFileName(gid)
	st, err := os.Stat(filepath.Join(d.Path, name))
	if err != nil {
		return nil, fmt.Errorf("read image %s: %w", name, err)
	}
	g := &Ghost{Entry: &ghostfile.GhostFileEntry{}}
	const header = 8  // magic words
	var offs []uint64 // each chunk's offset in the file, by entry
	data, err := image.ReadFramed(d, name, image.MagicGhostFile, func(i int, raw []byte) (int, error) {
		if i == 0 {
			if err := proto.Unmarshal(raw, g.Entry); err != nil {
				return 0, fmt.Errorf("%w: %v", image.ErrCorrupt, err)
			}
			e := g.Entry
			rest := st.Size() - header - 4 - int64(len(raw))
			switch {
			case e.GetChunks():
				if e.Size == nil || e.GetSize() > maxGhostSize {
					return 0, fmt.Errorf("%w: chunked ghost file of size %v", image.ErrCorrupt, e.Size)
				}
				g.Data = make([]byte, e.GetSize())
				return 0, nil
			case e.GetMode()&unix.S_IFMT != unix.S_IFREG:
				return 0, nil
			case e.Size != nil && int64(e.GetSize()) != rest:
				return 0, fmt.Errorf("%w: ghost file of %d bytes with %d bytes after its entry", image.ErrCorrupt, e.GetSize(), rest)
			case rest > maxGhostSize:
				return 0, fmt.Errorf("%w: ghost file of %d bytes", image.ErrCorrupt, rest)
			}
			return int(rest), nil
		}
		if !g.Entry.GetChunks() {
			return 0, fmt.Errorf("%w: more than one entry in a ghost file without chunks", image.ErrCorrupt)
		}
		c := &ghostfile.GhostChunkEntry{}
		if err := proto.Unmarshal(raw, c); err != nil {
			return 0, fmt.Errorf("%w: chunk: %v", image.ErrCorrupt, err)
		}
		if c.GetOff() > uint64(len(g.Data)) || c.GetLen() > uint64(len(g.Data))-c.GetOff() {
			return 0, fmt.Errorf("%w: chunk of %d bytes at %d in a file of %d", image.ErrCorrupt, c.GetLen(), c.GetOff(), len(g.Data))
		}
		offs = append(offs, c.GetOff())
		return int(c.GetLen()), nil
	})
	if err != nil {
		return nil, err
	}
	if !g.Entry.GetChunks() {
		g.Data = data[0]
		return g, nil
	}
	for i, off := range offs {
		copy(g.Data[off:], data[i+1])
	}
	return g, nil
}
