/* The BPE vocabulary reader (nn_tokenizer_load_text: the text inside
 * bpe_simple_vocab_16e6.txt.gz), then tokenizing with what it accepted: a hostile vocabulary
 * may merge anything into anything. */
#include "fuzz.h"
#include "nn/tokenizer.h"

#include <stdlib.h>

enum { CONTEXT = 77 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const texts[] = {
        "a photo of a face", "Angry FACE!!  with   &amp;lt;tags&gt;", "naïve café 😀 ß İ",
        "<|startoftext|>x<|endoftext|>", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "it's 1,000,000 o'clock'll've", "",
    };
    enum { TEXTS = sizeof texts / sizeof texts[0] };
    nn_tokenizer *tok;
    if (nn_tokenizer_load_text(&tok, (const char *)data, size, "fuzz-vocab.txt") != DC_OK)
        return 0;
    int64_t ids[TEXTS * CONTEXT];
    if (nn_tokenize(tok, texts, TEXTS, CONTEXT, 1, ids) == DC_OK)
        for (size_t i = 0; i < TEXTS * CONTEXT; i++)
            if (ids[i] < 0 || ids[i] >= NN_TOKENIZER_VOCAB_SIZE)
                abort();
    nn_tokenizer_free(tok);
    return 0;
}
