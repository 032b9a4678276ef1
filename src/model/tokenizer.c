/* Tokenizer: llama.cpp's BPE ("gpt2") and SPM ("llama") tokenizers, in C.
 *
 * The aim is the same ids as llama.cpp (src/llama-vocab.cpp, src/unicode.cpp)
 * for the same file, quirks included: the pre-tokenizers below reproduce
 * what llama.cpp's hand-written splitters and its std::regex fallback do,
 * not what the Hugging Face regexes would do. */
#define _GNU_SOURCE
#include "borg/tokenizer.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unicode.h"

/* Token attributes, a bit set as in llama.cpp (llama_token_attr). */
enum {
    A_UNKNOWN = 1 << 0,
    A_UNUSED = 1 << 1,
    A_NORMAL = 1 << 2,
    A_CONTROL = 1 << 3,
    A_USER = 1 << 4,
    A_BYTE = 1 << 5,
    A_EOG = 1 << 6, /* ours: ends generation */
};
#define A_SPECIAL (A_UNKNOWN | A_CONTROL)         /* hidden unless rendering specials */
#define A_CACHED (A_UNKNOWN | A_CONTROL | A_USER) /* cut out before tokenizing */

/* Pre-tokenizers (the split stages each runs, in order):
 * DIGITS_GPT2  \p{N} one by one, then GPT-2   (smollm, starcoder, refact ...)
 * GPT2         GPT-2                          (gpt-2, mpt, olmo ...)
 * LLAMA3       Llama-3, digits in threes      (llama-bpe, llama3 ...)
 * QWEN2        Llama-3 shape, single digits   (qwen2, stablelm2 ...)
 * DEFAULT      llama.cpp's fallback chain: punctuation runs, GPT-2,
 *              \p{N}+ runs, [0-9]{3}          ("default", missing, unknown) */
typedef enum { PRE_DEFAULT, PRE_GPT2, PRE_DIGITS_GPT2, PRE_LLAMA3, PRE_QWEN2 } pre_kind;

typedef struct {
    uint32_t off, len;
} span;

typedef struct {
    uint32_t off; /* "left right" in the merge pool */
    uint32_t llen, rlen;
    int32_t rank;
} merge_ent;

struct borg_tokenizer {
    int spm; /* "llama" model; otherwise "gpt2" */
    pre_kind pre;
    int ignore_merges, add_bos, add_eos, add_space_prefix;
    int32_t n_vocab, bos, eos, unk;

    char *pool; /* token texts */
    span *tok;
    uint8_t *attr;
    float *score; /* SPM only */
    int32_t *map; /* open addressing: text -> id, -1 empty */
    size_t map_mask;

    char *mpool; /* BPE merges */
    merge_ent *merges;
    size_t merge_mask;

    char *ppool; /* piece of each token as rendered with specials */
    span *piece;

    int32_t *special; /* A_CACHED tokens, longest text first */
    size_t n_special;

    int32_t byte_tok[256]; /* SPM: <0xNN>; BPE: the token of that one raw byte */
    char bmap[256][2];     /* GPT-2 byte -> code point, as UTF-8 */
    uint8_t bmap_len[256];
    int16_t bunmap[324]; /* code point -> byte, -1 if none */
};

/* ---- hashing ---------------------------------------------------------- */

#define FNV_INIT 0xcbf29ce484222325ull

static uint64_t fnv(uint64_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    return h;
}

static size_t table_size(size_t n)
{
    size_t cap = 16;
    while (cap < 2 * n)
        cap <<= 1;
    return cap;
}

/* The id of the token with text s[0..n), -1 if none. */
static int32_t lookup(const borg_tokenizer *t, const char *s, size_t n)
{
    for (size_t i = (size_t)fnv(FNV_INIT, s, n) & t->map_mask;; i = (i + 1) & t->map_mask) {
        int32_t id = t->map[i];
        if (id < 0 || (t->tok[id].len == n && !memcmp(t->pool + t->tok[id].off, s, n)))
            return id;
    }
}

/* The rank of the merge "l r", -1 if there is none. */
static int32_t merge_rank(const borg_tokenizer *t, const char *l, size_t ln, const char *r, size_t rn)
{
    uint64_t h = fnv(fnv(fnv(FNV_INIT, l, ln), " ", 1), r, rn);
    for (size_t i = (size_t)h & t->merge_mask;; i = (i + 1) & t->merge_mask) {
        const merge_ent *m = &t->merges[i];
        if (m->rank < 0)
            return -1;
        const char *p = t->mpool + m->off;
        if (m->llen == ln && m->rlen == rn && !memcmp(p, l, ln) && !memcmp(p + ln + 1, r, rn))
            return m->rank;
    }
}

/* ---- growable buffers ------------------------------------------------- */

typedef struct {
    int32_t *v;
    size_t n, cap;
} ids_buf;

/* Makes room for need elements in the array that *pp points to (pp is the
 * address of the array pointer, passed untyped). */
static borg_status grow(void *pp, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return BORG_OK;
    size_t c = *cap ? *cap : 64;
    while (c < need)
        c *= 2;
    void *p;
    memcpy(&p, pp, sizeof p);
    if (c > SIZE_MAX / elem || !(p = realloc(p, c * elem)))
        return BORG_ENOMEM;
    memcpy(pp, &p, sizeof p);
    *cap = c;
    return BORG_OK;
}

static borg_status push_id(ids_buf *b, int32_t id)
{
    if (grow(&b->v, &b->cap, b->n + 1, sizeof *b->v))
        return BORG_ENOMEM;
    b->v[b->n++] = id;
    return BORG_OK;
}

/* ---- pre-tokenization ------------------------------------------------- */

/* A fragment as code points; fl[i] are their ucp_flags. Splitters read the
 * chunk [s, e) and append the ends of the pieces they cut it into. */
typedef struct {
    const uint32_t *cp;
    const uint16_t *fl;
} cps;

/* Flags at i, 0 past the chunk end (what llama.cpp's _get_flags returns). */
static unsigned fl_at(const cps *b, size_t i, size_t e) { return i < e ? b->fl[i] : 0; }

