/* Chat formats: turning a conversation into the prompt text a model was trained on.
 *   bitnet  BitNet b1.58 2B-4T's training format: per message "Role: " + content.strip() +
 *           "<|eot_id|>", then "Assistant: " to prompt a reply;
 *   llama3  "<|start_header_id|>role<|end_header_id|>\n\n" + content.strip() + "<|eot_id|>";
 *   chatml  "<|im_start|>role\n" + content + "<|im_end|>\n".
 * The text never contains BOS: tokenize it with the tokenizer's add_bos and with special tokens
 * parsed (see docs/chat-formats.md for the exact strings and how a format is chosen). */
#ifndef BN_CHAT_CHAT_H
#define BN_CHAT_CHAT_H

#include <stdbool.h>
#include <stddef.h>

#include "common/status.h"

typedef struct bn_chat_msg {
    const char *role; /* "system", "user", "assistant" (others are allowed) */
    const char *content;
} bn_chat_msg;

/* The format a model's tokenizer.chat_template asks for: "bitnet", "llama3", "chatml", or NULL
 * when the template is NULL or not recognised. */
const char *bn_chat_detect(const char *model_chat_template);

/* The format bn_chat_format uses for (name, model template): name if given, else the detected
 * one, else "bitnet" (the project's default model family).  NULL if name is not a known format. */
const char *bn_chat_resolve(const char *name, const char *model_chat_template);

/* Formats n messages (n may be 0).  *out is malloc'd (free()).  BN_ERR_INVALID_ARG for an unknown
 * name or a message without role or content. */
bn_status bn_chat_format(const char *name, const char *model_chat_template, const bn_chat_msg *msgs, size_t n,
                         bool add_assistant, char **out);

/* The known format names, NULL-terminated. */
extern const char *const bn_chat_names[];

#endif
