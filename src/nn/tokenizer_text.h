/* Text cleaning and splitting of the CLIP tokenizer (openai/CLIP simple_tokenizer.py), on
 * arrays of Unicode code points.
 *
 * The reference cleans text with ftfy.fix_text first. That is NOT reproduced: ftfy repairs
 * mojibake heuristically and also straightens curly quotes, folds ligatures and full-width
 * forms and applies NFC, so text that ftfy would change (e.g. "it’s" with U+2019, "ﬁ",
 * "Ａ", mis-decoded UTF-8) can give different tokens. Clean text (already NFC, straight
 * quotes) tokenizes identically. */
#ifndef DC_SRC_NN_TOKENIZER_TEXT_H
#define DC_SRC_NN_TOKENIZER_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "tokenizer_tables.h"

/* Strict UTF-8: no overlong forms, surrogates or code points above U+10FFFF. Decodes the
 * code point at text[*pos] and advances *pos past it; returns 0 (nothing changed) if the
 * bytes there are not valid UTF-8 or *pos == size. */
int nn_utf8_next(const char *text, size_t size, size_t *pos, uint32_t *code_point);
/* `size` bytes of UTF-8 into a malloc'd array; DC_EINVAL naming the byte offset when
 * invalid. */
int nn_utf8_decode(const char *text, size_t size, uint32_t **out, size_t *count);
/* Writes the UTF-8 of `count` valid code points to `out` (at least 4 * count bytes) and
 * returns the number of bytes. */
size_t nn_utf8_encode(const uint32_t *text, size_t count, char *out);

/* Python's html.unescape: numeric and HTML5 named character references. Writes at most
 * `count` code points to `out` (it never lengthens the text) and returns how many. */
size_t nn_html_unescape(const uint32_t *text, size_t count, uint32_t *out);
/* Python's str.lower(): full lowercase mapping and the final-sigma rule. `out` holds at least
 * NN_LOWER_MAX * count code points; returns how many were written. */
size_t nn_text_lower(const uint32_t *text, size_t count, uint32_t *out);
/* The reference's text pipeline without ftfy: html.unescape twice, strip, runs of whitespace
 * to one space, strip, lower. `*out` is malloc'd. */
int nn_text_clean(const uint32_t *text, size_t count, uint32_t **out, size_t *out_count);

/* Python's str.isspace() (what str.strip removes). */
int nn_is_python_space(uint32_t code_point);
/* The class of `code_point` for the split pattern (NN_CHAR_*). */
int nn_char_class(uint32_t code_point);
/* The next match of the split pattern
 *   <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
 * (IGNORECASE) in text[*pos, count): returns 1 and sets [*start, *end) and *pos = *end, or
 * returns 0 when there is none. */
int nn_text_next_piece(const uint32_t *text, size_t count, size_t *pos, size_t *start,
                       size_t *end);

#endif