/* Length of the contraction ('s 't 're 've 'm 'll 'd) at pos (a quote), 0 if
 * none; fold: match the letters case-insensitively. ASCII folding is exact:
 * no other code point lowercases to one of these letters. */
static size_t contraction(const cps *b, size_t pos, size_t e, int fold)
{
    if (pos + 1 >= e)
        return 0;
    uint32_t c1 = b->cp[pos + 1];
    if (fold && c1 >= 'A' && c1 <= 'Z')
        c1 += 'a' - 'A';
    if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd')
        return 2;
    if (pos + 2 >= e)
        return 0;
    uint32_t c2 = b->cp[pos + 2];
    if (fold && c2 >= 'A' && c2 <= 'Z')
        c2 += 'a' - 'A';
    if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l'))
        return 3;
    return 0;
}

/* End of a whitespace run at pos for \s+(?!\S)|\s+: all of it at the chunk
 * end, else all but the last (which then leads the next piece) unless it is
 * a single character. */
static size_t space_end(const cps *b, size_t pos, size_t e)
{
    size_t n = 0;
    while (fl_at(b, pos + n, e) & UCP_SPACE)
        n++;
    return pos + (n > 1 && pos + n < e ? n - 1 : n);
}

/* 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
static size_t split_gpt2(const cps *b, size_t s, size_t e, size_t *out)
{
    size_t k = 0;
    for (size_t pos = s, end; pos < e; pos = end) {
        uint32_t c = b->cp[pos];
        unsigned f2 = c == ' ' ? fl_at(b, pos + 1, e) : b->fl[pos];
        size_t n;
        if (c == '\'' && (n = contraction(b, pos, e, 0))) {
            end = pos + n;
        } else if (f2 & (UCP_LETTER | UCP_NUMBER)) {
            unsigned cls = f2 & (UCP_LETTER | UCP_NUMBER);
            for (end = pos + (c == ' '); fl_at(b, end, e) & cls;)
                end++;
        } else if (f2 && !(f2 & UCP_SPACE)) {
            unsigned g;
            for (end = pos + (c == ' '); (g = fl_at(b, end, e)) && !(g & (UCP_SPACE | UCP_LETTER | UCP_NUMBER));)
                end++;
        } else {
            end = space_end(b, pos, e); /* c is whitespace here */
        }
        out[k++] = end;
    }
    return k;
}

/* (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,max_digits}|
 *  ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+ */
static size_t split_llama3(const cps *b, size_t s, size_t e, size_t *out, size_t max_digits)
{
    size_t k = 0;
    for (size_t pos = s, end; pos < e; pos = end) {
        uint32_t c = b->cp[pos];
        unsigned f = b->fl[pos];
        size_t n;
        if (c == '\'' && (n = contraction(b, pos, e, 1))) {
            end = pos + n;
        } else if (c != '\r' && c != '\n' && !(f & UCP_NUMBER) &&
                   ((f & UCP_LETTER) || (fl_at(b, pos + 1, e) & UCP_LETTER))) {
            for (end = pos + 1; fl_at(b, end, e) & UCP_LETTER;)
                end++;
        } else if (f & UCP_NUMBER) {
            for (end = pos; fl_at(b, end, e) & UCP_NUMBER;) {
                if (++end - pos == max_digits) {
                    out[k++] = end;
                    pos = end;
                }
            }
            if (end == pos)
                continue;
        } else {
            unsigned f2 = c == ' ' ? fl_at(b, pos + 1, e) : f;
            if (!(f2 & (UCP_SPACE | UCP_LETTER | UCP_NUMBER))) {
                unsigned g;
                for (end = pos + (c == ' '); (g = fl_at(b, end, e)) && !(g & (UCP_SPACE | UCP_LETTER | UCP_NUMBER));)
                    end++;
                while (end < e && (b->cp[end] == '\r' || b->cp[end] == '\n'))
                    end++;
            } else {
                size_t last_nl = 0; /* \s*[\r\n]+ ends after the run's last newline */
                for (size_t i = pos; fl_at(b, i, e) & UCP_SPACE; i++)
                    if (b->cp[i] == '\r' || b->cp[i] == '\n')
                        last_nl = i + 1;
                end = last_nl ? last_nl : space_end(b, pos, e);
            }
        }
        out[k++] = end;
    }
    return k;
}

/* What llama.cpp's std::regex path makes of a single character class: each
 * match (a maximal run, or with single, one code point) is a piece and so is
 * each stretch between matches. */
static size_t split_class(const cps *b, size_t s, size_t e, size_t *out, int (*in)(const cps *, size_t), int single)
{
    size_t k = 0;
    for (size_t pos = s, end; pos < e; pos = end) {
        int m = in(b, pos);
        end = pos + 1;
        if (!m || !single)
            while (end < e && in(b, end) == m)
                end++;
        out[k++] = end;
    }
    return k;
}

static int is_number(const cps *b, size_t i) { return (b->fl[i] & UCP_NUMBER) != 0; }

/* [\p{P}\$\+<=>\^~\|] */
static int is_default_punct(const cps *b, size_t i)
{
    uint32_t c = b->cp[i];
    return (b->fl[i] & UCP_PUNCT) || (c < 0x80 && c && strchr("$+<=>^~|", (int)c));
}

/* [0-9][0-9][0-9], matches found left to right. */
static size_t split_three_digits(const cps *b, size_t s, size_t e, size_t *out)
{
    size_t k = 0, gap = s;
    for (size_t pos = s; pos < e;) {
        int m = pos + 3 <= e;
        for (size_t i = 0; m && i < 3; i++)
            m = b->cp[pos + i] >= '0' && b->cp[pos + i] <= '9';
        if (!m) {
            pos++;
            continue;
        }
        if (pos > gap)
            out[k++] = pos;
        pos += 3;
        out[k++] = gap = pos;
    }
    if (gap < e)
        out[k++] = e;
    return k;
}

typedef enum { ST_DIGITS, ST_NUMBER_RUNS, ST_PUNCT_RUNS, ST_GPT2, ST_LLAMA3, ST_QWEN2, ST_THREE_DIGITS } stage;

