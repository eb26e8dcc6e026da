/* diffclip tokenize --vocab V [--truncate] --out T.npy [--] TEXT...: clip.tokenize. */
#include <stdio.h>
#include <stdlib.h>

#include "args.h"
#include "cli.h"

enum { CONTEXT_LENGTH = 77 };   /* clip.tokenize's default, what every CLIP model takes */

int cli_run_tokenize(int argc, char **argv)
{
    const char *usage = cli_find_command(argv[0])->usage;
    const char *vocab = NULL, *out = NULL;
    int truncate = 0;
    const cli_option options[] = {
        {"vocab", CLI_STRING, &vocab, 0},
        {"out", CLI_STRING, &out, 0},
        {"truncate", CLI_FLAG, &truncate, 0},
    };
    const char **texts = malloc((size_t)argc * sizeof *texts);
    if (!texts) {
        fprintf(stderr, "diffclip: tokenize: out of memory\n");
        return CLI_EXIT_FAILURE;
    }
    int count = 0;
    int status = cli_parse(argc, argv, options, sizeof options / sizeof *options, texts, argc,
                           &count, usage);
    static const char *const required[] = {"vocab", "out", NULL};
    if (status == 0)
        status = cli_check_required(argv[0], usage, options, sizeof options / sizeof *options,
                                    required);
    if (status == 0 && count == 0)
        status = cli_command_usage_error(argv[0], usage, "no TEXT given");
    if (status != 0) {
        free(texts);
        return status;
    }
    dc_tokenizer *tok = NULL;
    dc_tensor tokens = {0};
    if (dc_tokenizer_new(&tok, vocab) != DC_OK)
        status = cli_file_error(vocab);
    else if (dc_tokenize(tok, texts, (size_t)count, CONTEXT_LENGTH, truncate, &tokens) != DC_OK)
        status = cli_library_error();
    else if (dc_npy_write(out, &tokens) != DC_OK)
        status = cli_file_error(out);
    dc_tensor_free(&tokens);
    dc_tokenizer_free(tok);
    free(texts);
    return status;
}
