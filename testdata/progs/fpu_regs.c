/* ckpt-test: */
/*
 * fpu_regs: FPU/SIMD register state that lives only in registers while the
 * checkpoint happens.
 *  - x87: four values on the register stack (incl. 0.0 and infinity), a
 *    non-default control word (precision + rounding), status and tag words;
 *  - MXCSR with non-default rounding, FTZ, DAZ and sticky flags;
 *  - xmm0-7 (xmm0-15 in 64-bit mode), and, when the CPU has them, the upper
 *    halves of ymm (AVX) and zmm0-7/0-31 + k0-k7 (AVX-512F).
 * One asm block loads everything, writes READY with a raw system call, spins
 * until a SIGTERM handler sets a flag in memory (a handler is right here:
 * the spin loop is not a blocking system call, and the kernel saves and
 * restores the FPU state around the handler), then stores everything back
 * to memory, where C compares it with the patterns.
 */
#include "ckpt_test.h"

#include <stddef.h>

#ifdef __x86_64__
#define NVEC_SSE 16
#define NVEC_512 32
#else
#define NVEC_SSE 8
#define NVEC_512 8
#endif

struct fpu_area {
	uint8_t vin[32][64];
	uint8_t vout[32][64];
	long double x87in[4];
	long double x87out[4];
	uint8_t env_in[28];
	uint8_t env_out[28];
	uint32_t mx_in, mx_out, mx_def;
	uint16_t fcw_in, fcw_out, fcw_def;
	uint16_t kin[8], kout[8];
	volatile int flag;
	char ready[8];
} __attribute__((aligned(64)));

static struct fpu_area A;

static void on_term(int sig)
{
	(void)sig;
	A.flag = 1;
}

/* ---- asm building blocks ------------------------------------------------ */

#define OPS                                                                        \
	[p] "r"(&A), [vin] "i"(offsetof(struct fpu_area, vin)),                    \
	[vout] "i"(offsetof(struct fpu_area, vout)),                               \
	[x0] "i"(offsetof(struct fpu_area, x87in[0])),                             \
	[x1] "i"(offsetof(struct fpu_area, x87in[1])),                             \
	[x2] "i"(offsetof(struct fpu_area, x87in[2])),                             \
	[x3] "i"(offsetof(struct fpu_area, x87in[3])),                             \
	[y0] "i"(offsetof(struct fpu_area, x87out[0])),                            \
	[y1] "i"(offsetof(struct fpu_area, x87out[1])),                            \
	[y2] "i"(offsetof(struct fpu_area, x87out[2])),                            \
	[y3] "i"(offsetof(struct fpu_area, x87out[3])),                            \
	[env_in] "i"(offsetof(struct fpu_area, env_in)),                           \
	[env_out] "i"(offsetof(struct fpu_area, env_out)),                         \
	[mx_in] "i"(offsetof(struct fpu_area, mx_in)),                             \
	[mx_out] "i"(offsetof(struct fpu_area, mx_out)),                           \
	[mx_def] "i"(offsetof(struct fpu_area, mx_def)),                           \
	[fcw_in] "i"(offsetof(struct fpu_area, fcw_in)),                           \
	[fcw_out] "i"(offsetof(struct fpu_area, fcw_out)),                         \
	[fcw_def] "i"(offsetof(struct fpu_area, fcw_def)),                         \
	[kin] "i"(offsetof(struct fpu_area, kin)),                                 \
	[kout] "i"(offsetof(struct fpu_area, kout)),                               \
	[flag] "i"(offsetof(struct fpu_area, flag)),                               \
	[ready] "i"(offsetof(struct fpu_area, ready))

/* x87 + MXCSR load; the x87 stack is empty on entry (ABI). */
#define PROLOGUE                                                                   \
	"fldcw  %c[fcw_in](%[p])\n\t"                                              \
	"fldt   %c[x0](%[p])\n\t"                                                  \
	"fldt   %c[x1](%[p])\n\t"                                                  \
	"fldt   %c[x2](%[p])\n\t"                                                  \
	"fldt   %c[x3](%[p])\n\t"                                                  \
	"fnstenv %c[env_in](%[p])\n\t" /* masks exceptions: fcw_in has them masked */ \
	"ldmxcsr %c[mx_in](%[p])\n\t"

#ifdef __x86_64__
#define SAY_READY                                                                  \
	"mov    $1, %%eax\n\t"  /* __NR_write */                                   \
	"mov    $1, %%edi\n\t"                                                     \
	"lea    %c[ready](%[p]), %%rsi\n\t"                                        \
	"mov    $6, %%edx\n\t"                                                     \
	"syscall\n\t"
