/* Chat formats: exact strings for each format, recognition of chat templates, bad inputs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "chat/chat.h"
#include "common/error.h"

static const bn_chat_msg conv[] = {
    {"system", "  You are helpful.\n"},
    {"user", "How are you?"},
    {"assistant", " Fine. "},
    {"user", "\xE3\x80\x80" "Bye\xC2\xA0"}, /* U+3000 and U+00A0 are stripped like Python's strip() */
};

static void expect(const char *name, const bn_chat_msg *m, size_t n, bool add, const char *want)
{
    char *out = NULL;
    assert_int_equal(bn_chat_format(name, NULL, m, n, add, &out), BN_OK);
    assert_string_equal(out, want);
    free(out);
}

static void test_bitnet(void **state)
{
    (void)state;
    expect("bitnet", conv, 4, true,
           "System: You are helpful.<|eot_id|>User: How are you?<|eot_id|>Assistant: Fine.<|eot_id|>"
           "User: Bye<|eot_id|>Assistant: ");
    expect("bitnet", conv + 1, 1, false, "User: How are you?<|eot_id|>");
    bn_chat_msg odd = {"TOOL", "x"};
    expect("bitnet", &odd, 1, false, "Tool: x<|eot_id|>");
}

static void test_llama3(void **state)
{
    (void)state;
    expect("llama3", conv, 2, true,
           "<|start_header_id|>system<|end_header_id|>\n\nYou are helpful.<|eot_id|>"
           "<|start_header_id|>user<|end_header_id|>\n\nHow are you?<|eot_id|>"
           "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

static void test_chatml(void **state)
{
    (void)state;
    expect("chatml", conv + 1, 2, true,
           "<|im_start|>user\nHow are you?<|im_end|>\n<|im_start|>assistant\n Fine. <|im_end|>\n"
           "<|im_start|>assistant\n");
    expect("chatml", NULL, 0, false, "");
}

static void test_detect(void **state)
{
    (void)state;
    /* the start of what bitnet.cpp's converter writes, and the Hugging Face 2B-4T template */
    assert_string_equal(bn_chat_detect("{% for message in messages %}{% if loop.first %}{{ bos_token }}"
                                       "{% endif %}...BITNETAssistant: "),
                        "bitnet");
    assert_string_equal(bn_chat_detect("{% for message in messages %}{{ message['role'] | capitalize + ': ' + "
                                       "message['content'] | trim + '<|eot_id|>' }}{% endfor %}{% if "
                                       "add_generation_prompt %}{{ 'Assistant: ' }}{% endif %}"),
                        "bitnet");
    /* Llama-3's own template (tests/data/tokenizer/tokenizer_config.json) */
    assert_string_equal(bn_chat_detect("{% set content = '<|start_header_id|>' + message['role'] + "
                                       "'<|end_header_id|>\\n\\n' %}"),
                        "llama3");
    assert_string_equal(bn_chat_detect("{{'<|im_start|>' + message['role'] + '\\n'}}"), "chatml");
    assert_null(bn_chat_detect("{{ messages }}"));
    assert_null(bn_chat_detect(NULL));
    assert_string_equal(bn_chat_resolve(NULL, NULL), "bitnet");
    assert_string_equal(bn_chat_resolve(NULL, "<|im_start|>"), "chatml");
    assert_string_equal(bn_chat_resolve("llama3", "<|im_start|>"), "llama3"); /* the name wins */
    assert_null(bn_chat_resolve("vicuna", NULL));
    char *out = NULL;
    assert_int_equal(bn_chat_format(NULL, "<|start_header_id|>", conv + 1, 1, false, &out), BN_OK);
    assert_string_equal(out, "<|start_header_id|>user<|end_header_id|>\n\nHow are you?<|eot_id|>");
    free(out);
}

static void test_bad_input(void **state)
{
    (void)state;
    char *out = (char *)1;
    assert_int_equal(bn_chat_format("vicuna", NULL, conv, 1, true, &out), BN_ERR_INVALID_ARG);
    assert_null(out);
    assert_non_null(strstr(bn_last_error(), "vicuna"));
    bn_chat_msg bad[] = {{"user", NULL}};
    assert_int_equal(bn_chat_format("bitnet", NULL, bad, 1, true, &out), BN_ERR_INVALID_ARG);
    bn_chat_msg bad2[] = {{"", "x"}};
    assert_int_equal(bn_chat_format("bitnet", NULL, bad2, 1, true, &out), BN_ERR_INVALID_ARG);
    assert_int_equal(bn_chat_format("bitnet", NULL, NULL, 2, true, &out), BN_ERR_INVALID_ARG);
    assert_int_equal(bn_chat_format("bitnet", NULL, conv, 1, true, NULL), BN_ERR_INVALID_ARG);
    /* only whitespace strips to nothing; invalid UTF-8 is kept as it is */
    bn_chat_msg ws[] = {{"user", " \t\n "}, {"user", "\xFF "}};
    char *o2;
    assert_int_equal(bn_chat_format("bitnet", NULL, ws, 2, false, &o2), BN_OK);
    assert_string_equal(o2, "User: <|eot_id|>User: \xFF<|eot_id|>");
    free(o2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bitnet), cmocka_unit_test(test_llama3),    cmocka_unit_test(test_chatml),
        cmocka_unit_test(test_detect), cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
