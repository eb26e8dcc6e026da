/* Text cleaning and splitting of the CLIP tokenizer: Python's html.unescape, str.strip,
 * the `regex` module's \s, str.lower and the split pattern, from generated tables. */
#include "tokenizer_text.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"

int nn_utf8_next(const char *text, size_t size, size_t *pos, uint32_t *code_point)
{
    const unsigned char *s = (const unsigned char *)text + *pos;
    size_t avail = size - *pos, len;
    unsigned lo = 0x80, hi = 0xBF;  /* the valid range of the second byte */
    uint32_t cp;
    if (avail == 0)
        return 0;
    if (s[0] < 0x80) {
        *code_point = s[0];
        *pos += 1;
        return 1;
    } else if (s[0] >= 0xC2 && s[0] <= 0xDF) {
        len = 2, cp = s[0] & 0x1F;
    } else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
        len = 3, cp = s[0] & 0x0F;
        if (s[0] == 0xE0)
            lo = 0xA0;  /* overlong */
        else if (s[0] == 0xED)
            hi = 0x9F;  /* surrogates */
    } else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
        len = 4, cp = s[0] & 0x07;
        if (s[0] == 0xF0)
            lo = 0x90;  /* overlong */
        else if (s[0] == 0xF4)
            hi = 0x8F;  /* above U+10FFFF */
    } else {
        return 0;
    }
    if (avail < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t k = 1; k < len; k++) {
        if ((s[k] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[k] & 0x3F);
    }
    *code_point = cp;
    *pos += len;
    return 1;
}

int nn_utf8_decode(const char *text, size_t size, uint32_t **out, size_t *count)
{
    *out = NULL;
    *count = 0;
    if (size > SIZE_MAX / sizeof(uint32_t))
        return dci_err(DC_ENOMEM, "text of %zu bytes is too long", size);
    uint32_t *cps = malloc((size ? size : 1) * sizeof *cps);
    if (!cps)
        return dci_err(DC_ENOMEM, "out of memory for %zu bytes of text", size);
    size_t n = 0, pos = 0;
    while (pos < size) {
        if (!nn_utf8_next(text, size, &pos, &cps[n])) {
            free(cps);
            return dci_err(DC_EINVAL, "invalid UTF-8 at byte %zu", pos);
        }
        n++;
    }
    *out = cps;
    *count = n;
    return DC_OK;
}

size_t nn_utf8_encode(const uint32_t *text, size_t count, char *out)
{
    unsigned char *o = (unsigned char *)out;
    for (size_t i = 0; i < count; i++) {
        uint32_t c = text[i];
        if (c < 0x80) {
            *o++ = (unsigned char)c;
        } else if (c < 0x800) {
            *o++ = (unsigned char)(0xC0 | c >> 6);
            *o++ = (unsigned char)(0x80 | (c & 0x3F));
        } else if (c < 0x10000) {
            *o++ = (unsigned char)(0xE0 | c >> 12);
            *o++ = (unsigned char)(0x80 | (c >> 6 & 0x3F));
            *o++ = (unsigned char)(0x80 | (c & 0x3F));
        } else {
            *o++ = (unsigned char)(0xF0 | c >> 18);
            *o++ = (unsigned char)(0x80 | (c >> 12 & 0x3F));
            *o++ = (unsigned char)(0x80 | (c >> 6 & 0x3F));
            *o++ = (unsigned char)(0x80 | (c & 0x3F));
        }
    }
    return (size_t)(o - (unsigned char *)out);
}

static int in_ranges(const nn_range *ranges, size_t count, uint32_t cp)
{
    size_t lo = 0, hi = count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cp < ranges[mid].first)
            hi = mid;
        else if (cp > ranges[mid].last)
            lo = mid + 1;
        else
            return 1;
    }
    return 0;
}

int nn_char_class(uint32_t cp)
{
    size_t lo = 0, hi = nn_char_classes_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cp < nn_char_classes[mid].first)
            hi = mid;
        else if (cp > nn_char_classes[mid].last)
            lo = mid + 1;
        else
            return nn_char_classes[mid].char_class;
    }
    return NN_CHAR_OTHER;
}

int nn_is_python_space(uint32_t cp)
{
    return in_ranges(nn_python_space, nn_python_space_count, cp);
}

/* ---- html.unescape ---- */

/* The longest name html.unescape's pattern takes after '&' ([^\t\n\f <&#;]{1,32}). */
enum { HTML_NAME_MAX = 32 };

static int compare_entity(const void *key, const void *entry)
{
    return strcmp(key, ((const nn_html_entity *)entry)->name);
}

/* The HTML5 entity named by the `length` code points of `name`, or NULL. */
static const nn_html_entity *find_entity(const uint32_t *name, size_t length)
{
    char ascii[HTML_NAME_MAX + 2];
    for (size_t i = 0; i < length; i++) {
        if (name[i] >= 0x80)
            return NULL;  /* every entity name is ASCII */
        ascii[i] = (char)name[i];
    }
    ascii[length] = '\0';
    return bsearch(ascii, nn_html_entities, nn_html_entities_count, sizeof *nn_html_entities,
                   compare_entity);
}

