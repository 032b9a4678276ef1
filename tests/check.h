/* Minimal assertions for the C unit tests: count, report, carry on. */
#ifndef BORG_TESTS_CHECK_H
#define BORG_TESTS_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_passed, check_failed;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (cond)                                                                    \
            check_passed++;                                                          \
        else {                                                                       \
            check_failed++;                                                          \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                            \
    } while (0)

/* CHECK with a printf-style explanation of what was expected. */
#define CHECKF(cond, ...)                                                 \
    do {                                                                  \
        if (cond)                                                         \
            check_passed++;                                               \
        else {                                                            \
            check_failed++;                                               \
            fprintf(stderr, "%s:%d: check failed: ", __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__);                                 \
            fputc('\n', stderr);                                          \
        }                                                                 \
    } while (0)

#define CHECK_STR(got, want)                                                                            \
    do {                                                                                                \
        const char *g_ = (got), *w_ = (want);                                                           \
        if (g_ && w_ && !strcmp(g_, w_))                                                                \
            check_passed++;                                                                             \
        else {                                                                                          \
            check_failed++;                                                                             \
            fprintf(stderr, "%s:%d: got \"%s\", want \"%s\"\n", __FILE__, __LINE__, g_ ? g_ : "(null)", \
                    w_ ? w_ : "(null)");                                                                \
        }                                                                                               \
    } while (0)

#define CHECK_CONTAINS(got, part)                                                                                   \
    do {                                                                                                            \
        const char *g_ = (got), *p_ = (part);                                                                       \
        if (g_ && strstr(g_, p_))                                                                                   \
            check_passed++;                                                                                         \
        else {                                                                                                      \
            check_failed++;                                                                                         \
            fprintf(stderr, "%s:%d: \"%s\" does not contain \"%s\"\n", __FILE__, __LINE__, g_ ? g_ : "(null)", p_); \
        }                                                                                                           \
    } while (0)

/* Exit status of a test that did not run here (a kernel path this machine
 * lacks): ctest's SKIP_RETURN_CODE, so it is reported as skipped, never
 * as passed. */
#define CHECK_SKIPPED 77

static int check_report(void)
{
    printf("%d passed, %d failed\n", check_passed, check_failed);
    return check_failed ? 1 : 0;
}

#endif
