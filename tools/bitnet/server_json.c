/* Server requests: parsing and validating OpenAI request bodies with cJSON.  Unknown fields are
 * ignored and null means "not given", as OpenAI does; a field of the wrong type or out of range is
 * a 400 naming it. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "server.h"

void srv_error_set(srv_error *e, int status, const char *type, const char *code, const char *param,
                   const char *fmt, ...)
{
    e->status = status;
    e->type = type;
    e->code = code;
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
}

char *srv_error_json(const srv_error *e)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *err = cJSON_AddObjectToObject(root, "error");
    /* the message may quote bytes from the request: keep the JSON valid whatever they are */
    char msg[sizeof e->message];
    snprintf(msg, sizeof msg, "%s", e->message);
    if (!srv_utf8_valid(msg, strlen(msg)))
        for (char *p = msg; *p; p++)
            if ((unsigned char)*p >= 0x80) *p = '?';
    cJSON_AddStringToObject(err, "message", msg);
    cJSON_AddStringToObject(err, "type", e->type ? e->type : "invalid_request_error");
    if (e->param[0])
        cJSON_AddStringToObject(err, "param", e->param);
    else
        cJSON_AddNullToObject(err, "param");
    if (e->code)
        cJSON_AddStringToObject(err, "code", e->code);
    else
        cJSON_AddNullToObject(err, "code");
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return s;
}

bool srv_utf8_valid(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        size_t n;
        unsigned min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            n = 1;
            min = 0x80;
            c &= 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            n = 2;
            min = 0x800;
            c &= 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            n = 3;
            min = 0x10000;
            c &= 0x07;
        } else {
            return false;
        }
        for (size_t k = 1; k <= n; k++) {
            if (i + k >= len || (s[i + k] & 0xC0) != 0x80) return false;
            c = (c << 6) | (s[i + k] & 0x3F);
        }
        if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return false;
        i += n + 1;
    }
    return true;
}

/* ---- typed field access ------------------------------------------------------------------------ */

static const cJSON *field(const cJSON *obj, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    return v && !cJSON_IsNull(v) ? v : NULL;
}

static bool get_number(const cJSON *obj, const char *name, double lo, double hi, double *out, srv_error *e)
{
    const cJSON *v = field(obj, name);
    if (!v) return true;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) {
        srv_error_set(e, 400, "invalid_request_error", "invalid_type", name, "'%s' must be a number", name);
        return false;
    }
    if (v->valuedouble < lo || v->valuedouble > hi) {
        srv_error_set(e, 400, "invalid_request_error", "invalid_value", name, "'%s' must be between %g and %g, got %g",
                      name, lo, hi, v->valuedouble);
        return false;
    }
    *out = v->valuedouble;
    return true;
}

static bool is_integer(const cJSON *v)
{
    return cJSON_IsNumber(v) && isfinite(v->valuedouble) && floor(v->valuedouble) == v->valuedouble;
}

static bool get_int(const cJSON *obj, const char *name, double lo, double hi, long long *out, srv_error *e)
{
    const cJSON *v = field(obj, name);
    if (!v) return true;
    if (!is_integer(v)) {
        srv_error_set(e, 400, "invalid_request_error", "invalid_type", name, "'%s' must be an integer", name);
        return false;
    }
    if (v->valuedouble < lo || v->valuedouble > hi) {
        srv_error_set(e, 400, "invalid_request_error", "invalid_value", name, "'%s' must be between %.0f and %.0f",
                      name, lo, hi);
        return false;
    }
    *out = (long long)v->valuedouble;
    return true;
}

static bool get_bool(const cJSON *obj, const char *name, bool *out, srv_error *e)
{
    const cJSON *v = field(obj, name);
    if (!v) return true;
    if (!cJSON_IsBool(v)) {
        srv_error_set(e, 400, "invalid_request_error", "invalid_type", name, "'%s' must be a boolean", name);
        return false;
    }
    *out = cJSON_IsTrue(v);
    return true;
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static bool oom(srv_error *e)
{
    srv_error_set(e, 500, "server_error", NULL, NULL, "out of memory");
    return false;
}

/* ---- prompts and messages ---------------------------------------------------------------------- */

static bool parse_ids(const cJSON *arr, int n_vocab, srv_prompt *p, const char *param, srv_error *e)
{
    int n = cJSON_GetArraySize(arr);
    if (n == 0) {
        srv_error_set(e, 400, "invalid_request_error", "invalid_value", param, "'%s' must not be empty", param);
        return false;
    }
    p->ids = malloc((size_t)n * sizeof *p->ids);
    if (!p->ids) return oom(e);
    const cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        if (!is_integer(it) || it->valuedouble < 0 || it->valuedouble >= n_vocab) {
            srv_error_set(e, 400, "invalid_request_error", "invalid_value", param,
                          "'%s' token ids must be integers in 0..%d", param, n_vocab - 1);
            return false;
        }
        p->ids[p->n_ids++] = (bitnet_token)it->valuedouble;
    }
    return true;
}

