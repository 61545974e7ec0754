/* Conversion benchmark helper.
 *
 *   bench_convert --generate DIR [--layers N]
 *       writes a synthetic Hugging Face folder with BitNet b1.58 2B-4T's shapes (30 layers of
 *       2560 / 6912, 20/5 heads, vocabulary 128256, bf16 master weights: about 4.8 GB) and a
 *       Llama-3-sized tokenizer.json.  Values are random; only sizes matter for speed.
 *   bench_convert --measure CMD [ARGS...]
 *       runs CMD and prints its wall time and peak resident memory (ru_maxrss).
 *
 * Uses only libc (the folder format is written by hand). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { D = 2560, FF = 6912, NH = 20, NKV = 5, NV = 128256, DKV = D / NH * NKV };

static uint64_t rng = 88172645463325252ull;
static inline uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* bf16 values of magnitude about 2^-7 .. 2^-5 with random sign and mantissa */
static void fill_bf16(uint16_t *p, size_t n)
{
    for (size_t i = 0; i < n; i += 4) {
        uint64_t r = next();
        for (size_t k = 0; k < 4 && i + k < n; k++) {
            uint16_t b = (uint16_t)(r >> (16 * k));
            p[i + k] = (uint16_t)((b & 0x8000) | ((0x78 + (b >> 13 & 1) + (b >> 14 & 1)) << 7) | (b & 0x7f));
        }
    }
}

typedef struct tensor {
    char name[96];
    int64_t rows, cols; /* cols = 0: a vector of `rows` */
    int norm;
} tensor;

static int list_tensors(int layers, tensor *t)
{
    int n = 0;
    t[n++] = (tensor){"model.embed_tokens.weight", NV, D, 0};
    static const struct {
        const char *n;
        int64_t r, c;
        int norm;
    } L[] = {{"input_layernorm", D, 0, 1},       {"self_attn.q_proj", D, D, 0},
             {"self_attn.k_proj", DKV, D, 0},    {"self_attn.v_proj", DKV, D, 0},
             {"self_attn.o_proj", D, D, 0},      {"self_attn.attn_sub_norm", D, 0, 1},
             {"post_attention_layernorm", D, 0, 1}, {"mlp.gate_proj", FF, D, 0},
             {"mlp.up_proj", FF, D, 0},          {"mlp.down_proj", D, FF, 0},
             {"mlp.ffn_sub_norm", FF, 0, 1}};
    for (int i = 0; i < layers; i++)
        for (size_t k = 0; k < sizeof L / sizeof L[0]; k++) {
            snprintf(t[n].name, sizeof t[n].name, "model.layers.%d.%s.weight", i, L[k].n);
            t[n].rows = L[k].r;
            t[n].cols = L[k].c;
            t[n].norm = L[k].norm;
            n++;
        }
    t[n++] = (tensor){"model.norm.weight", D, 0, 1};
    return n;
}

static int write_file(const char *dir, const char *name, const char *text)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    if (!f) return -1;
    fputs(text, f);
    return fclose(f);
}

static int write_tokenizer(const char *dir)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/tokenizer.json", dir);
    FILE *f = fopen(p, "wb");
    if (!f) return -1;
    fputs("{\"version\":\"1.0\",\"added_tokens\":[", f);
    for (int i = 0; i < 256; i++)
        fprintf(f, "%s{\"id\":%d,\"content\":\"<|reserved_special_token_%d|>\",\"special\":true}", i ? "," : "",
                128000 + i, i);
    fputs("],\"normalizer\":null,\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false,"
          "\"trim_offsets\":true,\"use_regex\":true},\"model\":{\"type\":\"BPE\",\"vocab\":{",
          f);
    for (int i = 0; i < 128000; i++) fprintf(f, "%s\"t%d\":%d", i ? "," : "", i, i);
    fputs("},\"merges\":[", f);
    for (int i = 0; i < 280147; i++) fprintf(f, "%s\"t%d t%d\"", i ? "," : "", i % 1000, i / 1000);
    fputs("]}}", f);
    return fclose(f);
}

