/* CLIP's byte-level BPE tokenizer: openai/CLIP simple_tokenizer.py and clip.tokenize, giving
 * the same token ids (text cleaning without ftfy: see tokenizer_text.h).
 *
 * A tokenizer is used by one thread at a time (it keeps a cache of encoded words). */
#ifndef DC_SRC_NN_TOKENIZER_H
#define DC_SRC_NN_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

/* The reference reads merges lines[1 : 49152-256-2+1] of the vocabulary file. */
#define NN_TOKENIZER_MERGES (49152 - 256 - 2)
/* 256 byte symbols, the same with "</w>", the merges, <|startoftext|>, <|endoftext|>. */
#define NN_TOKENIZER_VOCAB_SIZE (512 + NN_TOKENIZER_MERGES + 2)
/* Bounds on a vocabulary file (the published one is 3.2 MB, 129 bytes at most a line). */
#define NN_TOKENIZER_MAX_FILE_BYTES (64u << 20)
#define NN_TOKENIZER_MAX_LINE_BYTES 1024u

typedef struct nn_tokenizer nn_tokenizer;

/* Reads bpe_simple_vocab_16e6.txt.gz (gzip; UTF-8 lines, "#version" header, then "a b"
 * merges). DC_EIO if it cannot be read, DC_EFORMAT naming the file and line if malformed. */
int nn_tokenizer_load(nn_tokenizer **out, const char *path);
/* The same from the decompressed text of such a file; `label` names it in messages. */
int nn_tokenizer_load_text(nn_tokenizer **out, const char *text, size_t size,
                           const char *label);
void nn_tokenizer_free(nn_tokenizer *tok);

/* The id of the vocabulary symbol spelled by `size` bytes (UTF-8, byte symbols as
 * bytes_to_unicode spells them, e.g. "a</w>"), or -1. */
int32_t nn_tokenizer_lookup(const nn_tokenizer *tok, const char *symbol, size_t size);

/* The BPE ids of the UTF-8 `text` (NUL-terminated), without start and end tokens. Writes at
 * most `cap` ids; *count is their number, or more than `cap` when the text needs more (then
 * encoding stopped early). DC_EINVAL for invalid UTF-8. */
int nn_tokenizer_encode(nn_tokenizer *tok, const char *text, int32_t *ids, size_t cap,
                        size_t *count);

/* clip.tokenize: row i of `out` ([count, context]) is <|startoftext|>, the ids of texts[i],
 * <|endoftext|>, then zeros. A text needing more than `context` tokens is an error
 * (DC_EINVAL naming its index) unless `truncate`, which keeps the first `context` tokens and
 * makes the last one <|endoftext|>. */
int nn_tokenize(nn_tokenizer *tok, const char *const *texts, size_t count, int context,
                int truncate, int64_t *out);

#endif