/* prompt: a string, an array of strings, an array of token ids, or an array of such arrays. */
static bool parse_prompt(const cJSON *root, int n_vocab, srv_params *out, srv_error *e)
{
    const cJSON *v = field(root, "prompt");
    if (!v) {
        srv_error_set(e, 400, "invalid_request_error", "missing_required_parameter", "prompt",
                      "'prompt' is required");
        return false;
    }
    if (cJSON_IsString(v)) {
        out->n_prompts = 1;
        out->prompts[0].text = dup_str(v->valuestring);
        return out->prompts[0].text ? true : oom(e);
    }
    if (!cJSON_IsArray(v)) goto bad_type;
    int n = cJSON_GetArraySize(v);
    if (n == 0) {
        srv_error_set(e, 400, "invalid_request_error", "invalid_value", "prompt", "'prompt' must not be empty");
        return false;
    }
    const cJSON *first = cJSON_GetArrayItem(v, 0);
    if (cJSON_IsNumber(first)) {
        out->n_prompts = 1;
        return parse_ids(v, n_vocab, &out->prompts[0], "prompt", e);
    }
    if (n > SRV_MAX_PROMPTS) {
        srv_error_set(e, 400, "invalid_request_error", "invalid_value", "prompt",
                      "at most %d prompts per request, got %d", SRV_MAX_PROMPTS, n);
        return false;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, v)
    {
        srv_prompt *p = &out->prompts[out->n_prompts++];
        if (cJSON_IsString(it)) {
            if (!(p->text = dup_str(it->valuestring))) return oom(e);
        } else if (cJSON_IsArray(it)) {
            if (!parse_ids(it, n_vocab, p, "prompt", e)) return false;
        } else {
            goto bad_type;
        }
    }
    return true;
bad_type:
    srv_error_set(e, 400, "invalid_request_error", "invalid_type", "prompt",
                  "'prompt' must be a string, an array of strings or an array of token ids");
    return false;
}

static bool parse_messages(const cJSON *root, srv_params *out, srv_error *e)
{
    const cJSON *v = field(root, "messages");
    if (!v) {
        srv_error_set(e, 400, "invalid_request_error", "missing_required_parameter", "messages",
                      "'messages' is required");
        return false;
    }
    if (!cJSON_IsArray(v)) {
        srv_error_set(e, 400, "invalid_request_error", "invalid_type", "messages", "'messages' must be an array");
        return false;
    }
    int n = cJSON_GetArraySize(v);
    if (n == 0) {
        srv_error_set(e, 400, "invalid_request_error", "invalid_value", "messages", "'messages' must not be empty");
        return false;
    }
    out->msgs = calloc((size_t)n, sizeof *out->msgs);
    if (!out->msgs) return oom(e);
    const cJSON *m;
    char param[64];
    cJSON_ArrayForEach(m, v)
    {
        size_t i = out->n_msgs;
        snprintf(param, sizeof param, "messages[%zu]", i);
        if (!cJSON_IsObject(m)) {
            srv_error_set(e, 400, "invalid_request_error", "invalid_type", param, "'%s' must be an object", param);
            return false;
        }
        const cJSON *role = field(m, "role");
        snprintf(param, sizeof param, "messages[%zu].role", i);
        if (!role || !cJSON_IsString(role)) {
            srv_error_set(e, 400, "invalid_request_error", "invalid_type", param, "'%s' must be a string", param);
            return false;
        }
        const char *r = role->valuestring;
        if (!strcmp(r, "developer")) r = "system"; /* OpenAI's newer name for the system role */
        if (strcmp(r, "system") && strcmp(r, "user") && strcmp(r, "assistant")) {
            srv_error_set(e, 400, "invalid_request_error", "invalid_value", param,
                          "'%s' must be 'system', 'developer', 'user' or 'assistant'", param);
            return false;
        }
        /* the message is counted now so that srv_params_free releases what follows */
        out->n_msgs++;
        out->msgs[i].role = dup_str(r);
        if (!out->msgs[i].role) return oom(e);
        const cJSON *content = field(m, "content");
        snprintf(param, sizeof param, "messages[%zu].content", i);
        if (!content) {
            if (strcmp(r, "assistant")) {
                srv_error_set(e, 400, "invalid_request_error", "missing_required_parameter", param,
                              "'%s' is required", param);
                return false;
            }
            out->msgs[i].content = dup_str("");
        } else if (cJSON_IsString(content)) {
            out->msgs[i].content = dup_str(content->valuestring);
        } else if (cJSON_IsArray(content)) {
            /* text parts, joined */
            size_t total = 1;
            const cJSON *part;
            cJSON_ArrayForEach(part, content)
            {
                const cJSON *type = cJSON_IsObject(part) ? field(part, "type") : NULL;
                const cJSON *text = cJSON_IsObject(part) ? field(part, "text") : NULL;
                if (!type || !cJSON_IsString(type) || strcmp(type->valuestring, "text") || !text ||
                    !cJSON_IsString(text)) {
                    srv_error_set(e, 400, "invalid_request_error", "invalid_value", param,
                                  "'%s' parts must be {\"type\": \"text\", \"text\": string}; this model reads text only",
                                  param);
                    return false;
                }
                total += strlen(text->valuestring);
            }
            char *joined = malloc(total);
            if (!joined) return oom(e);
            joined[0] = '\0';
            size_t at = 0;
            cJSON_ArrayForEach(part, content)
            {
                const char *t = field(part, "text")->valuestring;
                size_t l = strlen(t);
                memcpy(joined + at, t, l + 1);
                at += l;
            }
            out->msgs[i].content = joined;
        } else {
            srv_error_set(e, 400, "invalid_request_error", "invalid_type", param,
                          "'%s' must be a string or an array of text parts", param);
            return false;
        }
        if (!out->msgs[i].content) return oom(e);
    }
    return true;
}

