/* CLIP tokenizer: text cleaning, the split pattern, BPE, tokenize, and hostile vocabularies.
 * Expected token ids were checked against openai/CLIP's simple_tokenizer.py (without ftfy)
 * run with Python 3.11 and the `regex` module. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "harness.h"
#include "nn/tokenizer.h"
#include "nn/tokenizer_text.h"

static const char *vocab_path(char *buf, size_t size)
{
    return clip_data_path("bpe_simple_vocab_16e6.txt.gz", buf, size);
}

/* Applies `fn` (which writes at most `growth` code points per input code point) to the
 * UTF-8 `in` and compares the UTF-8 result with `expected`. */
static int text_transform_is(size_t (*fn)(const uint32_t *, size_t, uint32_t *), size_t growth,
                             const char *in, const char *expected)
{
    uint32_t *cps;
    size_t n;
    if (nn_utf8_decode(in, strlen(in), &cps, &n) != DC_OK)
        return 0;
    uint32_t *out = malloc((n + 1) * growth * sizeof *out);
    char *utf8 = malloc((n + 1) * growth * 4 + 1);
    size_t m = fn(cps, n, out);
    utf8[nn_utf8_encode(out, m, utf8)] = '\0';
    int same = strcmp(utf8, expected) == 0;
    if (!same)
        printf("  \"%s\" -> \"%s\", expected \"%s\"\n", in, utf8, expected);
    free(cps);
    free(out);
    free(utf8);
    return same;
}

static int clean_is(const char *in, const char *expected)
{
    uint32_t *cps, *clean;
    size_t n, m;
    if (nn_utf8_decode(in, strlen(in), &cps, &n) != DC_OK)
        return 0;
    int status = nn_text_clean(cps, n, &clean, &m);
    free(cps);
    if (status != DC_OK)
        return 0;
    char *utf8 = malloc(4 * m + 1);
    utf8[nn_utf8_encode(clean, m, utf8)] = '\0';
    int same = strcmp(utf8, expected) == 0;
    if (!same)
        printf("  clean \"%s\" -> \"%s\", expected \"%s\"\n", in, utf8, expected);
    free(clean);
    free(utf8);
    return same;
}

/* The split pattern's pieces of `in` (already clean), joined by '|'. */
static int pieces_are(const char *in, const char *expected)
{
    uint32_t *cps;
    size_t n, pos = 0, start, end, used = 0;
    if (nn_utf8_decode(in, strlen(in), &cps, &n) != DC_OK)
        return 0;
    char *joined = malloc(5 * n + 1);
    while (nn_text_next_piece(cps, n, &pos, &start, &end)) {
        if (used)
            joined[used++] = '|';
        used += nn_utf8_encode(cps + start, end - start, joined + used);
    }
    joined[used] = '\0';
    int same = strcmp(joined, expected) == 0;
    if (!same)
        printf("  pieces \"%s\" -> \"%s\", expected \"%s\"\n", in, joined, expected);
    free(cps);
    free(joined);
    return same;
}

TEST(utf8_is_strict)
{
    uint32_t *cps = NULL;
    size_t n;
    CHECK_OK(nn_utf8_decode("a\xC3\xA9\xE6\xBC\xA2\xF0\x9F\x98\x80", 10, &cps, &n));
    CHECK(n == 4 && cps[0] == 'a' && cps[1] == 0xE9 && cps[2] == 0x6F22 && cps[3] == 0x1F600);
    free(cps);
    const char *bad[] = {"\xC3", "\xC0\xAF", "\xE0\x80\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80",
                         "\xF8\x88\x80\x80\x80", "\x80", "ab\xE6\xBC"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        CHECK_STATUS(nn_utf8_decode(bad[i], strlen(bad[i]), &cps, &n), DC_EINVAL);
        CHECK(cps == NULL);
    }
    CHECK(strstr(dc_last_error(), "invalid UTF-8 at byte 2") != NULL);
}