static size_t run_stage(stage st, const cps *b, size_t s, size_t e, size_t *out)
{
    switch (st) {
    case ST_DIGITS: return split_class(b, s, e, out, is_number, 1);
    case ST_NUMBER_RUNS: return split_class(b, s, e, out, is_number, 0);
    case ST_PUNCT_RUNS: return split_class(b, s, e, out, is_default_punct, 0);
    case ST_GPT2: return split_gpt2(b, s, e, out);
    case ST_LLAMA3: return split_llama3(b, s, e, out, 3);
    case ST_QWEN2: return split_llama3(b, s, e, out, 1);
    case ST_THREE_DIGITS: return split_three_digits(b, s, e, out);
    }
    return 0;
}

static size_t pre_stages(pre_kind p, stage st[4])
{
    switch (p) {
    case PRE_GPT2: st[0] = ST_GPT2; return 1;
    case PRE_DIGITS_GPT2:
        st[0] = ST_DIGITS;
        st[1] = ST_GPT2;
        return 2;
    case PRE_LLAMA3: st[0] = ST_LLAMA3; return 1;
    case PRE_QWEN2: st[0] = ST_QWEN2; return 1;
    case PRE_DEFAULT: break;
    }
    st[0] = ST_PUNCT_RUNS;
    st[1] = ST_GPT2;
    st[2] = ST_NUMBER_RUNS;
    st[3] = ST_THREE_DIGITS;
    return 4;
}

/* ---- merging ----------------------------------------------------------- */

typedef struct {
    const char *text;
    int32_t n, prev, next;
} symbol;

typedef struct {
    double key; /* smaller first: the BPE rank, or minus the SPM score */
    int32_t left, right;
    size_t size;
} bigram;

/* Scratch for one encode call. */
typedef struct {
    uint32_t *cp;
    uint16_t *fl;
    size_t *ends[2];
    size_t n_cp;
    char *word;
    size_t word_cap;
    symbol *sym;
    size_t sym_cap;
    bigram *heap;
    size_t heap_n, heap_cap;
} scratch;

static int heap_before(const bigram *a, const bigram *b)
{
    return a->key < b->key || (a->key == b->key && a->left < b->left);
}

static borg_status heap_push(scratch *w, bigram g)
{
    if (grow(&w->heap, &w->heap_cap, w->heap_n + 1, sizeof *w->heap))
        return BORG_ENOMEM;
    size_t i = w->heap_n++;
    while (i > 0 && heap_before(&g, &w->heap[(i - 1) / 2])) {
        w->heap[i] = w->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    w->heap[i] = g;
    return BORG_OK;
}

static bigram heap_pop(scratch *w)
{
    bigram top = w->heap[0], last = w->heap[--w->heap_n];
    size_t i = 0, n = w->heap_n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && heap_before(&w->heap[c + 1], &w->heap[c]))
            c++;
        if (!heap_before(&w->heap[c], &last))
            break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (n)
        w->heap[i] = last;
    return top;
}

/* Splits text into UTF-8 characters (by lead byte, as llama.cpp does), *n_sym
 * of them. */
static borg_status make_symbols(scratch *w, const char *text, size_t n, int32_t *n_sym)
{
    if (grow(&w->sym, &w->sym_cap, n, sizeof *w->sym))
        return BORG_ENOMEM;
    int32_t k = 0;
    for (size_t off = 0; off < n; k++) {
        size_t len = utf8_len((unsigned char)text[off]);
        if (len > n - off)
            len = n - off;
        w->sym[k] = (symbol){text + off, (int32_t)len, k - 1, off + len == n ? -1 : k + 1};
        off += len;
    }
    *n_sym = k;
    return BORG_OK;
}

static borg_status add_bigram(const borg_tokenizer *t, scratch *w, int32_t l, int32_t r)
{
    if (l < 0 || r < 0)
        return BORG_OK;
    const symbol *a = &w->sym[l], *b = &w->sym[r];
    bigram g = {0, l, r, (size_t)a->n + (size_t)b->n};
    if (t->spm) {
        int32_t id = lookup(t, a->text, g.size);
        if (id < 0)
            return BORG_OK;
        g.key = -(double)t->score[id];
    } else {
        int32_t rank = merge_rank(t, a->text, (size_t)a->n, b->text, (size_t)b->n);
        if (rank < 0)
            return BORG_OK;
        g.key = rank;
    }
    return heap_push(w, g);
}

/* Merges the best bigram until none is left. A queued bigram is stale when
 * either side has been merged away or grown since; as symbols only grow to
 * the right, comparing sizes tells. */
static borg_status merge_all(const borg_tokenizer *t, scratch *w, int32_t n)
{
    for (int32_t i = 1; i < n; i++)
        if (add_bigram(t, w, i - 1, i))
            return BORG_ENOMEM;
    while (w->heap_n) {
        bigram g = heap_pop(w);
        symbol *l = &w->sym[g.left], *r = &w->sym[g.right];
        if (!l->n || !r->n || (size_t)l->n + (size_t)r->n != g.size)
            continue;
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0)
            w->sym[r->next].prev = g.left;
        if (add_bigram(t, w, l->prev, g.left) || add_bigram(t, w, g.left, l->next))
            return BORG_ENOMEM;
    }
    return BORG_OK;
}

/* One pre-tokenized word, already byte-mapped. */
static borg_status bpe_word(const borg_tokenizer *t, scratch *w, const char *word, size_t n, ids_buf *out)
{
    int32_t id;
    if (t->ignore_merges && (id = lookup(t, word, n)) >= 0)
        return push_id(out, id);
    int32_t k;
    if (make_symbols(w, word, n, &k) || merge_all(t, w, k))
        return BORG_ENOMEM;
    for (int32_t i = 0; i != -1; i = w->sym[i].next) {
        const symbol *s = &w->sym[i];
        if ((id = lookup(t, s->text, (size_t)s->n)) >= 0) {
            if (push_id(out, id))
                return BORG_ENOMEM;
            continue;
        }
        for (int32_t j = 0; j < s->n; j++)
            if (t->byte_tok[(unsigned char)s->text[j]] >= 0 && push_id(out, t->byte_tok[(unsigned char)s->text[j]]))
                return BORG_ENOMEM;
    }
    return BORG_OK;
}

