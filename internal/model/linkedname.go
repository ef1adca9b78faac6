//go:build linux && amd64

package model

import (
	"fmt"
	"unicode/utf8"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/regfile"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/ckpt/ckpt/internal/image"
)

// regLinkedAtField is ckpt's own field of reg_file_entry (a string):
// for a regular file whose path (the entry's name) was unlinked while
// the file kept another link, that other name, where the restore finds
// the file. ckpt writes it instead of a LINKED remap to the other name
// (remap-fpath.img), which CRIU takes for a link of its own and removes
// after its restore: CRIU, which skips the field, finds no file at the
// entry's name and refuses the dump, the other name stays. Dumps with
// --link-remap write CRIU's encoding instead (package fd, linked.go).
const regLinkedAtField protowire.Number = 170300

// RegLinkedAt returns field regLinkedAtField of r: the other name of a
// file whose path was unlinked, "" if r has none. A malformed field is
// an error (image.ErrCorrupt).
func RegLinkedAt(r *regfile.RegFileEntry) (string, error) {
	raw := r.ProtoReflect().GetUnknown()
	var name string
	for len(raw) > 0 {
		n, typ, l := protowire.ConsumeTag(raw)
		if l < 0 {
			return "", fmt.Errorf("%w: reg_file_entry %d: unknown fields: %v", image.ErrCorrupt, r.GetId(), protowire.ParseError(l))
		}
		raw = raw[l:]
		m := protowire.ConsumeFieldValue(n, typ, raw)
		if m < 0 {
			return "", fmt.Errorf("%w: reg_file_entry %d: field %d: %v", image.ErrCorrupt, r.GetId(), n, protowire.ParseError(m))
		}
		if n == regLinkedAtField {
			v, k := protowire.ConsumeBytes(raw)
			if typ != protowire.BytesType || k < 0 || len(v) == 0 || !utf8.Valid(v) {
				return "", fmt.Errorf("%w: reg_file_entry %d: field %d (the unlinked file's other name) is not a name", image.ErrCorrupt, r.GetId(), n)
			}
			name = string(v)
		}
		raw = raw[m:]
	}
	return name, nil
}

// SetRegLinkedAt sets field regLinkedAtField of r to name ("": removes
// it).
func SetRegLinkedAt(r *regfile.RegFileEntry, name string) {
	m := r.ProtoReflect()
	raw := unknownWithout(m.GetUnknown(), regLinkedAtField)
	if name != "" {
		raw = protowire.AppendTag(raw, regLinkedAtField, protowire.BytesType)
		raw = protowire.AppendString(raw, name)
	}
	m.SetUnknown(raw)
}
