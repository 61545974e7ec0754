/* bitnet gen-model: writes a synthetic BitNet b1.58 model for tests and benchmarks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bitnet.h"
#include "cli.h"

static void gen_usage(FILE *f)
{
    fprintf(f, "usage: bitnet gen-model -o OUT.gguf [options]\n\n"
               "Writes a model with random ternary weights and a synthetic tokenizer, in exactly the format of\n"
               "Microsoft's official BitNet b1.58 2B-4T GGUF file (bitnet.cpp loads it too).\n\n"
               "  -o, --output PATH        where to write (atomically)\n"
               "      --arch NAME          bitnet-b1.58 (default; the only one so far)\n"
               "      --shape S            tiny (default: 2x256, vocab 512), 2b4t (the real 2B-4T shapes),\n"
               "                           or LAYERSxHIDDEN (e.g. 4x512)\n"
               "      --type T             i2_s (default), tq1_0 or tq2_0\n"
               "      --embed-type T       f16 (default), q8_0 or f32\n"
               "      --seed N             random seed (default 1)\n"
               "  -h, --help               this help\n");
}

int cmd_gen_model(int argc, char **argv)
{
    bitnet_gen_model_params p;
    bitnet_gen_model_params_default(&p);
    const char *out = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            gen_usage(stdout);
            return 0;
        }
        if (!v) {
            fprintf(stderr, "bitnet: unknown option or missing value: '%s' (see --help)\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "-o") || !strcmp(a, "--output")) out = v;
        else if (!strcmp(a, "--arch")) p.arch = v;
        else if (!strcmp(a, "--shape")) {
            if (bitnet_gen_model_params_shape(&p, v) != BITNET_OK) {
                fprintf(stderr, "bitnet: %s\n", bitnet_last_error());
                return 2;
            }
        } else if (!strcmp(a, "--type")) {
            if (!strcmp(v, "i2_s")) p.weight_type = 36;
            else if (!strcmp(v, "tq1_0")) p.weight_type = 34;
            else if (!strcmp(v, "tq2_0")) p.weight_type = 35;
            else {
                fprintf(stderr, "bitnet: --type expects i2_s, tq1_0 or tq2_0, got '%s'\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--embed-type")) {
            if (!strcmp(v, "f16")) p.embd_type = 1;
            else if (!strcmp(v, "q8_0")) p.embd_type = 8;
            else if (!strcmp(v, "f32")) p.embd_type = 0;
            else {
                fprintf(stderr, "bitnet: --embed-type expects f16, q8_0 or f32, got '%s'\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--seed")) {
            char *end;
            p.seed = strtoull(v, &end, 10);
            if (!*v || *end) {
                fprintf(stderr, "bitnet: --seed expects a non-negative integer, got '%s'\n", v);
                return 2;
            }
        } else {
            fprintf(stderr, "bitnet: unknown option '%s' (see --help)\n", a);
            return 2;
        }
    }
    if (!out) {
        fprintf(stderr, "bitnet: gen-model needs -o OUT.gguf\n");
        return 2;
    }
    double t0 = cli_now();
    if (bitnet_gen_model(&p, out) != BITNET_OK) return cli_fail("gen-model");
    fprintf(stderr, "wrote %s (%d layers x %d, vocab %d) in %.1f s\n", out, p.n_layer, p.n_embd, p.n_vocab, cli_now() - t0);
    return 0;
}
