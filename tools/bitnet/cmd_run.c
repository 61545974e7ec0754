/* bitnet run / bitnet chat: text generation from the command line. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bitnet.h"
#include "cli.h"

#define MAX_STOPS 16

typedef struct {
    const char *model, *prompt, *prompt_file, *system, *chat_template;
    int n_predict, n_threads, n_ctx;
    bitnet_kv_type kv;
    bitnet_sampler_params sp;
    const char *stop[MAX_STOPS];
    size_t n_stop;
    bool chat, no_bos, parse_special, verbose;
    bitnet_pretokenizer pretok;
    uint32_t head_type;
    bool no_repack;
} run_opts;

static void run_usage(FILE *f, const char *cmd)
{
    fprintf(f,
            "usage: bitnet %s [-m MODEL] %s[options]\n\n"
            "%s\n\n"
            "  -m, --model PATH        GGUF model, or hf:OWNER/NAME/FILE to download it once\n"
            "                          (default: the bundled models/bitnet-kjv-tiny.gguf)\n"
            "  -p, --prompt TEXT       prompt text%s\n"
            "  -f, --file PATH         read the prompt from a file ('-' = stdin)\n"
            "  -n, --n-predict N       tokens to generate (default 128%s)\n"
            "  -t, --threads N         threads (default: physical cores)\n"
            "  -c, --ctx-size N        context length (default: the model's, at most 4096)\n"
            "      --kv f16|f32        KV cache precision (default f16)\n"
            "      --temp T            temperature; 0 = greedy (default 0.8)\n"
            "      --top-k N           keep the N most likely tokens; 0 = off (default 40)\n"
            "      --top-p P           nucleus sampling; 1 = off (default 0.95)\n"
            "      --min-p P           drop tokens below P x the best one's probability (default 0.05)\n"
            "      --repeat-penalty F  penalise repeats of recent tokens; 1 = off (default 1.0)\n"
            "      --repeat-last-n N   how many recent tokens the penalties look at (default 64)\n"
            "      --presence-penalty F, --frequency-penalty F   OpenAI-style penalties (default 0)\n"
            "      --seed N            random seed (default 0); the same seed gives the same text\n"
            "      --stop TEXT         stop when TEXT is generated (repeatable, up to %d)\n"
            "      --no-bos            do not add the BOS token\n"
            "      --parse-special     recognise special tokens like <|eot_id|> in the prompt\n"
            "      --pretokenizer auto|llama3|gpt2|default   how to split text before BPE\n"
            "      --head q8_0|q6_k    requantise the output head at load (faster generation)\n"
            "      --no-repack         keep ternary weights in the file's layout (see bitnet info --system)\n"
            "      --chat              interactive chat (same as 'bitnet chat')\n"
            "      --system TEXT       chat: the system message\n"
            "      --chat-template NAME  chat: bitnet, llama3 or chatml (default: from the model)\n"
            "  -h, --help              this help\n",
            cmd, strcmp(cmd, "chat") ? "-p PROMPT " : "",
            strcmp(cmd, "chat") ? "Generates text from a prompt, streaming it to stdout; a summary goes to stderr."
                                : "Chats with the model in its chat format. Ctrl-C stops an answer; Ctrl-D or /exit quits.",
            strcmp(cmd, "chat") ? "" : " (chat: the system message)", strcmp(cmd, "chat") ? "" : "; chat: 512 per answer",
            MAX_STOPS);
}

/* Returns 0 on success, 2 on bad usage (message printed), -1 for --help. */
static int parse_run_opts(int argc, char **argv, run_opts *o)
{
    memset(o, 0, sizeof *o);
    o->n_predict = o->chat ? 512 : 128;
    bitnet_sampler_params_default(&o->sp);
    long iv;
    double fv;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEED_VALUE() \
    do { \
        if (!v) { \
            fprintf(stderr, "bitnet: %s needs a value\n", a); \
            return 2; \
        } \
        i++; \
    } while (0)
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return -1;
        else if (!strcmp(a, "-m") || !strcmp(a, "--model")) { NEED_VALUE(); o->model = v; }
        else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) { NEED_VALUE(); o->prompt = v; }
        else if (!strcmp(a, "-f") || !strcmp(a, "--file")) { NEED_VALUE(); o->prompt_file = v; }
        else if (!strcmp(a, "--system")) { NEED_VALUE(); o->system = v; }
        else if (!strcmp(a, "--chat-template")) { NEED_VALUE(); o->chat_template = v; }
        else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) {
            NEED_VALUE();
            if (!cli_parse_int(a, v, 0, 1 << 20, &iv)) return 2;
            o->n_predict = (int)iv;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            NEED_VALUE();
            if (!cli_parse_int(a, v, 1, 256, &iv)) return 2;
            o->n_threads = (int)iv;
        } else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) {
            NEED_VALUE();
            if (!cli_parse_int(a, v, 1, 1 << 20, &iv)) return 2;
            o->n_ctx = (int)iv;
        } else if (!strcmp(a, "--kv")) {
            NEED_VALUE();
            if (!cli_parse_kv(v, &o->kv)) return 2;
        } else if (!strcmp(a, "--temp")) {
            NEED_VALUE();
            if (!cli_parse_float(a, v, &fv)) return 2;
            o->sp.temperature = (float)fv;
        } else if (!strcmp(a, "--top-k")) {
            NEED_VALUE();
            if (!cli_parse_int(a, v, 0, 1 << 24, &iv)) return 2;
            o->sp.top_k = (int)iv;
        } else if (!strcmp(a, "--top-p")) {
            NEED_VALUE();
            if (!cli_parse_float(a, v, &fv)) return 2;
            o->sp.top_p = (float)fv;
        } else if (!strcmp(a, "--min-p")) {
            NEED_VALUE();
            if (!cli_parse_float(a, v, &fv)) return 2;
            o->sp.min_p = (float)fv;
        } else if (!strcmp(a, "--repeat-penalty")) {
            NEED_VALUE();
            if (!cli_parse_float(a, v, &fv)) return 2;
            o->sp.repeat_penalty = (float)fv;
        } else if (!strcmp(a, "--repeat-last-n")) {
            NEED_VALUE();
            if (!cli_parse_int(a, v, 0, 1 << 20, &iv)) return 2;
            o->sp.repeat_last_n = (int)iv;
        } else if (!strcmp(a, "--presence-penalty")) {
            NEED_VALUE();
            if (!cli_parse_float(a, v, &fv)) return 2;
            o->sp.presence_penalty = (float)fv;
        } else if (!strcmp(a, "--frequency-penalty")) {
            NEED_VALUE();
            if (!cli_parse_float(a, v, &fv)) return 2;
            o->sp.frequency_penalty = (float)fv;
        } else if (!strcmp(a, "--seed")) {
            NEED_VALUE();
            char *end;
            unsigned long long s = strtoull(v, &end, 10);
            if (!*v || *end) {
                fprintf(stderr, "bitnet: --seed expects a non-negative integer, got '%s'\n", v);
                return 2;
            }
            o->sp.seed = s;
        } else if (!strcmp(a, "--stop")) {
            NEED_VALUE();
            if (o->n_stop == MAX_STOPS) {
                fprintf(stderr, "bitnet: at most %d --stop strings\n", MAX_STOPS);
                return 2;
            }
            o->stop[o->n_stop++] = v;
        } else if (!strcmp(a, "--pretokenizer")) {
            NEED_VALUE();
            if (!strcmp(v, "auto")) o->pretok = BITNET_PRETOK_AUTO;
            else if (!strcmp(v, "llama3")) o->pretok = BITNET_PRETOK_LLAMA3;
            else if (!strcmp(v, "gpt2")) o->pretok = BITNET_PRETOK_GPT2;
            else if (!strcmp(v, "default")) o->pretok = BITNET_PRETOK_DEFAULT;
            else {
                fprintf(stderr, "bitnet: --pretokenizer expects auto, llama3, gpt2 or default, got '%s'\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--head")) {
            NEED_VALUE();
            if (!cli_parse_head(v, &o->head_type)) return 2;
        } else if (!strcmp(a, "--no-repack")) o->no_repack = true;
        else if (!strcmp(a, "--chat")) o->chat = true;
        else if (!strcmp(a, "--no-bos")) o->no_bos = true;
        else if (!strcmp(a, "--parse-special")) o->parse_special = true;
        else {
            fprintf(stderr, "bitnet: unknown option '%s' (see --help)\n", a);
            return 2;
        }
#undef NEED_VALUE
    }
    if (!(o->model = cli_model_path(o->model))) return 1;
    return 0;
}

