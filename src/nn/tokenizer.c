/* CLIP's byte-level BPE tokenizer (openai/CLIP simple_tokenizer.py, clip.tokenize).
 *
 * Symbols are vocabulary ids throughout: every symbol a word holds while merging (a byte,
 * a byte + "</w>", or the join of a merge) is a vocabulary string, so a merge is a lookup of
 * the id pair. Where the file spells one string twice, the later id wins, as in the
 * reference's dict(zip(vocab, range(len(vocab)))). */
#include "tokenizer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "../core/error.h"
#include "tokenizer_text.h"

enum {
    VOCAB_SLOTS = 1 << 17,       /* hash slots, at least twice the vocabulary */
    PAIR_SLOTS = 1 << 17,        /* hash slots, at least twice the merges */
    CACHE_SLOTS = 1 << 13,
    CACHE_MAX_ENTRIES = CACHE_SLOTS / 2,  /* then the cache starts over */
    CACHE_MAX_PIECE = 64,        /* longer words are rare enough not to cache */
};
/* Texts longer than this are refused, which keeps every position within uint32_t. */
#define MAX_TEXT_BYTES ((size_t)1 << 28)
#define NO_SYMBOL UINT32_MAX

static const char start_text[] = "<|startoftext|>";
static const char end_text[] = "<|endoftext|>";

typedef struct pair_slot {
    int32_t left, right;   /* the pair's symbol ids */
    int32_t rank;          /* -1: empty slot */
    int32_t merged;        /* id of the joined symbol */
} pair_slot;

typedef struct cache_slot {
    uint32_t hash;
    uint16_t key_size;     /* 0: empty slot */
    uint16_t id_count;
    uint32_t key_offset, ids_offset;
} cache_slot;

typedef struct heap_entry {
    int32_t rank;
    uint32_t pos;          /* position of the pair's left symbol */
    int32_t left, right;   /* the ids it had when pushed: stale entries no longer match */
} heap_entry;

struct nn_tokenizer {
    char *strings;                 /* every vocabulary symbol, back to back */
    uint32_t *string_offset;       /* per id */
    uint32_t *string_size;
    int32_t vocab_count;
    int32_t *vocab_slots;          /* id or -1 */
    pair_slot *pair_slots;
    int32_t byte_id[256], byte_end_id[256];  /* a byte as a word's inner or last symbol */
    int32_t start_id, end_id;

    cache_slot *cache_slots;
    char *cache_keys;
    int32_t *cache_ids;
    size_t cache_entries, cache_key_used, cache_ids_used;

    /* scratch of one word's merging, grown to the longest word seen */
    size_t scratch_cap;
    int32_t *symbol;
    uint32_t *prev, *next, *merged_at;
    heap_entry *heap;
    int32_t *word_ids;
    char *piece;
    size_t piece_cap;
};

static uint64_t hash_bytes(const void *data, size_t size)
{
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325u;  /* FNV-1a, then a finaliser */
    for (size_t i = 0; i < size; i++)
        h = (h ^ p[i]) * 0x100000001b3u;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdu;
    h ^= h >> 33;
    return h;
}

static uint64_t hash_pair(int32_t left, int32_t right)
{
    uint64_t h = ((uint64_t)(uint32_t)left << 32 | (uint32_t)right) * 0x9e3779b97f4a7c15u;
    return h ^ (h >> 29);
}

/* ---- the vocabulary ---- */

/* The slot of `symbol` in vocab_slots: where it is, or the empty slot it would take. */
static size_t vocab_slot(const nn_tokenizer *tok, const char *symbol, size_t size)
{
    size_t slot = hash_bytes(symbol, size) & (VOCAB_SLOTS - 1);
    for (;;) {
        int32_t id = tok->vocab_slots[slot];
        if (id < 0 || (tok->string_size[id] == size &&
                       memcmp(tok->strings + tok->string_offset[id], symbol, size) == 0))
            return slot;
        slot = (slot + 1) & (VOCAB_SLOTS - 1);
    }
}

