/* Chat formats (see chat.h and docs/chat-formats.md). */
#include "chat/chat.h"

#include <string.h>

#include "common/error.h"
#include "common/mem.h"
#include "tokenizer/unicode.h"

const char *const bn_chat_names[] = {"bitnet", "llama3", "chatml", NULL};

const char *bn_chat_detect(const char *tmpl)
{
    if (!tmpl || !*tmpl) return NULL;
    /* bitnet.cpp's converter writes a template containing "BITNET"; the Hugging Face 2B-4T
     * template is "Role: " + content + <|eot_id|>, recognisable by its "Assistant: " prompt. */
    if (strstr(tmpl, "BITNET")) return "bitnet";
    if (strstr(tmpl, "<|start_header_id|>")) return "llama3";
    if (strstr(tmpl, "<|im_start|>")) return "chatml";
    if (strstr(tmpl, "<|eot_id|>") && strstr(tmpl, "Assistant: ")) return "bitnet";
    return NULL;
}

const char *bn_chat_resolve(const char *name, const char *tmpl)
{
    if (name) {
        for (size_t i = 0; bn_chat_names[i]; i++)
            if (strcmp(name, bn_chat_names[i]) == 0) return bn_chat_names[i];
        return NULL;
    }
    const char *d = bn_chat_detect(tmpl);
    return d ? d : "bitnet";
}

typedef struct buf {
    char *p;
    size_t n, cap;
    bool failed;
} buf;

static void put(buf *b, const char *s, size_t n)
{
    if (b->failed) return;
    size_t need;
    if (bn_add_overflow(b->n, n + 1, &need)) {
        b->failed = true;
        return;
    }
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < need) cap *= 2;
        char *np = bn_realloc(b->p, cap);
        if (!np) {
            b->failed = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void puts_(buf *b, const char *s) { put(b, s, strlen(s)); }

/* Python's str.strip(): drops leading and trailing whitespace (Unicode White_Space). */
static void put_stripped(buf *b, const char *s)
{
    size_t n = strlen(s), i = 0, j = n;
    while (i < n) {
        uint32_t cp;
        size_t k = bn_utf8_decode((const unsigned char *)s + i, n - i, &cp);
        if ((cp & BN_UTF8_INVALID) || !(bn_ucd_flags(cp) & BN_UCD_SPACE)) break;
        i += k;
    }
    while (j > i) {
        size_t start = j - 1; /* back up to the start of the last character */
        while (start > i && ((unsigned char)s[start] & 0xC0) == 0x80 && j - start < 4) start--;
        uint32_t cp;
        size_t k = bn_utf8_decode((const unsigned char *)s + start, j - start, &cp);
        if (start + k != j || (cp & BN_UTF8_INVALID) || !(bn_ucd_flags(cp) & BN_UCD_SPACE)) break;
        j = start;
    }
    put(b, s + i, j - i);
}

/* Jinja's capitalize on an ASCII role: "user" -> "User". */
static void put_capitalized(buf *b, const char *role)
{
    for (size_t i = 0; role[i]; i++) {
        char c = role[i];
        if (i == 0 && c >= 'a' && c <= 'z') c = (char)(c - 32);
        else if (i > 0 && c >= 'A' && c <= 'Z') c = (char)(c + 32);
        put(b, &c, 1);
    }
}

bn_status bn_chat_format(const char *name, const char *tmpl, const bn_chat_msg *msgs, size_t n, bool add_assistant,
                         char **out)
{
    if (!out) return bn_error(BN_ERR_INVALID_ARG, "bn_chat_format: out is NULL");
    *out = NULL;
    if (!msgs && n) return bn_error(BN_ERR_INVALID_ARG, "bn_chat_format: messages are NULL");
    const char *fmt = bn_chat_resolve(name, tmpl);
    if (!fmt) return bn_error(BN_ERR_INVALID_ARG, "unknown chat format \"%s\" (known: bitnet, llama3, chatml)", name);
    for (size_t i = 0; i < n; i++)
        if (!msgs[i].role || !msgs[i].content || !msgs[i].role[0])
            return bn_error(BN_ERR_INVALID_ARG, "chat message %zu has no role or no content", i);

    buf b = {0};
    puts_(&b, ""); /* an empty conversation still gives an allocated "" */
    for (size_t i = 0; i < n; i++) {
        const bn_chat_msg *m = &msgs[i];
        if (strcmp(fmt, "bitnet") == 0) {
            put_capitalized(&b, m->role);
            puts_(&b, ": ");
            put_stripped(&b, m->content);
            puts_(&b, "<|eot_id|>");
        } else if (strcmp(fmt, "llama3") == 0) {
            puts_(&b, "<|start_header_id|>");
            puts_(&b, m->role);
            puts_(&b, "<|end_header_id|>\n\n");
            put_stripped(&b, m->content);
            puts_(&b, "<|eot_id|>");
        } else {
            puts_(&b, "<|im_start|>");
            puts_(&b, m->role);
            puts_(&b, "\n");
            puts_(&b, m->content);
            puts_(&b, "<|im_end|>\n");
        }
    }
    if (add_assistant) {
        if (strcmp(fmt, "bitnet") == 0) puts_(&b, "Assistant: ");
        else if (strcmp(fmt, "llama3") == 0) puts_(&b, "<|start_header_id|>assistant<|end_header_id|>\n\n");
        else puts_(&b, "<|im_start|>assistant\n");
    }
    if (b.failed) {
        bn_free(b.p);
        return bn_error(BN_ERR_NOMEM, "out of memory formatting a chat");
    }
    *out = b.p;
    return BN_OK;
}
