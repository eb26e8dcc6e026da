/* Text cleaning and BPE (nn_tokenize) of any bytes, with the published vocabulary read once
 * from $DC_CLIP_DATA/bpe_simple_vocab_16e6.txt.gz (run_fuzz.sh skips this target without it). */
#include "fuzz.h"
#include "nn/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>

enum { CONTEXT = 77 };

static nn_tokenizer *vocabulary;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *dir = getenv("DC_CLIP_DATA");
    char path[4096];
    snprintf(path, sizeof path, "%s/bpe_simple_vocab_16e6.txt.gz", dir ? dir : "../shared/clip");
    if (nn_tokenizer_load(&vocabulary, path) != DC_OK) {
        fprintf(stderr, "fuzz_tokenize: %s\n", dc_last_error());
        exit(1);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    const char *texts[1] = {text};
    int64_t ids[CONTEXT];
    for (int truncate = 0; truncate <= 1; truncate++) {
        int status = nn_tokenize(vocabulary, texts, 1, CONTEXT, truncate, ids);
        if (status == DC_OK && (ids[0] != NN_TOKENIZER_VOCAB_SIZE - 2))
            abort();   /* every row starts with <|startoftext|> */
        for (int i = 0; status == DC_OK && i < CONTEXT; i++)
            if (ids[i] < 0 || ids[i] >= NN_TOKENIZER_VOCAB_SIZE)
                abort();
    }
    free(text);
    return 0;
}