TEST(html_unescape_matches_python)
{
    struct {
        const char *in, *out;
    } cases[] = {
        {"&amp;", "&"},
        {"&amp;amp;", "&amp;"},        /* one pass never rescans */
        {"&lt;3 &gt", "<3 >"},         /* legacy entity without ';' */
        {"&notin;", "\xE2\x88\x89"},
        {"&notin", "\xC2\xACin"},      /* longest prefix that is an entity */
        {"&ampx &ampx;", "&x &x;"},
        {"&bogus; &; & &#; &#x; &#xg", "&bogus; &; & &#; &#x; &#xg"},
        {"&#65;&#x42;&#X43&#0068", "ABCD"},
        {"&#0;", "\xEF\xBF\xBD"},      /* _invalid_charrefs */
        {"&#128;&#x9F;", "\xE2\x82\xAC\xC5\xB8"},
        {"&#13;", "\r"},
        {"&#xD800;&#x110000;&#99999999999999999999;", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"},
        {"a&#1;b&#xFDD0;c&#x10FFFF;d&#x10FFFD;", "abcd\xF4\x8F\xBF\xBD"},  /* _invalid_codepoints */
        {"&Sigma;&nbsp;&NotNestedGreaterGreater;", "\xCE\xA3\xC2\xA0\xE2\xAA\xA2\xCC\xB8"},
        {"&aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaamp;", "&aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaamp;"},
        {"&\xC3\xA9t\xC3\xA9;", "&\xC3\xA9t\xC3\xA9;"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        CHECKF(text_transform_is(nn_html_unescape, 1, cases[i].in, cases[i].out), "case %zu", i);
}

TEST(lower_matches_python_str_lower)
{
    struct {
        const char *in, *out;
    } cases[] = {
        {"MiXeD ASCII 123", "mixed ascii 123"},
        {"\xC4\xB0stanbul", "i\xCC\x87stanbul"},          /* U+0130 -> i + U+0307 */
        {"\xCE\x91\xCE\xA3", "\xCE\xB1\xCF\x82"},         /* final sigma */
        {"\xCE\x91\xCE\xA3\xCE\x91", "\xCE\xB1\xCF\x83\xCE\xB1"},
        {"\xCE\xA3", "\xCF\x83"},                         /* nothing cased before it */
        {"\xCE\x91\xCE\xA3'", "\xCE\xB1\xCF\x82'"},       /* "'" is case-ignorable */
        {"\xCE\x91\xCE\xA3'\xCE\x91", "\xCE\xB1\xCF\x83'\xCE\xB1"},
        {"\xE1\xBA\x9E \xE2\x84\xA6 \xE2\x84\xAA \xD0\x96", "\xC3\x9F \xCF\x89 k \xD0\xB6"},
        {"\xC3\x9F \xEF\xAC\x81", "\xC3\x9F \xEF\xAC\x81"},  /* no lowercase change */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        CHECKF(text_transform_is(nn_text_lower, NN_LOWER_MAX, cases[i].in, cases[i].out),
               "case %zu", i);
}

TEST(clean_unescapes_twice_collapses_whitespace_and_lowers)
{
    CHECK(clean_is("  Hello   World\twith\n\n spaces  ", "hello world with spaces"));
    CHECK(clean_is("&amp;amp; &#38;lt;", "& <"));
    CHECK(clean_is("a&nbsp;&nbsp;b", "a b"));                       /* U+00A0 is \s */
    CHECK(clean_is("\x1c a \x1c b \x1c", "a \x1c b"));              /* strip-only space */
    CHECK(clean_is("x\xE3\x80\x80\xE2\x80\x83y", "x y"));
    CHECK(clean_is("\xE2\x80\x8Bzero width\xE2\x80\x8B", "\xE2\x80\x8Bzero width\xE2\x80\x8B"));
    CHECK(clean_is(" \t\n", ""));
}

TEST(split_pattern_pieces)
{
    CHECK(pieces_are("it's can't we're i've i'm you'll he'd", 
                     "it|'s|can|'t|we|'re|i|'ve|i|'m|you|'ll|he|'d"));
    CHECK(pieces_are("'sam 'x !'s", "'s|am|'|x|!'|s"));
    CHECK(pieces_are("2023 12ab", "2|0|2|3|1|2|ab"));
    CHECK(pieces_are("hi!!? ...", "hi|!!?|..."));
    CHECK(pieces_are("caf\xC3\xA9 \xD0\xBF\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82 \xE6\xBC\xA2\xE5\xAD\x97",
                     "caf\xC3\xA9|\xD0\xBF\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82|\xE6\xBC\xA2\xE5\xAD\x97"));
    CHECK(pieces_are("\xF0\x9F\x98\x80\xF0\x9F\x98\x80x", "\xF0\x9F\x98\x80\xF0\x9F\x98\x80|x"));
    CHECK(pieces_are("<|endoftext|>a<|startoftext|>", "<|endoftext|>|a|<|startoftext|>"));
    CHECK(pieces_are("x<|endoftext|", "x|<||endoftext||"));
    /* IGNORECASE: U+017F folds to 's'; U+0345 is a case variant of iota, so no alternative
     * matches it; U+2163 (roman numeral, Nl) is a number */
    CHECK(pieces_are("it'\xC5\xBF", "it|'\xC5\xBF"));
    CHECK(pieces_are("a\xCD\x85\xCD\x85" "b!\xCD\x85!", "a|b|!|!"));
    CHECK(pieces_are("\xE2\x85\xA3\xE2\x85\xA3", "\xE2\x85\xA3|\xE2\x85\xA3"));
}

TEST(byte_symbol_ids)
{
    char path[1024];
    if (!vocab_path(path, sizeof path))
        return;
    nn_tokenizer *tok;
    CHECK_OK(nn_tokenizer_load(&tok, path));
    CHECK(nn_tokenizer_lookup(tok, "!", 1) == 0);
    CHECK(nn_tokenizer_lookup(tok, "a", 1) == 64);
    CHECK(nn_tokenizer_lookup(tok, "a</w>", 5) == 320);
    CHECK(nn_tokenizer_lookup(tok, "\xC4\x80", 2) == 188);      /* byte 0 is U+0100 */
    CHECK(nn_tokenizer_lookup(tok, "\xC5\x83</w>", 6) == 511);  /* byte 173 is U+0143 */
    CHECK(nn_tokenizer_lookup(tok, "<|startoftext|>", 15) == 49406);
    CHECK(nn_tokenizer_lookup(tok, "<|endoftext|>", 13) == 49407);
    CHECK(nn_tokenizer_lookup(tok, "</w>", 4) == -1);
    nn_tokenizer_free(tok);
}

TEST(encode_matches_reference)
{
    static const struct {
        const char *text;
        size_t count;
        int32_t ids[64];
    } cases[] = {
        {"a", 1, {320}},
        {"", 0, {0}},
        {"\341\274\210\316\270\341\277\206\316\275\316\261\316\271 \316\221\316\230\316\227\316\235\316\221\316\243",
         26, {157, 120, 222, 138, 116, 157, 123, 228, 138, 121, 138, 109, 138, 373, 138, 109, 138,
              116, 138, 115, 138, 121, 138, 109, 139, 480}},
        {"\304\260stanbul'da \305\277's It'S",
         10, {328, 16384, 11231, 1896, 320, 129, 379, 568, 585, 568}},
        {"\320\237\321\200\320\270\320\262\320\265\321\202, \320\274\320\270\321\200! 123",
         16, {26302, 16370, 29503, 110, 22176, 141, 480, 267, 38018, 16701, 141, 478, 256, 272, 273,
              274}},
        {"\346\235\261\344\272\254\343\202\277\343\203\257\343\203\274\360\237\227\274 &amp;amp; &lt;3 &notin",
         15, {48338, 21078, 105, 34941, 2429, 107, 30391, 7045, 376, 261, 283, 274, 126, 361, 530}},
        {"na\303\257ve caf\303\251 \342\200\224 D\303\251j\303\240 vu",
         9, {1097, 35689, 563, 15304, 2005, 25466, 73, 21259, 13230}},
        {"x\315\205y \343\200\200\342\200\203 \034 z\302\240", 4, {343, 344, 472, 345}},
        {"The quick brown fox jumps over the lazy dog; pack my box with five dozen liquor jugs! "
         "Sphinx of black quartz, judge my vow. 1234567890 #hashtag @user "
         "https://example.com/path\077q=1&r=2 <|startoftext|>STOP<|ENDOFTEXT|>",
         61, {518, 3712, 2866, 3240, 18911, 962, 518, 10753, 1929, 282, 3420, 607, 2063, 593,
              3127, 16401, 17828, 669, 1345, 256, 46487, 539, 1449, 17752, 267, 5656, 607, 34787,
              269, 272, 273, 274, 275, 276, 277, 278, 279, 280, 271, 258, 9238, 287, 7031, 30901,
              12441, 6228, 269, 2464, 270, 5035, 286, 336, 284, 272, 261, 337, 284, 273, 49406,
              1691, 49407}},
    };
    char path[1024];
    if (!vocab_path(path, sizeof path))
        return;
    nn_tokenizer *tok;
    CHECK_OK(nn_tokenizer_load(&tok, path));
    int32_t ids[64];
    for (int round = 0; round < 2; round++) {  /* the second round reads the word cache */
        for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
            size_t n;
            CHECK_OK(nn_tokenizer_encode(tok, cases[i].text, ids, 64, &n));
            CHECKF(n == cases[i].count, "case %zu: %zu ids, expected %zu", i, n, cases[i].count);
            CHECKF(memcmp(ids, cases[i].ids, n * sizeof *ids) == 0, "case %zu differs", i);
        }
    }
    /* stopping early: more ids than the capacity */
    size_t n;
    CHECK_OK(nn_tokenizer_encode(tok, cases[8].text, ids, 10, &n));
    CHECK(n > 10 && memcmp(ids, cases[8].ids, 10 * sizeof *ids) == 0);
    CHECK_STATUS(nn_tokenizer_encode(tok, "ok \xFF", ids, 64, &n), DC_EINVAL);
    nn_tokenizer_free(tok);
}

TEST(tokenize_pads_truncates_and_refuses_long_texts)
{
    char path[1024];
    if (!vocab_path(path, sizeof path))
        return;
    dc_tokenizer *tok;
    CHECK_OK(dc_tokenizer_new(&tok, path));
    char long_text[2 * 80 + 1];
    for (int i = 0; i < 80; i++)
        memcpy(long_text + 2 * i, "a ", 2);
    long_text[160] = '\0';
    const char *texts[] = {"a photo of a cat", long_text};
    dc_tensor t;
    CHECK_STATUS(dc_tokenize(tok, texts, 2, 77, 0, &t), DC_EINVAL);
    CHECK(strstr(dc_last_error(), "text 1 is too long for context length 77") != NULL);
    CHECK(t.data == NULL);
    CHECK_OK(dc_tokenize(tok, texts, 2, 77, 1, &t));
    const int64_t *row = t.data;
    CHECK(t.dtype == DC_INT64 && t.ndim == 2 && t.shape[0] == 2 && t.shape[1] == 77);
    const int64_t first[] = {49406, 320, 1125, 539, 320, 2368, 49407, 0};
    CHECK(memcmp(row, first, sizeof first) == 0 && row[76] == 0);
    CHECK(row[77] == 49406 && row[78] == 320 && row[152] == 320 && row[153] == 49407);
    dc_tensor_free(&t);

    /* 75 ids fit exactly; context 1 keeps only the end token */
    long_text[2 * 75] = '\0';
    const char *exact[] = {long_text};
    CHECK_OK(dc_tokenize(tok, exact, 1, 77, 0, &t));
    CHECK(((int64_t *)t.data)[75] == 320 && ((int64_t *)t.data)[76] == 49407);
    dc_tensor_free(&t);
    CHECK_OK(dc_tokenize(tok, exact, 1, 1, 1, &t));
    CHECK(t.shape[1] == 1 && ((int64_t *)t.data)[0] == 49407);
    dc_tensor_free(&t);

    const char *invalid[] = {"fine", "bad \xC3("};
    CHECK_STATUS(dc_tokenize(tok, invalid, 2, 77, 1, &t), DC_EINVAL);
    CHECK(strstr(dc_last_error(), "text 1: invalid UTF-8 at byte 4") != NULL);
    const char *null_text[] = {NULL};
    CHECK_STATUS(dc_tokenize(tok, null_text, 1, 77, 1, &t), DC_EINVAL);
    CHECK_STATUS(dc_tokenize(tok, texts, 2, 0, 1, &t), DC_EINVAL);
    CHECK_STATUS(dc_tokenize(NULL, texts, 2, 77, 1, &t), DC_EINVAL);
    CHECK_OK(dc_tokenize(tok, NULL, 0, 77, 1, &t));
    CHECK(t.shape[0] == 0 && t.shape[1] == 77);
    dc_tensor_free(&t);
    dc_tokenizer_free(tok);
    dc_tokenizer_free(NULL);
}

/* ---- vocabularies made here ---- */

/* Writes `size` bytes to `name` in the test directory, gzip-compressed if `gzip`. */
static const char *write_file(const char *name, const void *data, size_t size, int gzip,
                              char *path, size_t path_size)
{
    path_join(path, path_size, test_tmpdir(), name);
    if (gzip) {
        gzFile gz = gzopen(path, "wb1");
        if (!gz || (size && gzwrite(gz, data, (unsigned)size) != (int)size) ||
            gzclose(gz) != Z_OK)
            return NULL;
    } else {
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
            return NULL;
    }
    return path;
}

/* A vocabulary of the right shape: `first` merge lines, then filler merges whose halves are
 * no symbols (so they never apply). `merges` lines in all. */
static char *synthetic_vocabulary(const char *first, size_t merges, size_t *size)
{
    size_t cap = strlen(first) + 32 * (merges + 2);
    char *text = malloc(cap);
    size_t n = (size_t)sprintf(text, "#version: 0.2\n%s", first);
    size_t lines = 0;
    for (const char *p = first; *p; p++)
        lines += *p == '\n';
    for (size_t r = lines; r < merges; r++)
        n += (size_t)sprintf(text + n, "q%zu z%zu\n", r, r);
    *size = n;
    return text;
}

TEST(bpe_merges_one_rank_everywhere_before_the_next)
{
    /* rank 0 joins "ab"+"a", rank 1 joins "a"+"b"; "aba" is spelled again by rank 2, whose
     * id (514) wins. In "ababx" all "a b" pairs merge before "ab a" can, as in the
     * reference; in "abab" the "ab a" pair then exists. */
    size_t size;
    char *text = synthetic_vocabulary("ab a\na b\na ba\n", NN_TOKENIZER_MERGES, &size);
    char path[1024];
    CHECK(write_file("synthetic.txt.gz", text, size, 1, path, sizeof path));
    free(text);
    nn_tokenizer *tok;
    CHECK_OK(nn_tokenizer_load(&tok, path));
    int32_t ids[8];
    size_t n;
    CHECK_OK(nn_tokenizer_encode(tok, "ababx", ids, 8, &n));
    CHECK(n == 3 && ids[0] == 513 && ids[1] == 513 && ids[2] == 343);
    CHECK_OK(nn_tokenizer_encode(tok, "abab", ids, 8, &n));
    CHECK(n == 2 && ids[0] == 514 && ids[1] == 321);
    CHECK(nn_tokenizer_lookup(tok, "aba", 3) == 514);
    nn_tokenizer_free(tok);
}

static void check_refused(const char *name, const void *data, size_t size, int gzip,
                          int status, const char *message)
{
    char path[1024];
    nn_tokenizer *tok = (nn_tokenizer *)1;
    CHECK(write_file(name, data, size, gzip, path, sizeof path));
    CHECK_STATUS(nn_tokenizer_load(&tok, path), status);
    CHECK(tok == NULL);
    CHECKF(strstr(dc_last_error(), message) && strstr(dc_last_error(), name),
           "%s: message \"%s\" lacks \"%s\"", name, dc_last_error(), message);
}

TEST(hostile_vocabularies_are_refused)
{
    nn_tokenizer *tok;
    CHECK_STATUS(nn_tokenizer_load(&tok, "/nonexistent/vocab.txt.gz"), DC_EIO);
    check_refused("empty.gz", "", 0, 0, DC_EFORMAT, "");
    check_refused("plain.txt", "#version: 0.2\na b\n", 17, 0, DC_EFORMAT, "not a gzip file");
    const unsigned char junk[] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xde, 0xad, 0xbe, 0xef};
    check_refused("junk.gz", junk, sizeof junk, 0, DC_EFORMAT, "");
    check_refused("empty_gzip.gz", "", 0, 1, DC_EFORMAT, "no merges");
    check_refused("header_only.gz", "#version: 0.2\n", 14, 1, DC_EFORMAT, "truncated");

    size_t size;
    char *good = synthetic_vocabulary("", NN_TOKENIZER_MERGES, &size);
    const char *half = memchr(good + size / 2, '\n', size - size / 2);  /* cut after a line */
    check_refused("short.gz", good, (size_t)(half + 1 - good), 1, DC_EFORMAT, "truncated");

    /* the gzip stream itself cut short, and its checksum broken */
    char path[1024];
    CHECK(write_file("whole.gz", good, size, 1, path, sizeof path));
    FILE *f = fopen(path, "rb");
    CHECK(f);
    unsigned char *gz = malloc(1 << 20);
    size_t gz_size = fread(gz, 1, 1 << 20, f);
    fclose(f);
    CHECK(gz_size > 100 && gz_size < (1 << 20));
    check_refused("cut.gz", gz, gz_size / 2, 0, DC_EFORMAT, "unexpected end of file");
    gz[gz_size - 6] ^= 0xff;
    check_refused("crc.gz", gz, gz_size, 0, DC_EFORMAT, "incorrect data check");
    free(gz);
    free(good);

    struct {
        const char *name, *first, *message;
    } lines[] = {
        {"two_spaces.gz", "a b c\n", "line 2 is not two symbols"},
        {"no_space.gz", "ab\n", "line 2 is not two symbols"},
        {"empty_half.gz", "a b\n b\n", "line 3 is not two symbols"},
        {"blank_line.gz", "a b\n\n", "line 3 is not two symbols"},
        {"tab.gz", "a\tb x\n", "line 2 has whitespace"},
        {"crlf.gz", "a b\r\n", "line 2 has whitespace"},
        {"nbsp.gz", "a b\xC2\xA0\n", "line 2 has whitespace"},
        {"utf8.gz", "a b\xC3\n", "invalid UTF-8"},
    };
    for (size_t i = 0; i < sizeof lines / sizeof *lines; i++) {
        char *text = synthetic_vocabulary(lines[i].first, NN_TOKENIZER_MERGES, &size);
        check_refused(lines[i].name, text, size, 1, DC_EFORMAT, lines[i].message);
        free(text);
        if (test_failed())
            return;
    }

    char long_line[NN_TOKENIZER_MAX_LINE_BYTES + 8];
    memset(long_line, 'a', sizeof long_line);
    memcpy(long_line + sizeof long_line - 4, " b\n", 4);
    char *text = synthetic_vocabulary(long_line, NN_TOKENIZER_MERGES, &size);
    check_refused("long_line.gz", text, size, 1, DC_EFORMAT, "longer than");
    free(text);
}

TEST(oversized_vocabulary_is_refused)
{
    /* a decompression bomb: zeros past the size limit */
    char path[1024];
    path_join(path, sizeof path, test_tmpdir(), "bomb.gz");
    gzFile gz = gzopen(path, "wb1");
    CHECK(gz);
    char *zeros = calloc(1, 1 << 20);
    for (unsigned i = 0; i <= NN_TOKENIZER_MAX_FILE_BYTES >> 20; i++)
        CHECK(gzwrite(gz, zeros, 1 << 20) == 1 << 20);
    free(zeros);
    CHECK(gzclose(gz) == Z_OK);
    nn_tokenizer *tok;
    CHECK_STATUS(nn_tokenizer_load(&tok, path), DC_EFORMAT);
    CHECK(strstr(dc_last_error(), "decompresses to more than") != NULL);
}
