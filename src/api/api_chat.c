/* Public API: chat formats, chosen from the model's tokenizer.chat_template or by name. */
#include "api/api_internal.h"
#include "chat/chat.h"
#include "common/error.h"
#include "common/mem.h"

bitnet_status bitnet_chat_format(const bitnet_model *m, const char *template_name, const bitnet_chat_message *msgs,
                                 size_t n_msgs, bool add_assistant, char **out)
{
    if (!out) return (bitnet_status)bn_error(BN_ERR_INVALID_ARG, "bitnet_chat_format: out is NULL");
    *out = NULL;
    if (!m || (n_msgs && !msgs)) return (bitnet_status)bn_error(BN_ERR_INVALID_ARG, "bitnet_chat_format: NULL argument");
    /* bitnet_chat_message and bn_chat_msg have the same layout; copy anyway to keep them independent */
    bn_chat_msg *cm = bn_calloc(n_msgs ? n_msgs : 1, sizeof *cm);
    if (!cm) return BITNET_ERR_NOMEM;
    for (size_t i = 0; i < n_msgs; i++) {
        cm[i].role = msgs[i].role;
        cm[i].content = msgs[i].content;
    }
    bn_status st = bn_chat_format(template_name, m->chat_template, cm, n_msgs, add_assistant, out);
    bn_free(cm);
    return (bitnet_status)st;
}

const char *bitnet_chat_template_name(const bitnet_model *m)
{
    return bn_chat_resolve(NULL, m ? m->chat_template : NULL);
}