static int compare_charref(const void *key, const void *entry)
{
    uint32_t number = *(const uint32_t *)key;
    uint32_t other = ((const nn_html_charref *)entry)->number;
    return number < other ? -1 : number > other;
}

/* html._replace_charref for a numeric reference (number saturated above U+10FFFF). */
static size_t numeric_charref(uint32_t number, uint32_t *out)
{
    const nn_html_charref *ref =
        bsearch(&number, nn_html_invalid_charrefs, nn_html_invalid_charrefs_count,
                sizeof *nn_html_invalid_charrefs, compare_charref);
    if (ref) {
        *out = ref->replacement;
        return 1;
    }
    if ((number >= 0xD800 && number <= 0xDFFF) || number > 0x10FFFF) {
        *out = 0xFFFD;
        return 1;
    }
    if (in_ranges(nn_html_invalid_codepoints, nn_html_invalid_codepoints_count, number))
        return 0;
    *out = number;
    return 1;
}

/* html._replace_charref for a named reference `name` (with its ';' if any): the entity, or
 * the longest entity prefix (at least 2 characters) followed by the rest, or "&" + name. */
static size_t named_charref(const uint32_t *name, size_t length, uint32_t *out)
{
    size_t n = 0;
    const nn_html_entity *entity = find_entity(name, length);
    size_t used = length;
    for (size_t prefix = length - 1; !entity && prefix >= 2; prefix--) {
        entity = find_entity(name, prefix);
        used = prefix;
    }
    if (entity) {
        for (int k = 0; k < entity->count; k++)
            out[n++] = entity->value[k];
    } else {
        out[n++] = '&';
        used = 0;
    }
    for (size_t k = used; k < length; k++)
        out[n++] = name[k];
    return n;
}

static int is_digit(uint32_t c) { return c >= '0' && c <= '9'; }

static int hex_value(uint32_t c)
{
    if (is_digit(c))
        return (int)(c - '0');
    if (c >= 'a' && c <= 'f')
        return (int)(c - 'a' + 10);
    if (c >= 'A' && c <= 'F')
        return (int)(c - 'A' + 10);
    return -1;
}

static int is_name_char(uint32_t c)
{
    return c != '\t' && c != '\n' && c != '\f' && c != ' ' && c != '<' && c != '&' &&
           c != '#' && c != ';';
}

/* Python's html.unescape matches &(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)
 * left to right and never rescans a replacement. Numbers saturate at 0x110000, which maps
 * to U+FFFD as any number above U+10FFFF does (Python raises ValueError past 4300 decimal
 * digits instead). */
size_t nn_html_unescape(const uint32_t *text, size_t count, uint32_t *out)
{
    size_t n = 0, i = 0;
    while (i < count) {
        if (text[i] != '&') {
            out[n++] = text[i++];
            continue;
        }
        size_t j = i + 1;
        if (j < count && text[j] == '#') {
            int hex = j + 1 < count && (text[j + 1] == 'x' || text[j + 1] == 'X');
            size_t k = j + 1 + (size_t)hex, digits_start = k;
            uint32_t number = 0;
            for (; k < count && (hex ? hex_value(text[k]) >= 0 : is_digit(text[k])); k++) {
                uint64_t next = (uint64_t)number * (hex ? 16 : 10) +
                                (uint32_t)(hex ? hex_value(text[k]) : (int)(text[k] - '0'));
                number = next > 0x110000 ? 0x110000 : (uint32_t)next;
            }
            /* "&#x" without hex digits is not "&#" + digits either: 'x' is no digit */
            if (k > digits_start) {
                if (k < count && text[k] == ';')
                    k++;
                n += numeric_charref(number, out + n);
                i = k;
                continue;
            }
        } else {
            size_t k = j;
            while (k < count && k - j < HTML_NAME_MAX && is_name_char(text[k]))
                k++;
            if (k > j) {
                if (k < count && text[k] == ';')
                    k++;
                n += named_charref(text + j, k - j, out + n);
                i = k;
                continue;
            }
        }
        out[n++] = text[i++];  /* a lone '&' */
    }
    return n;
}

/* ---- str.lower ---- */

static int compare_lower(const void *key, const void *entry)
{
    uint32_t cp = *(const uint32_t *)key;
    uint32_t other = ((const nn_lower_entry *)entry)->code_point;
    return cp < other ? -1 : cp > other;
}

/* CPython's handle_capital_sigma: U+03A3 becomes final sigma when a cased letter precedes
 * it and none follows it, skipping case-ignorable characters both ways. */
