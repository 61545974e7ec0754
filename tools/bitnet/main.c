/* bitnet: the command-line front end.  Every subcommand uses only the public API (bitnet.h). */
#include <stdio.h>
#include <string.h>

#include "bitnet.h"
#include "cli.h"

typedef struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"info", cmd_info, "show a GGUF file's metadata, tensors and sizes; --system: this machine"},
    {"tokenize", cmd_tokenize, "print the token ids of a text"},
    {"detokenize", cmd_detokenize, "print the text of token ids"},
    {"run", cmd_run, "generate text from a prompt"},
    {"chat", cmd_chat, "interactive chat in the model's chat format"},
    {"eval", cmd_eval, "evaluate token ids and write their logits (cross-checking)"},
    {"gen-model", cmd_gen_model, "write a synthetic BitNet model (for tests and benchmarks)"},
    {"bench", cmd_bench, "measure prompt and generation speed (llama-bench compatible JSON)"},
    {"download", cmd_download, "download a model from Hugging Face, resumable and verified"},
    {"convert", cmd_convert, "convert a Hugging Face folder (or GGUF) to GGUF: i2_s, tq1_0, tq2_0"},
    {"perplexity", cmd_perplexity, "perplexity of a model on a text (llama.cpp's method)"},
    {"serve", cmd_serve, "OpenAI-compatible HTTP server (also installed as bitnet-server)"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: bitnet COMMAND [OPTIONS]\n\nBitNet.c %s: inference for BitNet b1.58 models.\n\ncommands:\n",
            bitnet_version());
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-11s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n'bitnet COMMAND --help' describes a command's options.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("bitnet %s\n", bitnet_version());
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "bitnet: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