int32_t nn_tokenizer_lookup(const nn_tokenizer *tok, const char *symbol, size_t size)
{
    return tok->vocab_slots[vocab_slot(tok, symbol, size)];
}

/* Appends the next id, spelled by the concatenation of two byte strings. The arena was sized
 * for the whole vocabulary when the file was read. */
static void add_symbol(nn_tokenizer *tok, size_t *arena_used, const char *a, size_t a_size,
                       const char *b, size_t b_size)
{
    int32_t id = tok->vocab_count++;
    char *dst = tok->strings + *arena_used;
    memcpy(dst, a, a_size);
    memcpy(dst + a_size, b, b_size);
    tok->string_offset[id] = (uint32_t)*arena_used;
    tok->string_size[id] = (uint32_t)(a_size + b_size);
    *arena_used += a_size + b_size;
    tok->vocab_slots[vocab_slot(tok, dst, a_size + b_size)] = id;  /* a later spelling wins */
}

static pair_slot *find_pair(const nn_tokenizer *tok, int32_t left, int32_t right)
{
    size_t slot = hash_pair(left, right) & (PAIR_SLOTS - 1);
    for (;;) {
        pair_slot *p = &tok->pair_slots[slot];
        if (p->rank < 0 || (p->left == left && p->right == right))
            return p;
        slot = (slot + 1) & (PAIR_SLOTS - 1);
    }
}

/* bytes_to_unicode: the code point standing for `byte`, and the dict order that makes the
 * ids: the 188 printable bytes in order, then the other 68 as U+0100 onwards. */
static int is_printable_byte(unsigned b)
{
    return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
}

static void byte_symbol_order(unsigned order[256], uint32_t code_point[256])
{
    unsigned n = 0, extra = 0;
    for (unsigned b = 0; b < 256; b++)
        if (is_printable_byte(b)) {
            order[n++] = b;
            code_point[b] = b;
        }
    for (unsigned b = 0; b < 256; b++)
        if (!is_printable_byte(b)) {
            order[n++] = b;
            code_point[b] = 256 + extra++;
        }
}

/* The whole decompressed file, bounded by NN_TOKENIZER_MAX_FILE_BYTES. */
static int read_gzip(const char *path, char **out, size_t *out_size)
{
    *out = NULL;
    *out_size = 0;
    errno = 0;
    gzFile gz = gzopen(path, "rb");
    if (!gz)
        return dci_err(DC_EIO, "%s: cannot open: %s", path,
                       errno ? strerror(errno) : "out of memory");
    size_t cap = 1 << 20, size = 0;
    char *buf = malloc(cap);
    int status = DC_OK;
    if (!buf) {
        status = dci_err(DC_ENOMEM, "%s: out of memory", path);
        goto done;
    }
    for (;;) {
        if (size == cap) {
            if (cap > NN_TOKENIZER_MAX_FILE_BYTES) {
                status = dci_err(DC_EFORMAT, "%s: decompresses to more than %u bytes", path,
                                 NN_TOKENIZER_MAX_FILE_BYTES);
                goto done;
            }
            size_t grown = cap * 2 > (size_t)NN_TOKENIZER_MAX_FILE_BYTES + 1
                               ? (size_t)NN_TOKENIZER_MAX_FILE_BYTES + 1
                               : cap * 2;
            char *bigger = realloc(buf, grown);
            if (!bigger) {
                status = dci_err(DC_ENOMEM, "%s: out of memory", path);
                goto done;
            }
            buf = bigger;
            cap = grown;
        }
        int got = gzread(gz, buf + size, (unsigned)(cap - size));
        /* a stream cut short ends the reading quietly, leaving Z_BUF_ERROR behind */
        int code;
        const char *message = gzerror(gz, &code);
        if (got < 0 || code != Z_OK) {
            status = dci_err(code == Z_ERRNO ? DC_EIO : DC_EFORMAT, "%s: %s", path,
                             code == Z_ERRNO ? strerror(errno) : message);
            goto done;
        }
        if (got == 0)
            break;
        size += (size_t)got;
    }
    if (gzdirect(gz)) {
        status = dci_err(DC_EFORMAT, "%s: not a gzip file", path);
        goto done;
    }
done:
    gzclose_r(gz);
    if (status != DC_OK) {
        free(buf);
        return status;
    }
    *out = buf;
    *out_size = size;
    return DC_OK;
}