static uint64_t g_repacked; /* for the load log */

static bool load_model(const run_opts *o, bitnet_model **m, double *seconds)
{
    bitnet_model_params mp;
    bitnet_model_params_default(&mp);
    mp.pretokenizer = o->pretok;
    mp.head_type = o->head_type;
    mp.repack = o->no_repack ? BITNET_REPACK_OFF : BITNET_REPACK_LAZY;
    double t0 = cli_now();
    if (bitnet_model_load(o->model, &mp, m) != BITNET_OK) {
        cli_fail("loading the model");
        return false;
    }
    *seconds = cli_now() - t0;
    bitnet_model_info info;
    if (bitnet_model_info_get(*m, &info) == BITNET_OK) g_repacked = info.repacked_bytes;
    return true;
}

static bool make_context(const run_opts *o, bitnet_model *m, bitnet_context **c, bitnet_sampler **s)
{
    bitnet_context_params cp;
    bitnet_context_params_default(&cp);
    cp.n_ctx = o->n_ctx;
    cp.n_threads = o->n_threads;
    cp.kv_type = o->kv;
    if (bitnet_context_init(m, &cp, c) != BITNET_OK) {
        cli_fail("creating a context");
        return false;
    }
    if (bitnet_sampler_init(&o->sp, s) != BITNET_OK) {
        cli_fail("sampler");
        return false;
    }
    return true;
}