#define SYS_CLOBBERS "rax", "rdi", "rsi", "rdx", "rcx", "r11"
#else
#define SAY_READY                                                                  \
	"mov    $4, %%eax\n\t"  /* __NR_write */                                   \
	"mov    $1, %%ebx\n\t"                                                     \
	"lea    %c[ready](%[p]), %%ecx\n\t"                                        \
	"mov    $6, %%edx\n\t"                                                     \
	"int    $0x80\n\t"
#define SYS_CLOBBERS "eax", "ebx", "ecx", "edx"
#endif

#define SPIN                                                                       \
	"1:\n\t"                                                                   \
	"pause\n\t"                                                                \
	"cmpl   $0, %c[flag](%[p])\n\t"                                            \
	"je     1b\n\t"

#define EPILOGUE                                                                   \
	"stmxcsr %c[mx_out](%[p])\n\t"                                             \
	"ldmxcsr %c[mx_def](%[p])\n\t"                                             \
	"fnstcw %c[fcw_out](%[p])\n\t"                                             \
	"fnstenv %c[env_out](%[p])\n\t"                                            \
	"fstpt  %c[y3](%[p])\n\t"                                                  \
	"fstpt  %c[y2](%[p])\n\t"                                                  \
	"fstpt  %c[y1](%[p])\n\t"                                                  \
	"fstpt  %c[y0](%[p])\n\t"                                                  \
	"fldcw  %c[fcw_def](%[p])\n\t"

#define X87_CLOBBERS "st", "st(1)", "st(2)", "st(3)", "st(4)", "st(5)", "st(6)", "st(7)"

#define R8(M) M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7)
#define R16(M) R8(M) M(8) M(9) M(10) M(11) M(12) M(13) M(14) M(15)
#define R32(M) R16(M) M(16) M(17) M(18) M(19) M(20) M(21) M(22) M(23) \
	M(24) M(25) M(26) M(27) M(28) M(29) M(30) M(31)

#define XLD(n) "movdqu %c[vin]+" #n "*64(%[p]), %%xmm" #n "\n\t"
#define XST(n) "movdqu %%xmm" #n ", %c[vout]+" #n "*64(%[p])\n\t"
#define YLD(n) "vmovdqu %c[vin]+" #n "*64(%[p]), %%ymm" #n "\n\t"
#define YST(n) "vmovdqu %%ymm" #n ", %c[vout]+" #n "*64(%[p])\n\t"
#define ZLD(n) "vmovdqu64 %c[vin]+" #n "*64(%[p]), %%zmm" #n "\n\t"
#define ZST(n) "vmovdqu64 %%zmm" #n ", %c[vout]+" #n "*64(%[p])\n\t"
#define KLD(n) "kmovw %c[kin]+" #n "*2(%[p]), %%k" #n "\n\t"
#define KST(n) "kmovw %%k" #n ", %c[kout]+" #n "*2(%[p])\n\t"

#define XMM_CLOBBERS8 "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7"
#define XMM_CLOBBERS16 XMM_CLOBBERS8, "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", \
	"xmm13", "xmm14", "xmm15"
#define XMM_CLOBBERS32 XMM_CLOBBERS16, "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", \
	"xmm21", "xmm22", "xmm23", "xmm24", "xmm25", "xmm26", "xmm27", "xmm28", \
	"xmm29", "xmm30", "xmm31"
#define K_CLOBBERS "k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7"

#ifdef __x86_64__
#define XLD_ALL R16(XLD)
#define XST_ALL R16(XST)
#define YLD_ALL R16(YLD)
#define YST_ALL R16(YST)
#define ZLD_ALL R32(ZLD)
#define ZST_ALL R32(ZST)
#define XMM_CLOBBERS_SSE XMM_CLOBBERS16
#define XMM_CLOBBERS_512 XMM_CLOBBERS32
#else
#define XLD_ALL R8(XLD)
#define XST_ALL R8(XST)
#define YLD_ALL R8(YLD)
#define YST_ALL R8(YST)
#define ZLD_ALL R8(ZLD)
#define ZST_ALL R8(ZST)
#define XMM_CLOBBERS_SSE XMM_CLOBBERS8
#define XMM_CLOBBERS_512 XMM_CLOBBERS8
#endif

__attribute__((noinline, target("sse2"))) static void run_sse(void)
{
	__asm__ __volatile__(PROLOGUE XLD_ALL SAY_READY SPIN XST_ALL EPILOGUE
			     :
			     : OPS
			     : "memory", "cc", SYS_CLOBBERS, X87_CLOBBERS, XMM_CLOBBERS_SSE);
}

__attribute__((noinline, target("avx"))) static void run_avx(void)
{
	__asm__ __volatile__(PROLOGUE YLD_ALL SAY_READY SPIN YST_ALL EPILOGUE
			     "vzeroupper\n\t"
			     :
			     : OPS
			     : "memory", "cc", SYS_CLOBBERS, X87_CLOBBERS, XMM_CLOBBERS_SSE);
}

