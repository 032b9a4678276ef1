/* Which kernel path this process computes with, chosen once at run time.
 *
 * Paths are ordered: each one needs what the one before it needs and more.
 *   portable  plain C, the reference every other path is tested against
 *   avx2      AVX2, FMA and F16C
 *   avx512    AVX-512 F/BW/DQ/VL with VNNI (8-bit dot products into 32 bits)
 * There is no AMX path: the 8-bit contract scales every 32 products in
 * float (matmul_kernels.h), and that per-unit float work, not the integer
 * products, bounds a tile kernel, so AMX tiles would gain little over VNNI
 * until activations carry one scale per 256.
 * The best path the CPU (and OS) offers is used unless BORG_ISA names a
 * lower one. Naming a path the machine lacks, or an unknown name, is an
 * error that cpu_isa_check reports before any work starts. */
#ifndef BORG_CPU_H
#define BORG_CPU_H

#include <stddef.h>

#include "borg/error.h"

typedef enum { BORG_ISA_PORTABLE, BORG_ISA_AVX2, BORG_ISA_AVX512, BORG_ISA_COUNT } borg_isa;

/* The path in use: BORG_ISA where it names one the machine has, else the
 * best the machine has. */
borg_isa cpu_isa(void);

/* The best path this machine (CPU and OS) offers. */
borg_isa cpu_isa_best(void);

/* 1 when this machine can run path isa. */
int cpu_isa_available(borg_isa isa);

/* "portable", "avx2", "avx512". */
const char *cpu_isa_name(borg_isa isa);

/* Overrides BORG_ISA for this process (tests and benches switch paths
 * within one run); fails with BORG_EINPUT for a path the machine lacks. */
borg_status cpu_set_isa(borg_isa isa, borg_err *err);

/* BORG_EINPUT when BORG_ISA is set to a name that is not a path or to a
 * path this machine cannot run; the message names both. */
borg_status cpu_isa_check(borg_err *err);

/* Bytes of one instance of the last-level cache (an L3 slice a core
 * reaches: a CCD's on AMD), as Linux's sysfs tells; 32 MiB where it does
 * not. CPUID, which sysconf reads, tells a VM's guest the host's total. */
size_t cpu_llc_bytes(void);

#endif
