//go:build linux && amd64

package image

import "fmt"

// Images of ckpt's own. CRIU has no image for some objects ckpt dumps
// (POSIX message queues); ckpt writes those in CRIU's framing (the
// IMG_COMMON magic, the image's magic, then entries each behind its
// 32-bit size), with a magic of its own that is not in CRIU's table
// (criu/include/magic.h), so that crit and CRIU refuse the file as one
// of an unknown kind instead of reading it as something it is not.
const (
	// MagicPosixMQ is the image of the dump's POSIX message queues
	// (model/posixmq.go has its schema).
	MagicPosixMQ = "CKPT_POSIX_MQ"
)

// ownMagics are the magic numbers of ckpt's own images. The value is
// "CKmq" read as a little-endian number; CRIU's magics are made from
// the coordinates of cities (0x5xxxxxxx), which this is not among.
var ownMagics = map[string]uint32{
	MagicPosixMQ: 0x716d4b43,
}

func init() {
	for name, v := range ownMagics {
		if other, ok := magics.ByValue[uint64(v)]; ok {
			panic(fmt.Sprintf("image: ckpt's magic %s %#x is CRIU's %s", name, v, other))
		}
	}
}

// PosixMQName is the image of the dump's POSIX message queues.
func PosixMQName() string { return "posix-mq.img" }
