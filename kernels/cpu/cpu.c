/* The kernel path of this process (borg/cpu.h): what the CPU reports and
 * what BORG_ISA asks for, decided once and read by every kernel family. */
#include "borg/cpu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

static const char *const names[BORG_ISA_COUNT] = {"portable", "avx2", "avx512"};

const char *cpu_isa_name(borg_isa isa) { return isa >= 0 && isa < BORG_ISA_COUNT ? names[isa] : "unknown"; }

#if defined(__x86_64__) || defined(__i386__)
/* CPUID leaf 1, ECX bit 29: read directly, as clang's
 * __builtin_cpu_supports has no name for it. */
static int has_f16c(void)
{
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
}
#endif

static borg_isa probe(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (!(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && has_f16c()))
        return BORG_ISA_PORTABLE;
    if (!(__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
          __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
          __builtin_cpu_supports("avx512vnni")))
        return BORG_ISA_AVX2;
    return BORG_ISA_AVX512;
#else
    return BORG_ISA_PORTABLE;
#endif
}

static int best = -1, chosen = -1;

borg_isa cpu_isa_best(void)
{
    if (best < 0)
        best = probe();
    return (borg_isa)best;
}

int cpu_isa_available(borg_isa isa) { return isa >= 0 && isa <= cpu_isa_best(); }

/* BORG_ISA's path, or -1 where it is unset or names none. */
static int asked(void)
{
    const char *v = getenv("BORG_ISA");
    if (!v || !*v)
        return -1;
    for (int i = 0; i < BORG_ISA_COUNT; i++)
        if (!strcmp(v, names[i]))
            return i;
    return -1;
}

borg_isa cpu_isa(void)
{
    if (chosen < 0) {
        const int a = asked();
        chosen = a >= 0 && cpu_isa_available((borg_isa)a) ? a : (int)cpu_isa_best();
    }
    return (borg_isa)chosen;
}

borg_status cpu_set_isa(borg_isa isa, borg_err *err)
{
    if (!cpu_isa_available(isa))
        return borg_fail(err, BORG_EINPUT, "kernel path %s: this machine offers up to %s", cpu_isa_name(isa),
                         cpu_isa_name(cpu_isa_best()));
    chosen = isa;
    return BORG_OK;
}

borg_status cpu_isa_check(borg_err *err)
{
    const char *v = getenv("BORG_ISA");
    if (!v || !*v)
        return BORG_OK;
    const int a = asked();
    if (a < 0)
        return borg_fail(err, BORG_EINPUT, "BORG_ISA=%s: not a kernel path (portable, avx2, avx512)", v);
    if (!cpu_isa_available((borg_isa)a))
        return borg_fail(err, BORG_EINPUT, "BORG_ISA=%s: this machine offers up to %s", v,
                         cpu_isa_name(cpu_isa_best()));
    return BORG_OK;
}

/* index<i>'s size in bytes at level *level, or 0 where sysfs lacks it. */
static size_t cache_index(int i, int *level)
{
    char path[96], text[32];
    size_t bytes = 0;
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/level", i);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    const int got_level = fscanf(f, "%d", level) == 1;
    fclose(f);
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", i);
    if (!got_level || !(f = fopen(path, "r")))
        return 0;
    if (fgets(text, sizeof text, f)) {
        char *end;
        const unsigned long long n = strtoull(text, &end, 10);
        const int shift = *end == 'K' ? 10 : *end == 'M' ? 20 : *end == 'G' ? 30 : 0;
        bytes = end > text ? (size_t)(n << shift) : 0;
    }
    fclose(f);
    return bytes;
}

static size_t llc = 0;

size_t cpu_llc_bytes(void)
{
    if (llc)
        return llc;
    int top = 0;
    size_t bytes = 0;
    for (int i = 0; i < 8; i++) {
        int level = 0;
        const size_t b = cache_index(i, &level);
        if (b && level >= top)
            top = level, bytes = b;
    }
    llc = bytes ? bytes : (size_t)32 << 20;
    return llc;
}
