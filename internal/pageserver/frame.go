// Package pageserver is ckpt's page server: a small framed protocol over
// TCP that carries the images of a dump to another machine (Client, used
// by the dump), and the server that writes them into a directory there
// (Serve, behind `ckpt page-server`).
//
// The protocol is ckpt's own, not CRIU's page-xfer (which sends pagemap
// entries, PS_IOV_ADD, and lets the server rebuild the pagemap): here the
// dump sends whole image files by name, the pages images streamed as the
// frozen task hands its pages over, the small images once they are
// written. The server keeps them aside until the dump says it is done,
// then syncs them and moves them into its directory, and only then
// answers; a connection that ends before leaves nothing in the directory.
//
// A frame is a fixed header (Header, HeaderSize bytes, little-endian)
// followed by Len bytes of payload:
//
//	magic  [4]byte "CKPS"
//	op     uint16  Op
//	flags  uint16  0
//	handle uint32  the file a frame is about (OpOpen, OpData, OpClose)
//	len    uint32  payload bytes after the header
//	offset uint64  OpHello: the version; OpData: where the payload goes
//	               in the file; OpClose: the file's final size
package pageserver

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Op is the kind of a frame.
type Op uint16

const (
	// OpHello opens a connection, both ways: Offset is the version.
	OpHello Op = 1 + iota
	// OpOpen starts file Handle, whose name is the payload.
	OpOpen
	// OpData writes the payload into file Handle at Offset.
	OpData
	// OpClose ends file Handle, whose size is Offset.
	OpClose
	// OpFinish says the dump is done: the server syncs the files, moves
	// them into its directory and answers OpDone (or OpError).
	OpFinish
	// OpDone is the server's answer to OpFinish: every file is on disk.
	OpDone
	// OpError carries the server's error message as payload; the
	// connection ends after it.
	OpError
	opEnd
)

var opNames = [...]string{OpHello: "hello", OpOpen: "open", OpData: "data", OpClose: "close", OpFinish: "finish", OpDone: "done", OpError: "error"}

func (o Op) String() string {
	if o > 0 && o < opEnd {
		return opNames[o]
	}
	return fmt.Sprintf("op %d", uint16(o))
}

const (
	// HeaderSize is the size of a frame header.
	HeaderSize = 24
	// Version is the protocol version a hello carries.
	Version = 1
	// MaxName is the longest file name an OpOpen carries (NAME_MAX).
	MaxName = 255
	// MaxData is the most payload one OpData carries.
	MaxData = 64 << 20
	// MaxMessage is the longest error message.
	MaxMessage = 4096
	// MaxFileSize bounds an offset plus length (a sanity limit against
	// a corrupt header, far above any pages image).
	MaxFileSize = 1 << 46
)

var magic = [4]byte{'C', 'K', 'P', 'S'}

// ErrProtocol marks a frame that breaks the protocol (bad magic, unknown
// op, a length out of bounds, a frame out of place).
var ErrProtocol = errors.New("page server protocol")

// Header is a frame header.
type Header struct {
	Op     Op
	Handle uint32
	Len    uint32
	Offset uint64
}

// Marshal encodes h.
func (h Header) Marshal() [HeaderSize]byte {
	var b [HeaderSize]byte
	copy(b[:4], magic[:])
	binary.LittleEndian.PutUint16(b[4:], uint16(h.Op))
	binary.LittleEndian.PutUint32(b[8:], h.Handle)
	binary.LittleEndian.PutUint32(b[12:], h.Len)
	binary.LittleEndian.PutUint64(b[16:], h.Offset)
	return b
}

// ParseHeader decodes and checks a header: its magic, its op, and its
// lengths against the op's limits.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, fmt.Errorf("%w: header of %d bytes, want %d", ErrProtocol, len(b), HeaderSize)
	}
	if [4]byte(b[:4]) != magic {
		return Header{}, fmt.Errorf("%w: bad magic %q (not a ckpt page server?)", ErrProtocol, b[:4])
	}
	h := Header{
		Op:     Op(binary.LittleEndian.Uint16(b[4:])),
		Handle: binary.LittleEndian.Uint32(b[8:]),
		Len:    binary.LittleEndian.Uint32(b[12:]),
		Offset: binary.LittleEndian.Uint64(b[16:]),
	}
	if flags := binary.LittleEndian.Uint16(b[6:]); flags != 0 {
		return Header{}, fmt.Errorf("%w: %v frame with unknown flags %#x", ErrProtocol, h.Op, flags)
	}
	var max uint32
	switch h.Op {
	case OpHello, OpClose, OpFinish, OpDone:
		max = 0
	case OpOpen:
		max = MaxName
	case OpData:
		max = MaxData
	case OpError:
		max = MaxMessage
	default:
		return Header{}, fmt.Errorf("%w: unknown %v", ErrProtocol, h.Op)
	}
	if h.Len > max {
		return Header{}, fmt.Errorf("%w: %v frame of %d bytes, at most %d", ErrProtocol, h.Op, h.Len, max)
	}
	if h.Op == OpOpen && h.Len == 0 {
		return Header{}, fmt.Errorf("%w: open frame without a name", ErrProtocol)
	}
	if (h.Op == OpData || h.Op == OpClose) && (h.Offset > MaxFileSize || h.Offset+uint64(h.Len) > MaxFileSize) {
		return Header{}, fmt.Errorf("%w: %v frame at offset %d beyond %d", ErrProtocol, h.Op, h.Offset, uint64(MaxFileSize))
	}
	return h, nil
}

// ReadHeader reads and checks one header from r. A stream that ends
// before it is io.EOF if nothing of it came, else io.ErrUnexpectedEOF.
func ReadHeader(r io.Reader) (Header, error) {
	var b [HeaderSize]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return Header{}, err
	}
	return ParseHeader(b[:])
}

// ReadPayload reads the h.Len bytes of payload of a frame that carries
// a name or a message (not OpData, whose payload goes to a file).
func ReadPayload(r io.Reader, h Header) ([]byte, error) {
	if h.Op == OpData {
		return nil, fmt.Errorf("%w: data payload read as a message", ErrProtocol)
	}
	b := make([]byte, h.Len)
	if _, err := io.ReadFull(r, b); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("%v frame payload: %w", h.Op, err)
	}
	return b, nil
}

// AppendFrame appends a frame with a small payload (a name, a message,
// or data) to dst.
func AppendFrame(dst []byte, h Header, payload []byte) []byte {
	h.Len = uint32(len(payload))
	b := h.Marshal()
	dst = append(dst, b[:]...)
	return append(dst, payload...)
}

// CheckName checks a file name an OpOpen carries: one plain name in the
// directory, never a path, nor hidden (the server's own staging
// directory starts with a dot).
func CheckName(name string) error {
	switch {
	case name == "" || len(name) > MaxName:
		return fmt.Errorf("%w: file name of %d bytes", ErrProtocol, len(name))
	case strings.ContainsAny(name, "/\x00"):
		return fmt.Errorf("%w: file name %q is not a plain name", ErrProtocol, name)
	case name[0] == '.':
		return fmt.Errorf("%w: file name %q starts with a dot", ErrProtocol, name)
	}
	return nil
}