static int generate(const char *dir, int layers)
{
    mkdir(dir, 0755);
    char cfg[1024];
    snprintf(cfg, sizeof cfg,
             "{\"architectures\":[\"BitNetForCausalLM\"],\"model_type\":\"bitnet\",\"hidden_size\":%d,"
             "\"intermediate_size\":%d,\"num_hidden_layers\":%d,\"num_attention_heads\":%d,\"num_key_value_heads\":%d,"
             "\"vocab_size\":%d,\"max_position_embeddings\":4096,\"rms_norm_eps\":1e-05,\"rope_theta\":500000.0,"
             "\"hidden_act\":\"relu2\",\"tie_word_embeddings\":true,\"bos_token_id\":128000,\"eos_token_id\":128001}",
             D, FF, layers, NH, NKV, NV);
    if (write_file(dir, "config.json", cfg) || write_tokenizer(dir) ||
        write_file(dir, "tokenizer_config.json", "{\"add_bos_token\":true,\"bos_token\":\"<|reserved_special_token_0|>\","
                                                  "\"eos_token\":\"<|reserved_special_token_1|>\"}"))
        return -1;
    tensor *t = calloc((size_t)layers * 11 + 2, sizeof *t);
    int n = list_tensors(layers, t);
    /* header */
    size_t cap = (size_t)n * 160 + 64, o = 0;
    char *h = malloc(cap);
    uint64_t off = 0;
    o += (size_t)snprintf(h + o, cap - o, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (int i = 0; i < n; i++) {
        uint64_t bytes = (uint64_t)t[i].rows * (uint64_t)(t[i].cols ? t[i].cols : 1) * 2;
        if (t[i].cols)
            o += (size_t)snprintf(h + o, cap - o, ",\"%s\":{\"dtype\":\"BF16\",\"shape\":[%lld,%lld],\"data_offsets\":[%llu,%llu]}",
                                  t[i].name, (long long)t[i].rows, (long long)t[i].cols, (unsigned long long)off,
                                  (unsigned long long)(off + bytes));
        else
            o += (size_t)snprintf(h + o, cap - o, ",\"%s\":{\"dtype\":\"BF16\",\"shape\":[%lld],\"data_offsets\":[%llu,%llu]}",
                                  t[i].name, (long long)t[i].rows, (unsigned long long)off, (unsigned long long)(off + bytes));
        off += bytes;
    }
    o += (size_t)snprintf(h + o, cap - o, "}");
    while (o % 8) h[o++] = ' ';
    char p[1024];
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    FILE *f = fopen(p, "wb");
    if (!f) return -1;
    uint8_t len[8];
    for (int i = 0; i < 8; i++) len[i] = (uint8_t)((uint64_t)o >> (8 * i));
    fwrite(len, 1, 8, f);
    fwrite(h, 1, o, f);
    size_t chunk = (size_t)1 << 22;
    uint16_t *buf = malloc(chunk * 2);
    for (int i = 0; i < n; i++) {
        size_t count = (size_t)t[i].rows * (size_t)(t[i].cols ? t[i].cols : 1);
        for (size_t done = 0; done < count; done += chunk) {
            size_t k = count - done < chunk ? count - done : chunk;
            if (t[i].norm)
                for (size_t j = 0; j < k; j++) buf[j] = 0x3f80; /* 1.0 */
            else
                fill_bf16(buf, k);
            if (fwrite(buf, 2, k, f) != k) return -1;
        }
    }
    free(buf);
    free(h);
    free(t);
    printf("wrote %s (%.2f GB of weights)\n", dir, (double)off / 1e9);
    return fclose(f);
}

static int measure(char **argv)
{
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    pid_t pid = fork();
    if (pid < 0) return 1;
    if (pid == 0) {
        execvp(argv[0], argv);
        perror(argv[0]);
        _exit(127);
    }
    int status;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) < 0) return 1;
    clock_gettime(CLOCK_MONOTONIC, &b);
    double secs = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) * 1e-9;
    printf("wall %.2f s, user %.2f s, sys %.2f s, peak RSS %.1f MB, exit %d\n", secs,
           (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6,
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6, (double)ru.ru_maxrss / 1024.0,
           WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && !strcmp(argv[1], "--generate")) {
        int layers = 30;
        if (argc >= 5 && !strcmp(argv[3], "--layers")) layers = atoi(argv[4]);
        if (layers < 1 || layers > 200) return 2;
        return generate(argv[2], layers) ? 1 : 0;
    }
    if (argc >= 3 && !strcmp(argv[1], "--measure")) return measure(argv + 2);
    fprintf(stderr, "usage: bench_convert --generate DIR [--layers N] | --measure CMD [ARGS...]\n");
    return 2;
}