static bool parse_stop(const cJSON *root, srv_params *out, srv_error *e)
{
    const cJSON *v = field(root, "stop");
    if (!v) return true;
    if (cJSON_IsString(v)) {
        if (!v->valuestring[0]) return true;
        out->stop[0] = dup_str(v->valuestring);
        if (!out->stop[0]) return oom(e);
        out->n_stop = 1;
        return true;
    }
    if (!cJSON_IsArray(v)) {
        srv_error_set(e, 400, "invalid_request_error", "invalid_type", "stop",
                      "'stop' must be a string or an array of strings");
        return false;
    }
    if (cJSON_GetArraySize(v) > SRV_MAX_STOP) {
        srv_error_set(e, 400, "invalid_request_error", "invalid_value", "stop", "at most %d stop strings",
                      SRV_MAX_STOP);
        return false;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, v)
    {
        if (!cJSON_IsString(it)) {
            srv_error_set(e, 400, "invalid_request_error", "invalid_type", "stop",
                          "'stop' must be a string or an array of strings");
            return false;
        }
        if (!it->valuestring[0]) continue;
        if (!(out->stop[out->n_stop] = dup_str(it->valuestring))) return oom(e);
        out->n_stop++;
    }
    return true;
}

/* ---- the request ------------------------------------------------------------------------------- */

