//go:build linux && amd64

// Package sockbpf reads fields of the kernel's sockets that no system
// call shows, with a BPF iterator over the sockets of ckpt's network
// namespace. Today one field: a UDP socket's IPv4 multicast interface
// index (inet_sock.mc_index), which IP_MULTICAST_IF sets from a struct
// ip_mreqn but getsockopt(IP_MULTICAST_IF) does not give back (it gives
// the address only, net/ipv4/ip_sockglue.c) — and which Go's
// net.ListenMulticastUDP sets, by index alone.
//
// The program is a few instructions built here, with the field offsets
// read from the running kernel's BTF (/sys/kernel/btf/vmlinux), so no
// compiled object and no compiler are needed. It needs a kernel with BTF
// and BPF iterators over UDP sockets (Linux 5.9) and CAP_BPF (or
// CAP_SYS_ADMIN) with CAP_PERFMON for its reads of kernel memory.
//
// It must not keep anything in the kernel: the program, link and
// iterator are closed before each call returns.
package sockbpf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/internal/fault"
)

// BPF instruction encoding (include/uapi/linux/bpf.h, bpf_common.h).
const (
	opLdxDW  = 0x79 // BPF_LDX | BPF_MEM | BPF_DW
	opLdxW   = 0x61 // BPF_LDX | BPF_MEM | BPF_W
	opStxDW  = 0x7b // BPF_STX | BPF_MEM | BPF_DW
	opMovX   = 0xbf // BPF_ALU64 | BPF_MOV | BPF_X
	opMovK   = 0xb7 // BPF_ALU64 | BPF_MOV | BPF_K
	opAddK   = 0x07 // BPF_ALU64 | BPF_ADD | BPF_K
	opJeqK   = 0x15 // BPF_JMP | BPF_JEQ | BPF_K
	opCall   = 0x85 // BPF_JMP | BPF_CALL
	opExit   = 0x95 // BPF_JMP | BPF_EXIT
	regFP    = 10
	seqWrite = 127 // BPF_FUNC_seq_write (__BPF_FUNC_MAPPER)
)

func insn(op uint8, dst, src uint8, off int16, imm int32) []byte {
	b := make([]byte, 8)
	b[0] = op
	b[1] = dst | src<<4
	binary.LittleEndian.PutUint16(b[2:], uint16(off))
	binary.LittleEndian.PutUint32(b[4:], uint32(imm))
	return b
}

// layout is what the program needs of the kernel's types.
type layout struct {
	iterFunc   uint32 // BTF id of bpf_iter_udp, the attach target
	cookieOff  int16  // udp_sock ... sk_common.skc_cookie
	mcIndexOff int16  // udp_sock.inet.mc_index
}

// The context of a UDP iterator program (struct bpf_iter__udp,
// net/ipv4/udp.c): the meta pointer at 0, the socket at 8; and
// struct bpf_iter_meta's seq at 0 (include/linux/bpf.h).
const (
	ctxMetaOff  = 0
	ctxSockOff  = 8
	metaSeqOff  = 0
	recordBytes = 16
)

// program writes, for each UDP socket, a record of two u64: its cookie
// and its mc_index.
func program(l layout) []byte {
	var p []byte
	add := func(b []byte) { p = append(p, b...) }
	add(insn(opMovX, 6, 1, 0, 0))            // r6 = ctx
	add(insn(opLdxDW, 7, 6, ctxSockOff, 0))  // r7 = ctx->udp_sk
	add(insn(opJeqK, 7, 0, 10, 0))           // if r7 == 0 goto out
	add(insn(opLdxDW, 8, 6, ctxMetaOff, 0))  // r8 = ctx->meta
	add(insn(opLdxDW, 1, 7, l.cookieOff, 0)) // r1 = sk->skc_cookie
	add(insn(opStxDW, regFP, 1, -16, 0))     // rec[0] = r1
	add(insn(opLdxW, 1, 7, l.mcIndexOff, 0)) // r1 = inet->mc_index
	add(insn(opStxDW, regFP, 1, -8, 0))      // rec[1] = r1
	add(insn(opLdxDW, 1, 8, metaSeqOff, 0))  // r1 = meta->seq
	add(insn(opMovX, 2, regFP, 0, 0))        // r2 = fp
	add(insn(opAddK, 2, 0, 0, -16))          // r2 = &rec
	add(insn(opMovK, 3, 0, 0, recordBytes))  // r3 = 16
	add(insn(opCall, 0, 0, 0, seqWrite))     // bpf_seq_write(seq, &rec, 16)
	add(insn(opMovK, 0, 0, 0, 0))            // out: r0 = 0
	add(insn(opExit, 0, 0, 0, 0))            // exit
	return p
}

var (
	layoutOnce sync.Once
	layoutVal  layout
	layoutErr  error
)

// kernelLayout reads the offsets from the running kernel's BTF, once.
func kernelLayout() (layout, error) {
	layoutOnce.Do(func() {
		b, err := os.ReadFile("/sys/kernel/btf/vmlinux")
		if err != nil {
			layoutErr = fmt.Errorf("kernel BTF: %w", err)
			return
		}
		layoutVal, layoutErr = findLayout(b)
	})
	return layoutVal, layoutErr
}