static volatile sig_atomic_t g_interrupted;
static void on_sigint(int sig)
{
    (void)sig;
    g_interrupted = 1;
}

static bool print_piece(void *user, bitnet_token id, const char *text, size_t len)
{
    (void)user;
    (void)id;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return !g_interrupted;
}

static void print_summary(double load_s, const bitnet_generate_stats *st)
{
    char rp[64] = "";
    if (g_repacked) snprintf(rp, sizeof rp, " (ternary weights repacked over the first tokens: %.0f MiB)", g_repacked / 1048576.0);
    fprintf(stderr, "\nload %.2f s%s · prompt %d tok %.1f tok/s · gen %d tok %.1f tok/s\n", load_s, rp, st->n_prompt,
            st->prompt_seconds > 0 ? st->n_prompt / st->prompt_seconds : 0.0, st->n_generated,
            st->gen_seconds > 0 ? st->n_generated / st->gen_seconds : 0.0);
}

static int chat_loop(run_opts *o);

int cmd_run(int argc, char **argv)
{
    run_opts o;
    int rc = parse_run_opts(argc, argv, &o);
    if (rc == -1) {
        run_usage(stdout, "run");
        return 0;
    }
    if (rc) return rc;
    if (o.chat) return chat_loop(&o);
    char *file_text = NULL;
    if (o.prompt_file) {
        file_text = cli_read_file(o.prompt_file, NULL);
        if (!file_text) return 1;
        o.prompt = file_text;
    }
    if (!o.prompt) {
        fprintf(stderr, "bitnet: no prompt: give -p TEXT or -f FILE\n");
        return 2;
    }
    bitnet_model *m = NULL;
    bitnet_context *c = NULL;
    bitnet_sampler *s = NULL;
    double load_s;
    rc = 1;
    if (load_model(&o, &m, &load_s) && make_context(&o, m, &c, &s)) {
        bitnet_generate_params gp;
        bitnet_generate_params_default(&gp);
        gp.max_tokens = o.n_predict;
        gp.sampling = o.sp;
        gp.stop = o.stop;
        gp.n_stop = o.n_stop;
        gp.add_bos = !o.no_bos;
        gp.parse_special = o.parse_special;
        bitnet_generate_stats st;
        signal(SIGINT, on_sigint);
        fputs(o.prompt, stdout);
        if (bitnet_generate_stream(c, s, o.prompt, &gp, print_piece, NULL, &st) == BITNET_OK) {
            fputc('\n', stdout);
            print_summary(load_s, &st);
            rc = 0;
        } else {
            cli_fail("generating");
        }
    }
    bitnet_sampler_free(s);
    bitnet_context_free(c);
    bitnet_model_free(m);
    free(file_text);
    return rc;
}

/* ---- chat ---------------------------------------------------------------------------------- */

typedef struct {
    char *text;
    size_t len, cap;
} strbuf;

static bool sb_append(strbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->len + n + 1) * 2;
        char *nb = realloc(b->text, cap);
        if (!nb) return false;
        b->text = nb;
        b->cap = cap;
    }
    memcpy(b->text + b->len, s, n);
    b->len += n;
    b->text[b->len] = '\0';
    return true;
}

static bool collect_piece(void *user, bitnet_token id, const char *text, size_t len)
{
    print_piece(NULL, id, text, len);
    sb_append(user, text, len);
    return !g_interrupted;
}

/* Each turn formats the whole conversation and feeds only what the context has not seen: the
 * text of earlier turns (prompts and answers) is already in the KV cache. */