static bool parse_fields(const cJSON *root, bool chat, int n_vocab, srv_params *out, srv_error *e)
{
    const cJSON *model = field(root, "model");
    if (model && !cJSON_IsString(model)) {
        srv_error_set(e, 400, "invalid_request_error", "invalid_type", "model", "'model' must be a string");
        return false;
    }
    if (chat ? !parse_messages(root, out, e) : !parse_prompt(root, n_vocab, out, e)) return false;

    long long ll = -1;
    if (!get_int(root, "max_tokens", 0, 1e9, &ll, e)) return false;
    if (!get_int(root, "max_completion_tokens", 0, 1e9, &ll, e)) return false;
    out->max_tokens = (int)ll;

    bitnet_sampler_params *sp = &out->sampling;
    double d;
    d = sp->temperature;
    if (!get_number(root, "temperature", 0, 2, &d, e)) return false;
    sp->temperature = (float)d;
    d = sp->top_p;
    if (!get_number(root, "top_p", 0, 1, &d, e)) return false;
    sp->top_p = (float)d;
    d = sp->min_p;
    if (!get_number(root, "min_p", 0, 1, &d, e)) return false;
    sp->min_p = (float)d;
    d = sp->presence_penalty;
    if (!get_number(root, "presence_penalty", -2, 2, &d, e)) return false;
    sp->presence_penalty = (float)d;
    d = sp->frequency_penalty;
    if (!get_number(root, "frequency_penalty", -2, 2, &d, e)) return false;
    sp->frequency_penalty = (float)d;
    d = sp->repeat_penalty;
    if (!get_number(root, "repeat_penalty", 1e-6, 100, &d, e)) return false;
    sp->repeat_penalty = (float)d;
    ll = sp->top_k;
    if (!get_int(root, "top_k", 0, 1e9, &ll, e)) return false;
    sp->top_k = (int)ll;
    const cJSON *seed = field(root, "seed");
    if (seed) {
        /* any 64-bit integer; a negative seed is used as its two's complement */
        double sv = seed->valuedouble;
        if (!is_integer(seed) || sv < -9223372036854775808.0 || sv >= 18446744073709551616.0) {
            srv_error_set(e, 400, "invalid_request_error", "invalid_value", "seed",
                          "'seed' must be a 64-bit integer");
            return false;
        }
        sp->seed = sv < 0 ? (uint64_t)(int64_t)sv : (uint64_t)sv;
        out->seed_given = true;
    }
    const cJSON *n = field(root, "n");
    if (n && (!is_integer(n) || n->valuedouble != 1)) {
        srv_error_set(e, 400, "invalid_request_error", "unsupported_value", "n",
                      "'n' must be 1: this server returns one choice per prompt");
        return false;
    }
    if (!parse_stop(root, out, e)) return false;
    if (!get_bool(root, "stream", &out->stream, e)) return false;
    const cJSON *so = field(root, "stream_options");
    if (so) {
        if (!cJSON_IsObject(so)) {
            srv_error_set(e, 400, "invalid_request_error", "invalid_type", "stream_options",
                          "'stream_options' must be an object");
            return false;
        }
        if (!get_bool(so, "include_usage", &out->include_usage, e)) {
            snprintf(e->param, sizeof e->param, "stream_options.include_usage");
            return false;
        }
    }
    out->top_logprobs = -1;
    if (chat) {
        bool lp = false;
        if (!get_bool(root, "logprobs", &lp, e)) return false;
        ll = -1;
        if (!get_int(root, "top_logprobs", 0, SRV_MAX_TOP_LOGPROBS, &ll, e)) return false;
        if (ll >= 0 && !lp) {
            srv_error_set(e, 400, "invalid_request_error", "invalid_value", "top_logprobs",
                          "'top_logprobs' needs 'logprobs' set to true");
            return false;
        }
        if (lp) out->top_logprobs = ll >= 0 ? (int)ll : 0;
    } else {
        ll = -1;
        if (!get_int(root, "logprobs", 0, 5, &ll, e)) return false;
        out->top_logprobs = (int)ll;
    }
    return true;
}

bool srv_params_parse(const char *body, size_t len, bool chat, int n_vocab, srv_params *out, srv_error *e)
{
    memset(out, 0, sizeof *out);
    out->chat = chat;
    out->max_tokens = -1;
    out->top_logprobs = -1;
    bitnet_sampler_params_default(&out->sampling);
    if (!srv_utf8_valid(body, len)) {
        srv_error_set(e, 400, "invalid_request_error", "invalid_json", NULL, "the request body is not valid UTF-8");
        return false;
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(body, len, &end, false);
    if (!root) {
        size_t at = end && end >= body ? (size_t)(end - body) : 0;
        srv_error_set(e, 400, "invalid_request_error", "invalid_json", NULL,
                      "the request body is not valid JSON (near byte %zu)", at);
        return false;
    }
    /* nothing but white space may follow the value */
    for (const char *p = end; p && p < body + len; p++)
        if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n' && *p != '\0') {
            cJSON_Delete(root);
            srv_error_set(e, 400, "invalid_request_error", "invalid_json", NULL,
                          "the request body has data after the JSON value (byte %zu)", (size_t)(p - body));
            return false;
        }
    bool ok;
    if (!cJSON_IsObject(root)) {
        srv_error_set(e, 400, "invalid_request_error", "invalid_json", NULL, "the request body must be a JSON object");
        ok = false;
    } else {
        ok = parse_fields(root, chat, n_vocab, out, e);
    }
    cJSON_Delete(root);
    if (!ok) srv_params_free(out);
    return ok;
}

void srv_params_free(srv_params *p)
{
    for (int i = 0; i < p->n_prompts; i++) {
        free(p->prompts[i].text);
        free(p->prompts[i].ids);
    }
    for (size_t i = 0; i < p->n_msgs; i++) {
        free((char *)p->msgs[i].role);
        free((char *)p->msgs[i].content);
    }
    free(p->msgs);
    for (size_t i = 0; i < p->n_stop; i++) free(p->stop[i]);
    memset(p, 0, sizeof *p);
}