/* A merge line is two non-empty symbols separated by one space; the reference splits it
 * with str.split(), so any other whitespace would change what it reads. */
static int check_merge_line(const char *path, size_t line_number, const char *line,
                            size_t size, size_t *first_size)
{
    const char *space = memchr(line, ' ', size);
    if (size > NN_TOKENIZER_MAX_LINE_BYTES)
        return dci_err(DC_EFORMAT, "%s: line %zu is longer than %u bytes", path, line_number,
                       NN_TOKENIZER_MAX_LINE_BYTES);
    if (!space || space == line || space == line + size - 1 ||
        memchr(space + 1, ' ', (size_t)(line + size - space - 1)))
        return dci_err(DC_EFORMAT, "%s: line %zu is not two symbols separated by one space",
                       path, line_number);
    *first_size = (size_t)(space - line);
    for (size_t pos = 0; pos < size;) {
        uint32_t cp = 0;
        size_t at = pos;
        if (!nn_utf8_next(line, size, &pos, &cp))
            break;  /* not reached: the whole file was checked to be UTF-8 */
        if (at != *first_size && nn_is_python_space(cp))
            return dci_err(DC_EFORMAT, "%s: line %zu has whitespace other than one space",
                           path, line_number);
    }
    return DC_OK;
}

/* Adds the vocabulary from the decompressed file. */
static int build_vocabulary(nn_tokenizer *tok, const char *path, const char *text, size_t size)
{
    for (size_t pos = 0; pos < size;) {
        uint32_t cp;
        if (!nn_utf8_next(text, size, &pos, &cp))
            return dci_err(DC_EFORMAT, "%s: invalid UTF-8 at byte %zu", path, pos);
    }
    const char *end = text + size;
    const char *line = memchr(text, '\n', size);  /* line 0 is the "#version" header */
    if (!line)
        return dci_err(DC_EFORMAT, "%s: no merges after the header line", path);
    line++;

    /* The arena: byte symbols (2 bytes at most), the same + "</w>", merges, specials. */
    size_t arena_cap = 256 * 2 + 256 * 6 + size + sizeof start_text + sizeof end_text;
    uint16_t *first_sizes = malloc(NN_TOKENIZER_MERGES * sizeof *first_sizes);
    tok->strings = malloc(arena_cap);
    if (!first_sizes || !tok->strings) {
        free(first_sizes);
        return dci_err(DC_ENOMEM, "%s: out of memory", path);
    }
    size_t used = 0;
    unsigned order[256];
    uint32_t code_point[256];
    char spelled[256][2];
    size_t spelled_size[256];
    byte_symbol_order(order, code_point);
    for (unsigned b = 0; b < 256; b++)
        spelled_size[b] = nn_utf8_encode(&code_point[b], 1, spelled[b]);
    for (int i = 0; i < 256; i++)
        add_symbol(tok, &used, spelled[order[i]], spelled_size[order[i]], "", 0);
    for (int i = 0; i < 256; i++)
        add_symbol(tok, &used, spelled[order[i]], spelled_size[order[i]], "</w>", 4);

    int status = DC_OK;
    for (size_t r = 0; r < NN_TOKENIZER_MERGES; r++) {
        size_t line_number = r + 2;  /* 1-based, after the header */
        if (line >= end) {
            status = dci_err(DC_EFORMAT,
                             "%s: truncated: %zu merge lines, the vocabulary needs %d", path,
                             r, NN_TOKENIZER_MERGES);
            break;
        }
        const char *newline = memchr(line, '\n', (size_t)(end - line));
        const char *line_end = newline ? newline : end;
        size_t first_size = 0;
        status = check_merge_line(path, line_number, line, (size_t)(line_end - line),
                                  &first_size);
        if (status != DC_OK)
            break;
        first_sizes[r] = (uint16_t)first_size;
        add_symbol(tok, &used, line, first_size, line + first_size + 1,
                   (size_t)(line_end - line) - first_size - 1);
        line = line_end + 1;
    }
    if (status == DC_OK) {
        add_symbol(tok, &used, start_text, strlen(start_text), "", 0);
        add_symbol(tok, &used, end_text, strlen(end_text), "", 0);
        /* Ranks by id pair, now that every spelling has its final id. A merge whose half is
         * no symbol can never apply; a pair listed twice takes its later rank. */
        for (int32_t r = 0; r < NN_TOKENIZER_MERGES; r++) {
            int32_t joined = 512 + r;
            const char *s = tok->strings + tok->string_offset[joined];
            size_t total = tok->string_size[joined], first = first_sizes[r];
            int32_t left = nn_tokenizer_lookup(tok, s, first);
            int32_t right = nn_tokenizer_lookup(tok, s + first, total - first);
            if (left < 0 || right < 0)
                continue;
            pair_slot *slot = find_pair(tok, left, right);
            *slot = (pair_slot){left, right, r, nn_tokenizer_lookup(tok, s, total)};
        }
        for (unsigned b = 0; b < 256; b++) {
            char with_end[6];
            memcpy(with_end, spelled[b], spelled_size[b]);
            memcpy(with_end + spelled_size[b], "</w>", 4);
            tok->byte_id[b] = nn_tokenizer_lookup(tok, spelled[b], spelled_size[b]);
            tok->byte_end_id[b] = nn_tokenizer_lookup(tok, with_end, spelled_size[b] + 4);
        }
        tok->start_id = nn_tokenizer_lookup(tok, start_text, strlen(start_text));
        tok->end_id = nn_tokenizer_lookup(tok, end_text, strlen(end_text));
    }
    free(first_sizes);
    return status;
}

