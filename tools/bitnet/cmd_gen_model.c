/* bitnet gen-model: writes a synthetic ternary model (bitnet-b1.58, bitnet or llama) for tests and
 * benchmarks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bitnet.h"
#include "cli.h"

static void gen_usage(FILE *f)
{
    fprintf(f, "usage: bitnet gen-model -o OUT.gguf [options]\n\n"
               "Writes a model with random ternary weights and a synthetic tokenizer, in the format of the\n"
               "real files of its architecture (bitnet-b1.58: exactly Microsoft's official 2B-4T GGUF file,\n"
               "which bitnet.cpp loads too).\n\n"
               "  -o, --output PATH        where to write (atomically)\n"
               "      --arch NAME          bitnet-b1.58 (default): BitNet b1.58 2B-4T graph, tied head;\n"
               "                           bitnet: 1bitLLM bitnet_b1_58 (SiLU FFN, multi-head, tied head,\n"
               "                           SentencePiece vocabulary);\n"
               "                           llama: Llama3-8B-1.58 / Falcon3-1.58bit (SwiGLU, no sub-norms,\n"
               "                           untied output.weight, Llama-3-style BPE vocabulary)\n"
               "      --shape S            tiny (default: 2x256, 4/2 heads, vocab 512), 2b4t (the real 2B-4T\n"
               "                           shapes), or LAYERSxHIDDEN (e.g. 4x512)\n"
               "      --heads H[/KV]       query heads and KV heads (after --shape; arch bitnet: KV = H)\n"
               "      --vocab N            vocabulary size (after --shape)\n"
               "      --type T             i2_s (default), tq1_0 or tq2_0\n"
               "      --embed-type T       f16 (default), q8_0 or f32 (llama: output.weight too)\n"
               "      --scale-tensors      arch bitnet with tq1_0/tq2_0: store the weights as plain {-1,0,+1}\n"
               "                           and each scale as a blk.N.<name>.scale tensor (older converters)\n"
               "      --seed N             random seed (default 1)\n"
               "  -h, --help               this help\n");
}

int cmd_gen_model(int argc, char **argv)
{
    bitnet_gen_model_params p;
    bitnet_gen_model_params_default(&p);
    const char *out = NULL;
    bool kv_given = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            gen_usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--scale-tensors")) {
            p.scale_tensors = 1;
            continue;
        }
        if (!v) {
            fprintf(stderr, "bitnet: unknown option or missing value: '%s' (see --help)\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "-o") || !strcmp(a, "--output")) out = v;
        else if (!strcmp(a, "--arch")) {
            if (strcmp(v, "bitnet-b1.58") && strcmp(v, "bitnet") && strcmp(v, "llama")) {
                fprintf(stderr, "bitnet: --arch expects bitnet-b1.58, bitnet or llama, got '%s'\n", v);
                return 2;
            }
            p.arch = v;
        } else if (!strcmp(a, "--heads")) {
            int h, kv = 0, used = 0;
            char tail;
            int got = sscanf(v, "%d%n/%d%c", &h, &used, &kv, &tail);
            if (!((got == 1 && v[used] == '\0') || got == 2) || h < 1 || h > 4096 || (got == 2 && kv < 1)) {
                fprintf(stderr, "bitnet: --heads expects H or H/KV (positive integers), got '%s'\n", v);
                return 2;
            }
            p.n_head = h;
            p.n_head_kv = got == 2 ? kv : h;
            kv_given = got == 2;
        } else if (!strcmp(a, "--vocab")) {
            long nv;
            if (!cli_parse_int(a, v, 259, 1 << 22, &nv)) return 2;
            p.n_vocab = (int)nv;
        } else if (!strcmp(a, "--shape")) {
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
    if (!strcmp(p.arch, "bitnet") && !kv_given) p.n_head_kv = p.n_head; /* 1bitLLM models are multi-head */
    double t0 = cli_now();
    if (bitnet_gen_model(&p, out) != BITNET_OK) { /* the message starts with "gen-model:" */
        fprintf(stderr, "bitnet: %s\n", bitnet_last_error());
        return 1;
    }
    fprintf(stderr, "wrote %s (%d layers x %d, vocab %d) in %.1f s\n", out, p.n_layer, p.n_embd, p.n_vocab, cli_now() - t0);
    return 0;
}