static int is_final_sigma(const uint32_t *text, size_t count, size_t i)
{
    size_t j = i;
    while (j > 0 && in_ranges(nn_case_ignorable, nn_case_ignorable_count, text[j - 1]))
        j--;
    if (j == 0 || !in_ranges(nn_cased, nn_cased_count, text[j - 1]))
        return 0;
    j = i + 1;
    while (j < count && in_ranges(nn_case_ignorable, nn_case_ignorable_count, text[j]))
        j++;
    return j == count || !in_ranges(nn_cased, nn_cased_count, text[j]);
}

size_t nn_text_lower(const uint32_t *text, size_t count, uint32_t *out)
{
    size_t n = 0;
    for (size_t i = 0; i < count; i++) {
        uint32_t c = text[i];
        if (c == 0x3A3) {
            out[n++] = is_final_sigma(text, count, i) ? 0x3C2 : 0x3C3;
            continue;
        }
        const nn_lower_entry *entry =
            c < 'A' ? NULL
                    : bsearch(&c, nn_lower_map, nn_lower_map_count, sizeof *nn_lower_map,
                              compare_lower);
        if (!entry) {
            out[n++] = c;
            continue;
        }
        for (int k = 0; k < entry->count; k++)
            out[n++] = entry->lower[k];
    }
    return n;
}

/* ---- the cleaning pipeline ---- */

int nn_text_clean(const uint32_t *text, size_t count, uint32_t **out, size_t *out_count)
{
    *out = NULL;
    *out_count = 0;
    if (count > SIZE_MAX / (NN_LOWER_MAX * sizeof(uint32_t)))
        return dci_err(DC_ENOMEM, "text of %zu characters is too long", count);
    size_t cap = count ? count : 1;
    uint32_t *once = malloc(cap * sizeof *once);
    uint32_t *twice = malloc(cap * sizeof *twice);
    uint32_t *lower = malloc(cap * NN_LOWER_MAX * sizeof *lower);
    if (!once || !twice || !lower) {
        free(once);
        free(twice);
        free(lower);
        return dci_err(DC_ENOMEM, "out of memory cleaning a text of %zu characters", count);
    }
    size_t n = nn_html_unescape(text, count, once);
    n = nn_html_unescape(once, n, twice);

    /* basic_clean's strip, whitespace_clean's \s+ -> ' ' (the regex module's \s is
     * White_Space, which lacks U+001C..U+001F that str.strip removes), strip again. */
    size_t start = 0, end = n;
    while (start < end && nn_is_python_space(twice[start]))
        start++;
    while (end > start && nn_is_python_space(twice[end - 1]))
        end--;
    size_t m = 0;
    for (size_t i = start; i < end; i++) {
        if (nn_char_class(twice[i]) != NN_CHAR_SPACE)
            once[m++] = twice[i];
        else if (i == start || nn_char_class(twice[i - 1]) != NN_CHAR_SPACE)
            once[m++] = ' ';  /* the first of a run */
    }
    start = 0;
    while (start < m && nn_is_python_space(once[start]))
        start++;
    while (m > start && nn_is_python_space(once[m - 1]))
        m--;

    *out_count = nn_text_lower(once + start, m - start, lower);
    *out = lower;
    free(once);
    free(twice);
    return DC_OK;
}

/* ---- the split pattern ---- */

static const char *const literal_pieces[] = {
    "<|startoftext|>", "<|endoftext|>", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d",
};

/* The ASCII lowercase letter that IGNORECASE equates with `cp`, else cp itself. */
static uint32_t fold_to_ascii(uint32_t cp)
{
    if (cp >= 'A' && cp <= 'Z')
        return cp + ('a' - 'A');
    if (cp < 0x80)
        return cp;
    for (size_t i = 0; i < nn_ascii_folds_count; i++)
        if (nn_ascii_folds[i].code_point == cp)
            return (uint32_t)(unsigned char)nn_ascii_folds[i].letter;
    return cp;
}

static size_t literal_match(const uint32_t *text, size_t count, size_t pos)
{
    for (size_t i = 0; i < sizeof literal_pieces / sizeof *literal_pieces; i++) {
        const char *lit = literal_pieces[i];
        size_t len = strlen(lit), k = 0;
        while (k < len && pos + k < count &&
               fold_to_ascii(text[pos + k]) == (uint32_t)(unsigned char)lit[k])
            k++;
        if (k == len)
            return len;
    }
    return 0;
}

int nn_text_next_piece(const uint32_t *text, size_t count, size_t *pos, size_t *start,
                       size_t *end)
{
    for (size_t p = *pos; p < count; p++) {
        size_t len = literal_match(text, count, p);
        int cls = nn_char_class(text[p]);
        if (!len && (cls == NN_CHAR_LETTER || cls == NN_CHAR_OTHER)) {
            len = 1;
            while (p + len < count && nn_char_class(text[p + len]) == cls)
                len++;
        } else if (!len && cls == NN_CHAR_NUMBER) {
            len = 1;
        }
        if (len) {
            *start = p;
            *end = *pos = p + len;
            return 1;
        }
    }
    *pos = count;
    return 0;
}
