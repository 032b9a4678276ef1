#include "borg/idset.h"

#include <stdint.h>
#include <stdlib.h>

typedef struct {
    uint64_t hash; /* 0: empty (a real hash of 0 is stored as 1) */
    long line;
} entry;

struct borg_idset {
    entry *e;
    size_t cap, n; /* cap a power of two, kept at most half full */
};

static uint64_t hash_id(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    /* splitmix64's finalizer: FNV alone leaves the low bits, which pick the slot, poorly mixed */
    h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
    h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
    h ^= h >> 31;
    return h ? h : 1;
}

borg_status idset_create(borg_idset **out, borg_err *err)
{
    borg_idset *s = calloc(1, sizeof *s);
    if (!s || !(s->e = calloc(1024, sizeof *s->e))) {
        free(s);
        return borg_fail(err, BORG_ENOMEM, "out of memory for the job ids");
    }
    s->cap = 1024;
    *out = s;
    return BORG_OK;
}

void idset_free(borg_idset *s)
{
    if (s) {
        free(s->e);
        free(s);
    }
}

static entry *slot(entry *e, size_t cap, uint64_t h)
{
    size_t i = (size_t)h & (cap - 1);
    while (e[i].hash && e[i].hash != h)
        i = (i + 1) & (cap - 1);
    return &e[i];
}

static borg_status grow(borg_idset *s, borg_err *err)
{
    size_t cap = s->cap * 2;
    entry *e = calloc(cap, sizeof *e);
    if (!e)
        return borg_fail(err, BORG_ENOMEM, "out of memory for %zu job ids", s->n);
    for (size_t i = 0; i < s->cap; i++)
        if (s->e[i].hash)
            *slot(e, cap, s->e[i].hash) = s->e[i];
    free(s->e);
    s->e = e;
    s->cap = cap;
    return BORG_OK;
}

borg_status idset_add(borg_idset *s, const char *id, long line, int *dup, long *first_line, borg_err *err)
{
    uint64_t h = hash_id(id ? id : "");
    entry *e = slot(s->e, s->cap, h);
    *dup = e->hash != 0;
    if (*dup) {
        *first_line = e->line;
        return BORG_OK;
    }
    if (2 * (s->n + 1) > s->cap) {
        borg_status st = grow(s, err);
        if (st)
            return st;
        e = slot(s->e, s->cap, h);
    }
    *e = (entry){h, line};
    s->n++;
    return BORG_OK;
}
