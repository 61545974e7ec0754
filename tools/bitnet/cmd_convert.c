/* bitnet convert: a Hugging Face model folder, or a GGUF file, to GGUF (bitnet_convert). */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bitnet.h"
#include "cli.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: bitnet convert --input DIR_OR_FILE --output OUT.gguf [options]\n"
            "\n"
            "Converts a Hugging Face BitNet folder (config.json, tokenizer.json, *.safetensors; float\n"
            "master weights or packed 2B-4T weights) to GGUF, or re-encodes a GGUF file's ternary\n"
            "weights and embeddings.  The output is written atomically.  With --type i2_s it has the\n"
            "keys, tensor names, types and layout of Microsoft's official BitNet 2B-4T file.\n"
            "\n"
            "options:\n"
            "  -i, --input PATH     Hugging Face folder or GGUF file\n"
            "  -o, --output PATH    the GGUF file to write\n"
            "  --type T             linear weights: i2_s (default), tq1_0, tq2_0\n"
            "  --embed-type T       token embeddings: f16 (default for Hugging Face input), bf16,\n"
            "                       q8_0, q6_k, f32 (default for GGUF input: unchanged)\n"
            "  -t, --threads N      threads converting each tensor, 1..1024 (default: physical\n"
            "                       cores); the output is the same for every N\n"
            "  -q, --quiet          no progress bar or summary\n"
            "  -h, --help           show this help\n");
}

static bool parse_type(const char *opt, const char *s, const char *const *names, const uint32_t *ids, int n,
                       uint32_t *out)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(s, names[i])) {
            *out = ids[i];
            return true;
        }
    fprintf(stderr, "bitnet: %s expects one of", opt);
    for (int i = 0; i < n; i++) fprintf(stderr, "%s %s", i ? "," : "", names[i]);
    fprintf(stderr, "; got '%s'\n", s);
    return false;
}

typedef struct progress {
    double start;
    int last_pct;
} progress;

/* A bar on stderr, redrawn when the percentage changes. */
static bool show_progress(void *user, uint64_t done, uint64_t total)
{
    progress *p = user;
    int pct = total ? (int)(100.0 * (double)done / (double)total) : 100;
    if (pct == p->last_pct) return true;
    p->last_pct = pct;
    char bar[41];
    int fill = pct * 40 / 100;
    for (int i = 0; i < 40; i++) bar[i] = i < fill ? '#' : '.';
    bar[40] = '\0';
    fprintf(stderr, "\r[%s] %3d%% %6.1f s", bar, pct, cli_now() - p->start);
    fflush(stderr);
    return true;
}

int cmd_convert(int argc, char **argv)
{
    const char *in = NULL, *out = NULL;
    bool quiet = false;
    bitnet_convert_params cp;
    bitnet_convert_params_default(&cp);
    static const char *const wnames[] = {"i2_s", "tq1_0", "tq2_0"};
    static const uint32_t wids[] = {36, 34, 35};
    static const char *const enames[] = {"f16", "bf16", "q8_0", "q6_k", "f32"};
    static const uint32_t eids[] = {1, 30, 8, 14, 0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_val = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            quiet = true;
        } else if (!strcmp(a, "-i") || !strcmp(a, "--input") || !strcmp(a, "-o") || !strcmp(a, "--output") ||
                   !strcmp(a, "--type") || !strcmp(a, "--embed-type") || !strcmp(a, "--threads") || !strcmp(a, "-t")) {
            if (!has_val) {
                fprintf(stderr, "bitnet: %s needs a value\n", a);
                return 2;
            }
            const char *v = argv[++i];
            long n;
            if (!strcmp(a, "-i") || !strcmp(a, "--input")) in = v;
            else if (!strcmp(a, "-o") || !strcmp(a, "--output")) out = v;
            else if (!strcmp(a, "--type")) {
                if (!parse_type(a, v, wnames, wids, 3, &cp.weight_type)) return 2;
            } else if (!strcmp(a, "--embed-type")) {
                if (!parse_type(a, v, enames, eids, 5, &cp.embed_type)) return 2;
            } else {
                if (!cli_parse_int(a, v, 1, 1024, &n)) return 2;
                cp.n_threads = (int)n;
            }
        } else {
            fprintf(stderr, "bitnet: convert: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!in || !out) {
        fprintf(stderr, "bitnet: convert needs --input and --output\n");
        usage(stderr);
        return 2;
    }
    progress p = {.start = cli_now(), .last_pct = -1};
    bool bar = !quiet && isatty(STDERR_FILENO);
    if (bar) {
        cp.progress = show_progress;
        cp.user = &p;
    }
    bitnet_status st = bitnet_convert(in, out, &cp);
    if (bar) fputc('\n', stderr);
    if (st != BITNET_OK) return cli_fail("convert");
    if (!quiet) {
        struct stat sb;
        double mb = stat(out, &sb) == 0 ? (double)sb.st_size / 1e6 : 0;
        fprintf(stderr, "bitnet: wrote %s (%.1f MB, %s weights) in %.1f s\n", out, mb, bitnet_type_name(cp.weight_type),
                cli_now() - p.start);
    }
    return 0;
}