int nn_tokenizer_load_text(nn_tokenizer **out, const char *text, size_t size,
                           const char *label)
{
    *out = NULL;
    if (!label)
        label = "<vocabulary>";
    if (!text && size)
        return dci_err(DC_EINVAL, "%s: NULL buffer", label);
    if (!text)
        text = "";
    if (size > NN_TOKENIZER_MAX_FILE_BYTES)
        return dci_err(DC_EFORMAT, "%s: is larger than %u bytes", label,
                       NN_TOKENIZER_MAX_FILE_BYTES);
    nn_tokenizer *tok = calloc(1, sizeof *tok);
    if (!tok)
        return dci_err(DC_ENOMEM, "%s: out of memory", label);
    tok->string_offset = malloc(NN_TOKENIZER_VOCAB_SIZE * sizeof *tok->string_offset);
    tok->string_size = malloc(NN_TOKENIZER_VOCAB_SIZE * sizeof *tok->string_size);
    tok->vocab_slots = malloc(VOCAB_SLOTS * sizeof *tok->vocab_slots);
    tok->pair_slots = malloc(PAIR_SLOTS * sizeof *tok->pair_slots);
    tok->cache_slots = calloc(CACHE_SLOTS, sizeof *tok->cache_slots);
    tok->cache_keys = malloc(CACHE_MAX_ENTRIES * CACHE_MAX_PIECE);
    tok->cache_ids = malloc(CACHE_MAX_ENTRIES * CACHE_MAX_PIECE * sizeof *tok->cache_ids);
    if (!tok->string_offset || !tok->string_size || !tok->vocab_slots || !tok->pair_slots ||
        !tok->cache_slots || !tok->cache_keys || !tok->cache_ids) {
        nn_tokenizer_free(tok);
        return dci_err(DC_ENOMEM, "%s: out of memory", label);
    }
    memset(tok->vocab_slots, 0xff, VOCAB_SLOTS * sizeof *tok->vocab_slots);
    for (size_t i = 0; i < PAIR_SLOTS; i++)
        tok->pair_slots[i].rank = -1;

    int status = build_vocabulary(tok, label, text, size);
    if (status != DC_OK) {
        nn_tokenizer_free(tok);
        return status;
    }
    *out = tok;
    return DC_OK;
}