__attribute__((noinline, target("avx512f"))) static void run_avx512(void)
{
	__asm__ __volatile__(PROLOGUE ZLD_ALL R8(KLD) SAY_READY SPIN ZST_ALL R8(KST) EPILOGUE
			     "vzeroupper\n\t"
			     :
			     : OPS
			     : "memory", "cc", SYS_CLOBBERS, X87_CLOBBERS, XMM_CLOBBERS_512,
			       K_CLOBBERS);
}

static uint32_t mxcsr_mask(void)
{
	static uint8_t fx[512] __attribute__((aligned(16)));
	uint32_t m;

	__asm__ __volatile__("fxsave %0" : "=m"(fx));
	memcpy(&m, fx + 28, 4);
	return m ? m : 0xffbf;
}

int main(void)
{
	struct sigaction sa;
	const char *mode, *force;
	int nvec, width;
	static const long double x87vals[4] = { 3.14159265358979323846264338327950288L,
						-2.5e300L, 0.0L, __builtin_infl() };

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	CHECK_SYS(sigaction(SIGTERM, &sa, NULL) == 0, "sigaction(SIGTERM)");

	/* Patterns. */
	for (int r = 0; r < 32; r++)
		ckpt_fill(A.vin[r], 64, 100 + (uint32_t)r, 0);
	memset(A.vout, 0xee, sizeof(A.vout));
	for (int i = 0; i < 4; i++) {
		A.x87in[i] = x87vals[i];
		memset(&A.x87out[i], 0xee, sizeof(A.x87out[i]));
	}
	/* Precision: double, rounding: up, all exceptions masked. */
	A.fcw_in = 0x0a7f;
	A.fcw_def = 0x037f;
	/* FTZ, round toward zero, all masked, DAZ, sticky PE and IE flags. */
	A.mx_in = 0xffe1 & mxcsr_mask();
	A.mx_def = 0x1f80;
	for (int k = 0; k < 8; k++) {
		A.kin[k] = (uint16_t)(0x1357 * (k + 1) ^ 0xa5a5);
		A.kout[k] = 0xeeee;
	}
	memcpy(A.ready, "READY\n", 6);

	/* CKPT_FPU_MODE=sse|avx limits the register set (for debugging). */
	force = getenv("CKPT_FPU_MODE");
	/* Deliberately no ckpt_block_term(): SIGTERM runs on_term(). */
	if (__builtin_cpu_supports("avx512f") && !force) {
		mode = "avx512f";
		nvec = NVEC_512;
		width = 64;
		run_avx512();
	} else if (__builtin_cpu_supports("avx") && (!force || strcmp(force, "avx") == 0)) {
		mode = "avx";
		nvec = NVEC_SSE;
		width = 32;
		run_avx();
	} else {
		mode = "sse";
		nvec = NVEC_SSE;
		width = 16;
		run_sse();
	}
	ckpt_log("mode %s: %d vector registers of %d bytes", mode, nvec, width);

	for (int r = 0; r < nvec; r++) {
		for (int b = 0; b < width; b++) {
			if (A.vout[r][b] != A.vin[r][b])
				ckpt_fail("%s: vector register %d byte %d: got 0x%02x want 0x%02x", mode,
					  r, b, A.vout[r][b], A.vin[r][b]);
		}
	}
	if (width == 64) {
		for (int k = 0; k < 8; k++)
			CHECK(A.kout[k] == A.kin[k], "k%d = %#x, want %#x", k, A.kout[k], A.kin[k]);
	}
	for (int i = 0; i < 4; i++)
		CHECK(memcmp(&A.x87out[i], &A.x87in[i], 10) == 0,
		      "x87 st(%d) value changed: %016llx:%04x, want %016llx:%04x", 3 - i,
		      *(unsigned long long *)&A.x87out[i], ((uint16_t *)&A.x87out[i])[4],
		      *(unsigned long long *)&A.x87in[i], ((uint16_t *)&A.x87in[i])[4]);
	CHECK(A.fcw_out == A.fcw_in, "x87 control word %#x, want %#x", A.fcw_out, A.fcw_in);
	CHECK(A.mx_out == A.mx_in, "MXCSR %#x, want %#x", A.mx_out, A.mx_in);
	{
		uint16_t in[3], out[3];

		for (int i = 0; i < 3; i++) {
			memcpy(&in[i], A.env_in + 4 * i, 2);
			memcpy(&out[i], A.env_out + 4 * i, 2);
		}
		CHECK(out[0] == in[0], "x87 env control word %#x, want %#x", out[0], in[0]);
		CHECK(out[1] == in[1], "x87 status word %#x, want %#x", out[1], in[1]);
		CHECK(out[2] == in[2], "x87 tag word %#x, want %#x", out[2], in[2]);
	}
	ckpt_pass();
}