static borg_status bpe_fragment(const borg_tokenizer *t, scratch *w, const char *text, size_t len, ids_buf *out)
{
    size_t n = 0;
    for (size_t off = 0, adv; off < len; off += adv) {
        w->cp[n] = utf8_decode((const unsigned char *)text + off, len - off, &adv);
        w->fl[n] = (uint16_t)ucp_flags(w->cp[n]);
        n++;
    }
    cps b = {w->cp, w->fl};
    stage st[4];
    size_t n_st = pre_stages(t->pre, st), n_in = 1, cur = 0;
    w->ends[0][0] = n;
    for (size_t i = 0; i < n_st; i++) {
        size_t n_out = 0;
        for (size_t c = 0, s = 0; c < n_in; s = w->ends[cur][c++])
            n_out += run_stage(st[i], &b, s, w->ends[cur][c], w->ends[!cur] + n_out);
        cur = !cur;
        n_in = n_out;
    }
    for (size_t c = 0, s = 0; c < n_in; s = w->ends[cur][c++]) {
        size_t e = w->ends[cur][c], wn = 0;
        if (grow(&w->word, &w->word_cap, 8 * (e - s), 1))
            return BORG_ENOMEM;
        for (size_t i = s; i < e; i++) {
            char u[4];
            size_t ul = utf8_encode(w->cp[i], u);
            for (size_t j = 0; j < ul; j++) {
                unsigned char byte = (unsigned char)u[j];
                memcpy(w->word + wn, t->bmap[byte], t->bmap_len[byte]);
                wn += t->bmap_len[byte];
            }
        }
        if (bpe_word(t, w, w->word, wn, out))
            return BORG_ENOMEM;
    }
    return BORG_OK;
}

static borg_status spm_fragment(const borg_tokenizer *t, scratch *w, const char *text, size_t len, int prefix,
                                ids_buf *out)
{
    size_t n = 0;
    if (grow(&w->word, &w->word_cap, 3 * (len + 1), 1))
        return BORG_ENOMEM;
    for (size_t i = 0; i < len + (size_t)prefix; i++) {
        char c = i < (size_t)prefix ? ' ' : text[i - (size_t)prefix];
        if (c == ' ') {
            memcpy(w->word + n, "\xe2\x96\x81", 3);
            n += 3;
        } else {
            w->word[n++] = c;
        }
    }
    int32_t k;
    if (make_symbols(w, w->word, n, &k) || merge_all(t, w, k))
        return BORG_ENOMEM;
    for (int32_t i = 0; i != -1; i = w->sym[i].next) {
        const symbol *s = &w->sym[i];
        int32_t id = lookup(t, s->text, (size_t)s->n);
        if (id >= 0) {
            if (push_id(out, id))
                return BORG_ENOMEM;
            continue;
        }
        for (int32_t j = 0; j < s->n; j++) {
            id = t->byte_tok[(unsigned char)s->text[j]];
            if (id < 0)
                id = t->unk;
            if (id >= 0 && push_id(out, id))
                return BORG_ENOMEM;
        }
    }
    return BORG_OK;
}

/* ---- special tokens ---------------------------------------------------- */

typedef struct {
    int32_t id; /* -1: raw text */
    size_t off, len;
} fragment;

/* Cuts special tokens' text out of text, longest token first, each over the
 * whole text before the next (llama.cpp's tokenizer_st_partition). Control
 * and unknown tokens only count when parse_special is set; user-defined
 * tokens always do. */
static borg_status partition(const borg_tokenizer *t, const char *text, size_t len, int parse_special, fragment **out,
                             size_t *n_out)
{
    fragment *cur = NULL, *nxt = NULL;
    size_t n = 0, cap = 0, nxt_cap = 0;
    if (len) {
        if (grow(&cur, &cap, 1, sizeof *cur))
            return BORG_ENOMEM;
        cur[n++] = (fragment){-1, 0, len};
    }
    for (size_t si = 0; si < t->n_special && n; si++) {
        int32_t id = t->special[si];
        if (!parse_special && (t->attr[id] & A_SPECIAL))
            continue;
        const char *s = t->pool + t->tok[id].off;
        size_t sl = t->tok[id].len, m = 0;
        for (size_t i = 0; i < n; i++) {
            fragment f = cur[i];
            const char *hit;
            while (f.id < 0 && (hit = memmem(text + f.off, f.len, s, sl))) {
                size_t at = (size_t)(hit - text);
                if (grow(&nxt, &nxt_cap, m + 2, sizeof *nxt))
                    goto oom;
                if (at > f.off)
                    nxt[m++] = (fragment){-1, f.off, at - f.off};
                nxt[m++] = (fragment){id, at, sl};
                f.len -= at + sl - f.off;
                f.off = at + sl;
            }
            if (f.id >= 0 || f.len) {
                if (grow(&nxt, &nxt_cap, m + 1, sizeof *nxt))
                    goto oom;
                nxt[m++] = f;
            }
        }
        fragment *tmp = cur;
        size_t tcap = cap;
        cur = nxt;
        cap = nxt_cap;
        nxt = tmp;
        nxt_cap = tcap;
        n = m;
    }
    free(nxt);
    *out = cur;
    *n_out = n;
    return BORG_OK;
oom:
    free(cur);
    free(nxt);
    return BORG_ENOMEM;
}

/* ---- encode / decode ---------------------------------------------------- */

static void scratch_free(scratch *w)
{
    free(w->cp);
    free(w->fl);
    free(w->ends[0]);
    free(w->ends[1]);
    free(w->word);
    free(w->sym);
    free(w->heap);
}