int nn_tokenizer_load(nn_tokenizer **out, const char *path)
{
    *out = NULL;
    if (!path)
        return dci_err(DC_EINVAL, "vocabulary path is NULL");
    char *text;
    size_t size;
    DCI_TRY(read_gzip(path, &text, &size));
    int status = nn_tokenizer_load_text(out, text, size, path);
    free(text);
    return status;
}

void nn_tokenizer_free(nn_tokenizer *tok)
{
    if (!tok)
        return;
    free(tok->strings);
    free(tok->string_offset);
    free(tok->string_size);
    free(tok->vocab_slots);
    free(tok->pair_slots);
    free(tok->cache_slots);
    free(tok->cache_keys);
    free(tok->cache_ids);
    free(tok->symbol);
    free(tok->prev);
    free(tok->next);
    free(tok->merged_at);
    free(tok->heap);
    free(tok->word_ids);
    free(tok->piece);
    free(tok);
}

/* ---- BPE of one word ---- */

static int grow_scratch(nn_tokenizer *tok, size_t size)
{
    if (size <= tok->scratch_cap)
        return DC_OK;
    size_t cap = size > 2 * tok->scratch_cap ? size : 2 * tok->scratch_cap;
    int32_t *symbol = realloc(tok->symbol, cap * sizeof *symbol);
    if (symbol)
        tok->symbol = symbol;
    uint32_t *prev = realloc(tok->prev, cap * sizeof *prev);
    if (prev)
        tok->prev = prev;
    uint32_t *next = realloc(tok->next, cap * sizeof *next);
    if (next)
        tok->next = next;
    uint32_t *merged_at = realloc(tok->merged_at, cap * sizeof *merged_at);
    if (merged_at)
        tok->merged_at = merged_at;
    /* every merge pushes two pairs at most: n-1 + 2(n-1) entries */
    heap_entry *heap = realloc(tok->heap, 3 * cap * sizeof *heap);
    if (heap)
        tok->heap = heap;
    int32_t *word_ids = realloc(tok->word_ids, cap * sizeof *word_ids);
    if (word_ids)
        tok->word_ids = word_ids;
    if (!symbol || !prev || !next || !merged_at || !heap || !word_ids)
        return dci_err(DC_ENOMEM, "out of memory for a word of %zu bytes", size);
    tok->scratch_cap = cap;
    return DC_OK;
}

static int heap_before(const heap_entry *a, const heap_entry *b)
{
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static void heap_push(heap_entry *heap, size_t *count, heap_entry entry)
{
    size_t i = (*count)++;
    while (i > 0 && heap_before(&entry, &heap[(i - 1) / 2])) {
        heap[i] = heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    heap[i] = entry;
}

static heap_entry heap_pop(heap_entry *heap, size_t *count)
{
    heap_entry top = heap[0], last = heap[--*count];
    size_t i = 0, n = *count;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= n)
            break;
        if (child + 1 < n && heap_before(&heap[child + 1], &heap[child]))
            child++;
        if (!heap_before(&heap[child], &last))
            break;
        heap[i] = heap[child];
        i = child;
    }
    if (n > 0)
        heap[i] = last;
    return top;
}

/* Pushes the pair starting at `pos` if it has a rank. */
static void push_pair(nn_tokenizer *tok, size_t *heap_count, uint32_t pos)
{
    uint32_t right = tok->next[pos];
    if (right == NO_SYMBOL)
        return;
    const pair_slot *pair = find_pair(tok, tok->symbol[pos], tok->symbol[right]);
    if (pair->rank >= 0)
        heap_push(tok->heap, heap_count,
                  (heap_entry){pair->rank, pos, tok->symbol[pos], tok->symbol[right]});
}

/* The reference's bpe(): repeatedly take the lowest-ranked pair present and merge all of its
 * occurrences left to right. Here a heap ordered by (rank, position) yields one rank's
 * occurrences left to right; the pairs those merges create are pushed only after the whole
 * rank is done, since one of them may rank lower and must not cut in. A merge never
 * recreates its own pair (no symbol is empty), so a rank is done once popped. */