func findLayout(b []byte) (layout, error) {
	s, err := parseBTF(b)
	if err != nil {
		return layout{}, err
	}
	fn, err1 := s.find(kindFunc, "bpf_iter_udp")
	udp, err2 := s.find(kindStruct, "udp_sock")
	if err := errors.Join(err1, err2); err != nil {
		return layout{}, err
	}
	cookie, err1 := s.path(udp, "inet", "sk", "__sk_common", "skc_cookie")
	mc, err2 := s.path(udp, "inet", "mc_index")
	if err := errors.Join(err1, err2); err != nil {
		return layout{}, err
	}
	if cookie > 1<<15-8 || mc > 1<<15-4 {
		return layout{}, fmt.Errorf("BTF: offsets %d, %d too large for an instruction", cookie, mc)
	}
	return layout{iterFunc: fn, cookieOff: int16(cookie), mcIndexOff: int16(mc)}, nil
}

func bpf(cmd int, attr []byte) (int, error) {
	r, _, errno := unix.Syscall(unix.SYS_BPF, uintptr(cmd), uintptr(unsafe.Pointer(&attr[0])), uintptr(len(attr)))
	runtime.KeepAlive(attr)
	if errno != 0 {
		return -1, errno
	}
	return int(r), nil
}

// UDPMcastIndex returns inet_sock.mc_index of every UDP socket of ckpt's
// network namespace that has a cookie (SO_COOKIE gives a socket one),
// by cookie. The iterator walks the kernel's UDP hash tables, which hold
// bound sockets only: one never bound (nor autobound by a send) is not
// listed.
func UDPMcastIndex() (map[uint64]uint32, error) {
	if fault.On(fault.NoSockBPF) {
		return nil, fmt.Errorf("BPF iterators: off (%s=%s)", fault.Env, fault.NoSockBPF)
	}
	l, err := kernelLayout()
	if err != nil {
		return nil, err
	}
	prog := program(l)
	license := []byte("GPL\x00")
	logBuf := make([]byte, 1<<16)
	// union bpf_attr for BPF_PROG_LOAD (include/uapi/linux/bpf.h).
	attr := make([]byte, 128)
	le := binary.LittleEndian
	le.PutUint32(attr[0:], unix.BPF_PROG_TYPE_TRACING)
	le.PutUint32(attr[4:], uint32(len(prog)/8))
	le.PutUint64(attr[8:], uint64(uintptr(unsafe.Pointer(&prog[0]))))
	le.PutUint64(attr[16:], uint64(uintptr(unsafe.Pointer(&license[0]))))
	le.PutUint32(attr[24:], 1) // log_level
	le.PutUint32(attr[28:], uint32(len(logBuf)))
	le.PutUint64(attr[32:], uint64(uintptr(unsafe.Pointer(&logBuf[0]))))
	copy(attr[48:64], "ckpt_udp_mcidx")
	le.PutUint32(attr[68:], unix.BPF_TRACE_ITER) // expected_attach_type
	le.PutUint32(attr[108:], l.iterFunc)         // attach_btf_id
	progFd, err := bpf(unix.BPF_PROG_LOAD, attr)
	runtime.KeepAlive(prog)
	runtime.KeepAlive(license)
	if err != nil {
		msg := string(logBuf[:max(0, indexZero(logBuf))])
		if len(msg) > 400 {
			msg = msg[len(msg)-400:]
		}
		return nil, fmt.Errorf("load the BPF iterator over UDP sockets: %w (verifier: %q)", err, msg)
	}
	defer unix.Close(progFd)
	// BPF_LINK_CREATE: prog_fd, target_fd 0, attach_type.
	attr = make([]byte, 64)
	le.PutUint32(attr[0:], uint32(progFd))
	le.PutUint32(attr[8:], unix.BPF_TRACE_ITER)
	linkFd, err := bpf(unix.BPF_LINK_CREATE, attr)
	if err != nil {
		return nil, fmt.Errorf("attach the BPF iterator over UDP sockets: %w", err)
	}
	defer unix.Close(linkFd)
	// BPF_ITER_CREATE: link_fd.
	attr = make([]byte, 16)
	le.PutUint32(attr[0:], uint32(linkFd))
	iterFd, err := bpf(unix.BPF_ITER_CREATE, attr)
	if err != nil {
		return nil, fmt.Errorf("open the BPF iterator over UDP sockets: %w", err)
	}
	f := os.NewFile(uintptr(iterFd), "bpf_iter_udp")
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("read the BPF iterator over UDP sockets: %w", err)
	}
	return parseRecords(data)
}

// parseRecords reads the program's records.
func parseRecords(data []byte) (map[uint64]uint32, error) {
	if len(data)%recordBytes != 0 {
		return nil, fmt.Errorf("BPF iterator gave %d bytes, not records of %d", len(data), recordBytes)
	}
	out := map[uint64]uint32{}
	for i := 0; i < len(data); i += recordBytes {
		if c := binary.LittleEndian.Uint64(data[i:]); c != 0 {
			out[c] = uint32(binary.LittleEndian.Uint64(data[i+8:]))
		}
	}
	return out, nil
}

func indexZero(b []byte) int {
	for i, c := range b {
		if c == 0 {
			return i
		}
	}
	return len(b)
}