borg_status tokenizer_encode(const borg_tokenizer *t, const char *text, size_t len, int add_special, int parse_special,
                             int32_t **ids, size_t *n_ids, borg_err *err)
{
    ids_buf out = {0};
    scratch w = {0};
    fragment *frags = NULL;
    size_t n_frags = 0;
    if (len > SIZE_MAX / 16) /* keeps the scratch sizes below from overflowing */
        return borg_fail(err, BORG_ENOMEM, "cannot tokenize %zu bytes at once", len);
    borg_status st = partition(t, text, len, parse_special, &frags, &n_frags);
    if (!st)
        st = grow(&out.v, &out.cap, 1, sizeof *out.v);
    if (!st && !t->spm && len) {
        size_t n = len + 1;
        if (!(w.cp = malloc(n * sizeof *w.cp)) || !(w.fl = malloc(n * sizeof *w.fl)) ||
            !(w.ends[0] = malloc(n * sizeof *w.ends[0])) || !(w.ends[1] = malloc(n * sizeof *w.ends[1])))
            st = BORG_ENOMEM;
    }
    if (!st && add_special && t->add_bos)
        st = push_id(&out, t->bos);
    int prev_special = 1; /* SPM: a space prefix goes at the start and after each special token */
    for (size_t i = 0; !st && i < n_frags; i++) {
        const fragment *f = &frags[i];
        if (f->id >= 0)
            st = push_id(&out, f->id);
        else if (t->spm)
            st = spm_fragment(t, &w, text + f->off, f->len, t->add_space_prefix && prev_special, &out);
        else
            st = bpe_fragment(t, &w, text + f->off, f->len, &out);
        prev_special = f->id >= 0;
    }
    if (!st && add_special && t->add_eos)
        st = push_id(&out, t->eos);
    free(frags);
    scratch_free(&w);
    if (st) {
        free(out.v);
        return borg_fail(err, BORG_ENOMEM, "out of memory tokenizing %zu bytes", len);
    }
    *ids = out.v;
    *n_ids = out.n;
    return BORG_OK;
}

int tokenizer_piece(const borg_tokenizer *t, int32_t id, int render_special, char *buf, size_t cap)
{
    if (id < 0 || id >= t->n_vocab)
        return -1;
    if (!render_special && (t->attr[id] & A_SPECIAL))
        return 0;
    span p = t->piece[id];
    memcpy(buf, t->ppool + p.off, p.len < cap ? p.len : cap);
    return (int)p.len;
}

const char *tokenizer_piece_bytes(const borg_tokenizer *t, int32_t id, int render_special, size_t *len)
{
    *len = 0;
    if (id < 0 || id >= t->n_vocab)
        return NULL;
    if (!render_special && (t->attr[id] & A_SPECIAL))
        return "";
    *len = t->piece[id].len;
    return t->ppool + t->piece[id].off;
}

borg_status tokenizer_decode(const borg_tokenizer *t, const int32_t *ids, size_t n, int render_special, char **out,
                             size_t *out_len, borg_err *err)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->n_vocab)
            return borg_fail(err, BORG_EINPUT,
                             "cannot decode token id %" PRId32 " at position %zu: the vocabulary has %" PRId32
                             " tokens",
                             ids[i], i, t->n_vocab);
        total += t->piece[ids[i]].len;
    }
    char *s = malloc(total + 1);
    if (!s)
        return borg_fail(err, BORG_ENOMEM, "out of memory decoding %zu tokens", n);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (!render_special && (t->attr[id] & A_SPECIAL))
            continue;
        const char *p = t->ppool + t->piece[id].off;
        size_t pl = t->piece[id].len;
        /* SPM encode put a space before the text that starts the input or
         * follows a special token; take it off again. */
        if (t->spm && t->add_space_prefix && (i == 0 || (t->attr[ids[i - 1]] & A_CACHED)) &&
            !(t->attr[id] & A_CACHED) && pl && p[0] == ' ') {
            p++;
            pl--;
        }
        memcpy(s + k, p, pl);
        k += pl;
    }
    s[k] = '\0';
    *out = s;
    *out_len = k;
    return BORG_OK;
}

int32_t tokenizer_n_vocab(const borg_tokenizer *t) { return t->n_vocab; }

int tokenizer_adds_bos(const borg_tokenizer *t) { return t->add_bos; }

int32_t tokenizer_bos(const borg_tokenizer *t) { return t->bos; }

int32_t tokenizer_eos(const borg_tokenizer *t) { return t->eos; }

int tokenizer_is_eog(const borg_tokenizer *t, int32_t id)
{
    return id >= 0 && id < t->n_vocab && (t->attr[id] & A_EOG);
}

int32_t tokenizer_find(const borg_tokenizer *t, const char *s) { return lookup(t, s, strlen(s)); }

/* ---- loading ----------------------------------------------------------- */

void tokenizer_free(borg_tokenizer *t)
{
    if (!t)
        return;
    free(t->pool);
    free(t->tok);
    free(t->attr);
    free(t->score);
    free(t->map);
    free(t->mpool);
    free(t->merges);
    free(t->ppool);
    free(t->piece);
    free(t->special);
    free(t);
}

static borg_status oom(borg_err *err, const char *what)
{
    return borg_fail(err, BORG_ENOMEM, "out of memory loading the tokenizer (%s)", what);
}

/* GPT-2's reversible byte -> printable code point mapping. */
static void init_byte_map(borg_tokenizer *t)
{
    int next = 256;
    memset(t->bunmap, -1, sizeof t->bunmap);
    for (int b = 0; b < 256; b++) {
        int printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
        uint32_t cp = printable ? (uint32_t)b : (uint32_t)next++;
        char u[4];
        t->bmap_len[b] = (uint8_t)utf8_encode(cp, u);
        memcpy(t->bmap[b], u, t->bmap_len[b]);
        t->bunmap[cp] = (int16_t)b;
    }
}

