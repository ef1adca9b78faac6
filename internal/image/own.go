//go:build linux && amd64

package image

// Images of ckpt's own: objects CRIU has no image for, which ckpt keeps
// in the format of one of CRIU's images (its magic, entries and data),
// so that crit shows them, under a file name CRIU does not open.

// PosixMQName is the image of the dump's POSIX message queues, in the
// format of CRIU's SysV message-queue image (MagicIpcMsg;
// model/posixmq.go has the mapping). CRIU reads SysV queues from
// ipcns-msg-ID.img only, never from this name.
func PosixMQName() string { return "posix-mq.img" }
