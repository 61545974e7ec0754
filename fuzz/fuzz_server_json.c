/* libFuzzer target: the server's request parser (tools/bitnet/server_json.c) on arbitrary bodies,
 * as completions and as chat.  Accepted requests must be within the documented limits, and an
 * error must come back as valid JSON in OpenAI's shape. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../tools/bitnet/server_json.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (int chat = 0; chat < 2; chat++) {
        srv_params p;
        srv_error e;
        if (srv_params_parse((const char *)data, size, chat, 512, &p, &e)) {
            if (p.n_stop > SRV_MAX_STOP || p.top_logprobs > SRV_MAX_TOP_LOGPROBS) abort();
            if (chat ? p.n_msgs == 0 : p.n_prompts < 1 || p.n_prompts > SRV_MAX_PROMPTS) abort();
            for (int i = 0; i < p.n_prompts; i++)
                for (int k = 0; k < p.prompts[i].n_ids; k++)
                    if (p.prompts[i].ids[k] < 0 || p.prompts[i].ids[k] >= 512) abort();
            srv_params_free(&p);
        } else {
            if (e.status < 400 || e.status >= 600) abort();
            char *js = srv_error_json(&e);
            if (!js) abort();
            cJSON *back = cJSON_Parse(js);
            if (!back || !cJSON_IsString(cJSON_GetObjectItem(cJSON_GetObjectItem(back, "error"), "message"))) abort();
            cJSON_Delete(back);
            free(js);
        }
    }
    return 0;
}