static borg_status load_vocab(borg_tokenizer *t, const gguf_file *f, borg_err *err)
{
    gguf_str *words = NULL;
    uint64_t n = 0;
    borg_status st = gguf_get_str_array(f, "tokenizer.ggml.tokens", &words, &n, err);
    if (st)
        return st;
    if (n == 0 || n > INT32_MAX) {
        free(words);
        return borg_fail(err, BORG_EINPUT, "metadata key 'tokenizer.ggml.tokens' has %" PRIu64 " tokens (need 1 to %d)",
                         n, INT32_MAX);
    }
    t->n_vocab = (int32_t)n;
    size_t bytes = 0;
    for (uint64_t i = 0; i < n; i++)
        bytes += words[i].len ? (size_t)words[i].len : 32;
    if (bytes >= UINT32_MAX) {
        free(words);
        return borg_fail(err, BORG_EINPUT, "metadata key 'tokenizer.ggml.tokens': token texts too large (%zu bytes)",
                         bytes);
    }
    t->map_mask = table_size((size_t)n) - 1;
    t->pool = malloc(bytes + 1);
    t->tok = malloc((size_t)n * sizeof *t->tok);
    t->attr = malloc((size_t)n);
    t->map = malloc((t->map_mask + 1) * sizeof *t->map);
    if (!t->pool || !t->tok || !t->attr || !t->map) {
        free(words);
        return oom(err, "tokens");
    }
    memset(t->map, -1, (t->map_mask + 1) * sizeof *t->map);
    size_t off = 0;
    for (int32_t i = 0; i < t->n_vocab; i++) {
        size_t len = (size_t)words[i].len;
        if (len)
            memcpy(t->pool + off, words[i].ptr, len);
        else /* as llama.cpp names an empty token */
            len = (size_t)snprintf(t->pool + off, 32, "[EMPTY_%" PRId32 "]", i);
        t->tok[i] = (span){(uint32_t)off, (uint32_t)len};
        size_t h = (size_t)fnv(FNV_INIT, t->pool + off, len) & t->map_mask;
        for (; t->map[h] >= 0; h = (h + 1) & t->map_mask) {
            span o = t->tok[t->map[h]];
            if (o.len == len && !memcmp(t->pool + o.off, t->pool + off, len)) {
                int32_t first = t->map[h];
                free(words);
                return borg_fail(err, BORG_EINPUT,
                                 "metadata key 'tokenizer.ggml.tokens': duplicate token '%.*s'"
                                 " (ids %" PRId32 " and %" PRId32 ")",
                                 (int)(len > 64 ? 64 : len), t->pool + off, first, i);
            }
        }
        t->map[h] = i;
        off += len;
    }
    free(words);
    return BORG_OK;
}

static borg_status too_short(const char *key, uint64_t n, int32_t n_vocab, borg_err *err)
{
    return borg_fail(err, BORG_EINPUT, "metadata key '%s' has %" PRIu64 " entries for %" PRId32 " tokens", key, n,
                     n_vocab);
}

static borg_status load_types(borg_tokenizer *t, const gguf_file *f, borg_err *err)
{
    static const char key[] = "tokenizer.ggml.token_type";
    memset(t->attr, A_NORMAL, (size_t)t->n_vocab);
    if (!gguf_has_key(f, key))
        return BORG_OK;
    int32_t *types = NULL;
    uint64_t n = 0;
    borg_status st = gguf_get_i32_array(f, key, &types, &n, err);
    if (st)
        return st;
    if (n < (uint64_t)t->n_vocab) {
        free(types);
        return too_short(key, n, t->n_vocab, err);
    }
    /* GGUF token types: 1 normal, 2 unknown, 3 control, 4 user-defined,
     * 5 unused, 6 byte; anything else is undefined (no attribute). */
    static const uint8_t attr_of[7] = {0, A_NORMAL, A_UNKNOWN, A_CONTROL, A_USER, A_UNUSED, A_BYTE};
    for (int32_t i = 0; i < t->n_vocab; i++)
        t->attr[i] = types[i] >= 0 && types[i] < 7 ? attr_of[types[i]] : 0;
    free(types);
    return BORG_OK;
}

static borg_status load_merges(borg_tokenizer *t, const gguf_file *f, borg_err *err)
{
    static const char key[] = "tokenizer.ggml.merges";
    gguf_str *m = NULL;
    uint64_t n = 0;
    borg_status st = gguf_get_str_array(f, key, &m, &n, err);
    if (st)
        return st;
    size_t bytes = 0;
    for (uint64_t i = 0; i < n; i++)
        bytes += (size_t)m[i].len;
    if (n > INT32_MAX || bytes >= UINT32_MAX) {
        free(m);
        return borg_fail(err, BORG_EINPUT, "metadata key '%s': too many merges (%" PRIu64 ", %zu bytes)", key, n,
                         bytes);
    }
    t->merge_mask = table_size((size_t)n) - 1;
    t->mpool = malloc(bytes + 1);
    t->merges = malloc((t->merge_mask + 1) * sizeof *t->merges);
    if (!t->mpool || !t->merges) {
        free(m);
        return oom(err, "merges");
    }
    for (size_t i = 0; i <= t->merge_mask; i++)
        t->merges[i].rank = -1;
    size_t off = 0;
    for (uint64_t i = 0; i < n; i++) {
        size_t len = (size_t)m[i].len;
        const char *sp = len > 1 ? memchr(m[i].ptr + 1, ' ', len - 1) : NULL;
        if (!sp) /* llama.cpp files such a line under an empty pair, which never matches */
            continue;
        memcpy(t->mpool + off, m[i].ptr, len);
        uint32_t llen = (uint32_t)(sp - m[i].ptr), rlen = (uint32_t)(len - llen - 1);
        size_t h = (size_t)fnv(FNV_INIT, m[i].ptr, len) & t->merge_mask;
        int dup = 0;
        for (; t->merges[h].rank >= 0 && !dup; h = (h + 1) & t->merge_mask) {
            const merge_ent *e = &t->merges[h];
            dup = e->llen == llen && e->rlen == rlen && !memcmp(t->mpool + e->off, m[i].ptr, len);
        }
        if (!dup) /* the first rank of a repeated pair wins */
            t->merges[h] = (merge_ent){(uint32_t)off, llen, rlen, (int32_t)i};
        off += len;
    }
    free(m);
    return BORG_OK;
}

static borg_status load_scores(borg_tokenizer *t, const gguf_file *f, borg_err *err)
{
    static const char key[] = "tokenizer.ggml.scores";
    uint64_t n = 0;
    if (!gguf_has_key(f, key)) {
        t->score = calloc((size_t)t->n_vocab, sizeof *t->score);
        return t->score ? BORG_OK : oom(err, "scores");
    }
    borg_status st = gguf_get_f32_array(f, key, &t->score, &n, err);
    if (st)
        return st;
    if (n < (uint64_t)t->n_vocab)
        return too_short(key, n, t->n_vocab, err);
    return BORG_OK;
}

static borg_status get_flag(const gguf_file *f, const char *key, int *v, borg_err *err)
{
    return gguf_has_key(f, key) ? gguf_get_bool(f, key, v, err) : BORG_OK;
}