static int bpe_word(nn_tokenizer *tok, const unsigned char *word, size_t size, size_t *count)
{
    DCI_TRY(grow_scratch(tok, size));
    for (size_t i = 0; i < size; i++) {
        tok->symbol[i] = i + 1 < size ? tok->byte_id[word[i]] : tok->byte_end_id[word[i]];
        tok->prev[i] = i ? (uint32_t)i - 1 : NO_SYMBOL;
        tok->next[i] = i + 1 < size ? (uint32_t)i + 1 : NO_SYMBOL;
    }
    size_t heap_count = 0;
    for (size_t i = 0; i + 1 < size; i++)
        push_pair(tok, &heap_count, (uint32_t)i);
    while (heap_count > 0) {
        int32_t rank = tok->heap[0].rank;
        size_t merged = 0;
        while (heap_count > 0 && tok->heap[0].rank == rank) {
            heap_entry e = heap_pop(tok->heap, &heap_count);
            uint32_t right = tok->next[e.pos];
            /* stale: a symbol of the pair was merged into another since it was pushed */
            if (tok->symbol[e.pos] != e.left || right == NO_SYMBOL ||
                tok->symbol[right] != e.right)
                continue;
            tok->symbol[e.pos] = find_pair(tok, e.left, e.right)->merged;
            tok->next[e.pos] = tok->next[right];
            if (tok->next[right] != NO_SYMBOL)
                tok->prev[tok->next[right]] = e.pos;
            tok->symbol[right] = -1;  /* merged away */
            tok->merged_at[merged++] = e.pos;
        }
        for (size_t k = 0; k < merged; k++) {
            uint32_t pos = tok->merged_at[k];
            if (tok->prev[pos] != NO_SYMBOL)
                push_pair(tok, &heap_count, tok->prev[pos]);
            push_pair(tok, &heap_count, pos);
        }
    }
    size_t n = 0;
    for (uint32_t pos = 0; pos != NO_SYMBOL; pos = tok->next[pos])
        tok->word_ids[n++] = tok->symbol[pos];
    *count = n;
    return DC_OK;
}

/* ---- the word cache ---- */

static cache_slot *cache_find(nn_tokenizer *tok, const char *word, size_t size, uint32_t hash)
{
    size_t slot = hash & (CACHE_SLOTS - 1);
    for (;;) {
        cache_slot *c = &tok->cache_slots[slot];
        if (c->key_size == 0 || (c->hash == hash && c->key_size == size &&
                                 memcmp(tok->cache_keys + c->key_offset, word, size) == 0))
            return c;
        slot = (slot + 1) & (CACHE_SLOTS - 1);
    }
}

static void cache_store(nn_tokenizer *tok, const char *word, size_t size, uint32_t hash,
                        const int32_t *ids, size_t count)
{
    if (tok->cache_entries == CACHE_MAX_ENTRIES) {
        memset(tok->cache_slots, 0, CACHE_SLOTS * sizeof *tok->cache_slots);
        tok->cache_entries = tok->cache_key_used = tok->cache_ids_used = 0;
    }
    cache_slot *c = cache_find(tok, word, size, hash);
    *c = (cache_slot){hash, (uint16_t)size, (uint16_t)count, (uint32_t)tok->cache_key_used,
                      (uint32_t)tok->cache_ids_used};
    memcpy(tok->cache_keys + tok->cache_key_used, word, size);
    memcpy(tok->cache_ids + tok->cache_ids_used, ids, count * sizeof *ids);
    tok->cache_key_used += size;
    tok->cache_ids_used += count;  /* count <= size: at most one symbol per byte */
    tok->cache_entries++;
}

