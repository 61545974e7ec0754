/* The smallest BitNet.c program: load a model, generate text, print it.
 *     simple MODEL.gguf "prompt" */
#include <stdio.h>

#include "bitnet.h"

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL.gguf PROMPT\n", argv[0]);
        return 2;
    }
    bitnet_model *model;
    if (bitnet_model_load(argv[1], NULL, &model) != BITNET_OK) {
        fprintf(stderr, "error: %s\n", bitnet_last_error());
        return 1;
    }
    bitnet_generate_params params;
    bitnet_generate_params_default(&params);
    params.max_tokens = 32;
    params.sampling.temperature = 0; /* greedy: the same text every time */
    char *text = bitnet_generate(model, argv[2], &params);
    if (!text) {
        fprintf(stderr, "error: %s\n", bitnet_last_error());
        bitnet_model_free(model);
        return 1;
    }
    printf("%s%s\n", argv[2], text);
    bitnet_free_string(text);
    bitnet_model_free(model);
    return 0;
}