/* A special token id: the file's value when it names a token, else the
 * model's default (llama.cpp ignores an out-of-range id the same way). */
static borg_status get_special(const borg_tokenizer *t, const gguf_file *f, const char *key, int32_t *id, borg_err *err)
{
    if (*id >= t->n_vocab)
        *id = -1;
    if (!gguf_has_key(f, key))
        return BORG_OK;
    int64_t v;
    borg_status st = gguf_get_i64(f, key, &v, err);
    if (st)
        return st;
    if (v >= 0 && v < t->n_vocab)
        *id = (int32_t)v;
    return BORG_OK;
}

static int has_text(const borg_tokenizer *t, int32_t id, const char *const *list)
{
    for (; *list; list++)
        if (t->tok[id].len == strlen(*list) && !memcmp(t->pool + t->tok[id].off, *list, t->tok[id].len))
            return 1;
    return 0;
}

/* Tokens llama.cpp treats as ending generation by their text alone (and
 * then as control tokens, whatever the file says). */
static const char *const eog_texts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<end_of_turn>", "<|endoftext|>", "</s>",
    "<|eom_id|>", "<EOT>", "_<EOT>", "<|end_of_text|>", "<end_of_utterance>", "<eos>",
    /* FIM pad / repo / file-separator tokens */
    "<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>",
    "<reponame>", "<|file_sep|>", "[EOT]", "[EOS]",
    "<\xef\xbd\x9c"
    "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>" /* DeepSeek */,
    NULL};

static borg_status load_specials(borg_tokenizer *t, const gguf_file *f, borg_err *err)
{
    int32_t eot = -1, eom = -1;
    borg_status st;
    if ((st = get_special(t, f, "tokenizer.ggml.bos_token_id", &t->bos, err)) ||
        (st = get_special(t, f, "tokenizer.ggml.eos_token_id", &t->eos, err)) ||
        (st = get_special(t, f, "tokenizer.ggml.unknown_token_id", &t->unk, err)) ||
        (st = get_special(t, f, "tokenizer.ggml.eot_token_id", &eot, err)) ||
        (st = get_special(t, f, "tokenizer.ggml.eom_token_id", &eom, err)) ||
        (st = get_flag(f, "tokenizer.ggml.add_bos_token", &t->add_bos, err)) ||
        (st = get_flag(f, "tokenizer.ggml.add_eos_token", &t->add_eos, err)))
        return st;
    if (t->add_bos && t->bos < 0)
        return borg_fail(err, BORG_EINPUT,
                         "tokenizer.ggml.add_bos_token is true but tokenizer.ggml.bos_token_id is not set");
    if (t->add_eos && t->eos < 0)
        return borg_fail(err, BORG_EINPUT,
                         "tokenizer.ggml.add_eos_token is true but tokenizer.ggml.eos_token_id is not set");

    for (int32_t i = 0; i < t->n_vocab; i++)
        if (has_text(t, i, eog_texts))
            t->attr[i] |= A_EOG | A_CONTROL;
    int32_t always[] = {t->eos, eot, eom};
    for (size_t i = 0; i < sizeof always / sizeof always[0]; i++)
        if (always[i] >= 0)
            t->attr[always[i]] |= A_EOG;

    size_t k = 0;
    for (int32_t i = 0; i < t->n_vocab; i++)
        k += (t->attr[i] & A_CACHED) != 0;
    t->special = malloc((k ? k : 1) * sizeof *t->special);
    if (!t->special)
        return oom(err, "special tokens");
    for (int32_t i = 0; i < t->n_vocab; i++)
        if (t->attr[i] & A_CACHED)
            t->special[t->n_special++] = i;
    /* longest first, by id among equals (insertion sort keeps it stable) */
    for (size_t i = 1; i < t->n_special; i++) {
        int32_t id = t->special[i];
        size_t j = i;
        for (; j > 0 && t->tok[t->special[j - 1]].len < t->tok[id].len; j--)
            t->special[j] = t->special[j - 1];
        t->special[j] = id;
    }
    return BORG_OK;
}