/* The ids of one piece of the split pattern (its UTF-8 bytes). */
static int encode_piece(nn_tokenizer *tok, const char *piece, size_t size,
                        const int32_t **ids, size_t *count)
{
    /* the reference's cache starts with these two, so they are never split */
    if (size == strlen(start_text) && memcmp(piece, start_text, size) == 0) {
        *ids = &tok->start_id;
        *count = 1;
        return DC_OK;
    }
    if (size == strlen(end_text) && memcmp(piece, end_text, size) == 0) {
        *ids = &tok->end_id;
        *count = 1;
        return DC_OK;
    }
    uint32_t hash = (uint32_t)hash_bytes(piece, size);
    if (size <= CACHE_MAX_PIECE) {
        const cache_slot *c = cache_find(tok, piece, size, hash);
        if (c->key_size) {
            *ids = tok->cache_ids + c->ids_offset;
            *count = c->id_count;
            return DC_OK;
        }
    }
    DCI_TRY(bpe_word(tok, (const unsigned char *)piece, size, count));
    *ids = tok->word_ids;
    if (size <= CACHE_MAX_PIECE)
        cache_store(tok, piece, size, hash, tok->word_ids, *count);
    return DC_OK;
}

int nn_tokenizer_encode(nn_tokenizer *tok, const char *text, int32_t *ids, size_t cap,
                        size_t *count)
{
    *count = 0;
    size_t size = strlen(text);
    if (size > MAX_TEXT_BYTES)
        return dci_err(DC_EINVAL, "text of %zu bytes is longer than %zu", size,
                       MAX_TEXT_BYTES);
    uint32_t *decoded, *clean = NULL;
    size_t decoded_count, clean_count;
    DCI_TRY(nn_utf8_decode(text, size, &decoded, &decoded_count));
    int status = nn_text_clean(decoded, decoded_count, &clean, &clean_count);
    free(decoded);
    if (status != DC_OK)
        return status;
    /* a piece is at most the whole text: 4 bytes a code point */
    if (4 * clean_count > tok->piece_cap) {
        char *piece = realloc(tok->piece, 4 * clean_count);
        if (!piece) {
            free(clean);
            return dci_err(DC_ENOMEM, "out of memory for a text of %zu bytes", size);
        }
        tok->piece = piece;
        tok->piece_cap = 4 * clean_count;
    }
    size_t total = 0, pos = 0, start, end;
    while (total <= cap && nn_text_next_piece(clean, clean_count, &pos, &start, &end)) {
        size_t piece_size = nn_utf8_encode(clean + start, end - start, tok->piece);
        const int32_t *piece_ids;
        size_t piece_count;
        status = encode_piece(tok, tok->piece, piece_size, &piece_ids, &piece_count);
        if (status != DC_OK)
            break;
        for (size_t k = 0; k < piece_count; k++, total++)
            if (total < cap)
                ids[total] = piece_ids[k];
    }
    free(clean);
    *count = total;
    return status;
}

int nn_tokenize(nn_tokenizer *tok, const char *const *texts, size_t count, int context,
                int truncate, int64_t *out)
{
    if (context < 1)
        return dci_err(DC_EINVAL, "context length %d is not positive", context);
    int32_t *ids = malloc((size_t)context * sizeof *ids);
    if (!ids)
        return dci_err(DC_ENOMEM, "out of memory for context length %d", context);
    int status = DC_OK;
    for (size_t i = 0; i < count && status == DC_OK; i++) {
        char label[48];
        snprintf(label, sizeof label, "text %zu", i);
        if (!texts[i]) {
            status = dci_err(DC_EINVAL, "%s is NULL", label);
            break;
        }
        size_t n;
        status = nn_tokenizer_encode(tok, texts[i], ids, (size_t)context, &n);
        if (status != DC_OK) {
            dci_err_prefix(status, label);
            break;
        }
        /* the sequence is start, ids[0..n), end */
        size_t total = n + 2, len = total < (size_t)context ? total : (size_t)context;
        if (total > (size_t)context && !truncate) {
            status = dci_err(DC_EINVAL, "%s is too long for context length %d", label, context);
            break;
        }
        int64_t *row = out + i * (size_t)context;
        memset(row, 0, (size_t)context * sizeof *row);
        row[0] = tok->start_id;
        for (size_t k = 1; k < len; k++)
            row[k] = k <= n ? ids[k - 1] : tok->end_id;
        row[len - 1] = tok->end_id;
    }
    free(ids);
    return status;
}