static int chat_loop(run_opts *o)
{
    bitnet_model *m = NULL;
    bitnet_context *c = NULL;
    bitnet_sampler *s = NULL;
    double load_s;
    int rc = 1;
    if (!o->n_predict) o->n_predict = 512;
    bitnet_chat_message *msgs = NULL;
    size_t n_msgs = 0;
    char **owned = NULL;
    size_t n_owned = 0;
    strbuf fed = {0};
    if (!load_model(o, &m, &load_s) || !make_context(o, m, &c, &s)) goto done;
    fprintf(stderr, "chat format: %s · Ctrl-C stops an answer · Ctrl-D or /exit quits\n",
            o->chat_template ? o->chat_template : bitnet_chat_template_name(m));
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, NULL);
    msgs = calloc(1024, sizeof *msgs);
    owned = calloc(1024, sizeof *owned);
    if (!msgs || !owned) goto done;
    if (o->system || o->prompt) {
        msgs[n_msgs].role = "system";
        msgs[n_msgs++].content = o->system ? o->system : o->prompt;
    }
    char line[65536];
    for (;;) {
        fprintf(stdout, "\n> ");
        fflush(stdout);
        g_interrupted = 0;
        if (!fgets(line, sizeof line, stdin)) break;
        size_t ll = strlen(line);
        while (ll && (line[ll - 1] == '\n' || line[ll - 1] == '\r')) line[--ll] = '\0';
        if (!strcmp(line, "/exit") || !strcmp(line, "/quit")) break;
        if (!ll) continue;
        if (n_msgs + 2 >= 1024) {
            fprintf(stderr, "bitnet: the conversation is too long\n");
            break;
        }
        owned[n_owned] = strdup(line);
        msgs[n_msgs].role = "user";
        msgs[n_msgs++].content = owned[n_owned++];
        char *formatted = NULL;
        if (bitnet_chat_format(m, o->chat_template, msgs, n_msgs, true, &formatted) != BITNET_OK) {
            cli_fail("formatting the chat");
            goto done;
        }
        const char *todo = formatted;
        bool reuse = fed.len && !strncmp(formatted, fed.text, fed.len);
        if (!reuse && bitnet_context_pos(c) > 0) bitnet_context_truncate(c, 0);
        if (reuse) todo = formatted + fed.len;
        else fed.len = 0;
        sb_append(&fed, todo, strlen(todo));
        bitnet_generate_params gp;
        bitnet_generate_params_default(&gp);
        gp.max_tokens = o->n_predict;
        gp.sampling = o->sp;
        gp.stop = o->stop;
        gp.n_stop = o->n_stop;
        gp.parse_special = true; /* the template's own markers */
        gp.add_bos = !o->no_bos;
        strbuf answer = {0};
        bitnet_generate_stats st;
        bitnet_status gs = bitnet_generate_stream(c, s, todo, &gp, collect_piece, &answer, &st);
        free(formatted);
        if (gs != BITNET_OK) {
            cli_fail("generating");
            free(answer.text);
            if (gs == BITNET_ERR_RANGE) { /* context full: start over with this turn only */
                bitnet_context_truncate(c, 0);
                fed.len = 0;
                continue;
            }
            goto done;
        }
        if (g_interrupted) fprintf(stdout, " [stopped]");
        fputc('\n', stdout);
        msgs[n_msgs].role = "assistant";
        owned[n_owned] = answer.text ? answer.text : strdup("");
        msgs[n_msgs++].content = owned[n_owned++];
        /* After an end-of-generation token the cache holds exactly the answer's text (its end-of-turn
         * marker comes with the next turn).  A stop string or an interruption leaves tokens the
         * transcript does not have: then the next turn starts from an empty cache. */
        if (st.finish == BITNET_FINISH_STOP && o->n_stop == 0 && !g_interrupted) {
            sb_append(&fed, answer.text ? answer.text : "", answer.len);
        } else {
            bitnet_context_truncate(c, 0);
            fed.len = 0;
        }
        if (o->verbose) print_summary(load_s, &st);
    }
    rc = 0;
done:
    for (size_t i = 0; i < n_owned; i++) free(owned[i]);
    free(owned);
    free(msgs);
    free(fed.text);
    bitnet_sampler_free(s);
    bitnet_context_free(c);
    bitnet_model_free(m);
    return rc;
}

int cmd_chat(int argc, char **argv)
{
    run_opts o;
    int rc = parse_run_opts(argc, argv, &o);
    if (rc == -1) {
        run_usage(stdout, "chat");
        return 0;
    }
    if (rc) return rc;
    return chat_loop(&o);
}