/* Hex value of an SPM byte token "<0xNN>", -1 if text is not one. */
static int byte_token_value(const char *s, size_t n)
{
    int v = 0;
    if (n != 6 || memcmp(s, "<0x", 3) || s[5] != '>')
        return -1;
    for (int i = 3; i < 5; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                       : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* What each token prints as, rendered with specials: the text of special
 * and user-defined tokens, the byte of a byte token, the decoded text of a
 * normal one, nothing for unused/undefined ones. */
static borg_status build_pieces(borg_tokenizer *t, borg_err *err)
{
    size_t bytes = 0;
    for (int32_t i = 0; i < t->n_vocab; i++)
        bytes += t->tok[i].len;
    t->ppool = malloc(bytes + 1);
    t->piece = malloc((size_t)t->n_vocab * sizeof *t->piece);
    if (!t->ppool || !t->piece)
        return oom(err, "pieces");
    size_t off = 0;
    for (int32_t i = 0; i < t->n_vocab; i++) {
        const char *s = t->pool + t->tok[i].off;
        size_t n = t->tok[i].len, len = 0;
        char *d = t->ppool + off;
        uint8_t a = t->attr[i];
        if (a & A_CACHED) {
            memcpy(d, s, n);
            len = n;
        } else if (a & A_NORMAL) {
            for (size_t j = 0, adv; j < n; j += adv) {
                if (t->spm) {
                    adv = 1;
                    if (n - j >= 3 && !memcmp(s + j, "\xe2\x96\x81", 3)) {
                        d[len++] = ' ';
                        adv = 3;
                    } else {
                        d[len++] = s[j];
                    }
                    continue;
                }
                uint32_t cp = utf8_decode((const unsigned char *)s + j, n - j, &adv);
                if (cp < 324 && t->bunmap[cp] >= 0) {
                    d[len++] = (char)t->bunmap[cp];
                } else { /* not a byte-level character: keep it as written */
                    memcpy(d + len, s + j, adv);
                    len += adv;
                }
            }
        } else if (a & A_BYTE) {
            int v = byte_token_value(s, n);
            if (v >= 0)
                d[len++] = (char)v;
        }
        t->piece[i] = (span){(uint32_t)off, (uint32_t)len};
        off += len;
    }
    return BORG_OK;
}

static const struct {
    const char *name;
    pre_kind kind;
    int ignore_merges, add_bos;
} pre_names[] = {
    {"default", PRE_DEFAULT, 0, 0},
    {"smollm", PRE_DIGITS_GPT2, 0, 0},
    {"starcoder", PRE_DIGITS_GPT2, 0, 0},
    {"refact", PRE_DIGITS_GPT2, 0, 0},
    {"command-r", PRE_DIGITS_GPT2, 0, 0},
    {"codeshell", PRE_DIGITS_GPT2, 0, 0},
    {"exaone", PRE_DIGITS_GPT2, 0, 0},
    {"minerva-7b", PRE_DIGITS_GPT2, 0, 0},
    {"mellum2", PRE_DIGITS_GPT2, 0, 0},
    {"gpt2", PRE_GPT2, 0, 0},
    {"gpt-2", PRE_GPT2, 0, 0},
    {"phi-2", PRE_GPT2, 0, 0},
    {"mpt", PRE_GPT2, 0, 0},
    {"olmo", PRE_GPT2, 0, 0},
    {"jais", PRE_GPT2, 0, 0},
    {"trillion", PRE_GPT2, 0, 0},
    {"granite-docling", PRE_GPT2, 0, 0},
    {"jina-es", PRE_GPT2, 0, 0},
    {"jina-de", PRE_GPT2, 0, 0},
    {"jina-v2-es", PRE_GPT2, 0, 0},
    {"jina-v2-de", PRE_GPT2, 0, 0},
    {"jina-v1-en", PRE_GPT2, 0, 0},
    {"jina-v2-code", PRE_GPT2, 0, 0},
    {"roberta-bpe", PRE_GPT2, 0, 0},
    {"gigachat", PRE_GPT2, 0, 0},
    {"a.x-4.0", PRE_GPT2, 0, 0},
    {"mellum", PRE_GPT2, 0, 0},
    {"modern-bert", PRE_GPT2, 0, 0},
    {"exaone4", PRE_GPT2, 0, 0},
    {"llama3", PRE_LLAMA3, 1, 1},
    {"llama-v3", PRE_LLAMA3, 1, 1},
    {"llama-bpe", PRE_LLAMA3, 1, 1},
    {"falcon3", PRE_LLAMA3, 1, 1},
    {"falcon-h1", PRE_LLAMA3, 1, 1},
    {"pixtral", PRE_LLAMA3, 1, 1},
    {"midm-2.0", PRE_LLAMA3, 1, 1},
    {"lfm2", PRE_LLAMA3, 1, 1},
    {"jina-v5-nano", PRE_LLAMA3, 1, 1},
    {"dbrx", PRE_LLAMA3, 0, 0},
    {"smaug-bpe", PRE_LLAMA3, 0, 0},
    {"qwen2", PRE_QWEN2, 0, 0},
    {"deepseek-r1-qwen", PRE_QWEN2, 0, 0},
    {"kormo", PRE_QWEN2, 0, 0},
    {"f2llmv2", PRE_QWEN2, 0, 0},
    {"megrez", PRE_QWEN2, 0, 0},
    {"stablelm2", PRE_QWEN2, 0, 0},
    {"hunyuan", PRE_QWEN2, 0, 0},
    {"solar-open", PRE_QWEN2, 0, 0},
};

static borg_status load_model_kind(borg_tokenizer *t, const gguf_file *f, borg_err *err)
{
    gguf_str model, pre = {"", 0};
    borg_status st = gguf_get_str(f, "tokenizer.ggml.model", &model, err);
    if (st)
        return st;
    if (model.len == 5 && !memcmp(model.ptr, "llama", 5)) {
        t->spm = 1;
        t->add_bos = t->add_space_prefix = 1;
        t->bos = 1;
        t->eos = 2;
        t->unk = 0;
    } else if (model.len == 4 && !memcmp(model.ptr, "gpt2", 4)) {
        t->bos = t->eos = 11; /* llama.cpp's defaults for BPE */
        t->unk = -1;
        if (gguf_has_key(f, "tokenizer.ggml.pre") && (st = gguf_get_str(f, "tokenizer.ggml.pre", &pre, err)))
            return st;
        t->pre = PRE_DEFAULT; /* also for names we do not know */
        for (size_t i = 0; i < sizeof pre_names / sizeof pre_names[0]; i++) {
            if (strlen(pre_names[i].name) == pre.len && !memcmp(pre_names[i].name, pre.ptr, (size_t)pre.len)) {
                t->pre = pre_names[i].kind;
                t->ignore_merges = pre_names[i].ignore_merges;
                t->add_bos = pre_names[i].add_bos;
            }
        }
    } else {
        return borg_fail(err, BORG_EINPUT, "metadata key 'tokenizer.ggml.model' is '%.*s' (supported: gpt2, llama)",
                         (int)(model.len > 64 ? 64 : model.len), model.ptr);
    }
    if (t->spm)
        return get_flag(f, "tokenizer.ggml.add_space_prefix", &t->add_space_prefix, err);
    return BORG_OK;
}

borg_status tokenizer_load(const gguf_file *f, borg_tokenizer **out, borg_err *err)
{
    borg_tokenizer *t = calloc(1, sizeof *t);
    if (!t)
        return oom(err, "tokenizer");
    init_byte_map(t);
    borg_status st;
    if ((st = load_model_kind(t, f, err)) || (st = load_vocab(t, f, err)) || (st = load_types(t, f, err)) ||
        (st = t->spm ? load_scores(t, f, err) : load_merges(t, f, err)) || (st = load_specials(t, f, err)) ||
        (st = build_pieces(t, err))) {
        tokenizer_free(t);
        return st;
    }
    for (int b = 0; b < 256; b++) {
        char hex[7];
        char raw = (char)b;
        snprintf(hex, sizeof hex, "<0x%02X>", b);
        int32_t id = t->spm ? lookup(t, hex, 6) : -1;
        t->byte_tok[b] = id >= 0 ? id : lookup(t, &raw, 1);
    }
    *out = t;
    return BORG_OK;
}
