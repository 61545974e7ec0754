/* Unit tests of the downloader's pieces that need no server: name checks, header parsing,
 * cache folder, SHA-256 and model references (tools/bitnet/download.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "download.h"

static void test_repo_names(void **state)
{
    (void)state;
    const char *good[] = {"microsoft/bitnet-b1.58-2B-4T-gguf", "gpt2", "a/b", "A_1/b.c"};
    const char *bad[] = {"",      "../x",   "a/../b", "/a",   "a/",  "a/b/c", "a--b/c", "a//b", ".a/b",
                         "a/b.",  "-a/b",   "a b/c",  "a\\b", "a/b\n", "a:b/c", "a/b?x"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) assert_null(dl_check_repo(good[i]));
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) assert_non_null(dl_check_repo(bad[i]));
    assert_non_null(dl_check_repo(NULL));
}

static void test_file_names(void **state)
{
    (void)state;
    const char *good[] = {"ggml-model-i2_s.gguf", "sub/dir/model.gguf", "a b.gguf", "..a", "a..", "x.gguf.partial"};
    const char *bad[] = {"",     "/etc/passwd", "../x",  "a/../x", "a/..",   "./a",    "a/./b",  "a//b",
                         "a/",   "x\ny",        "x\\y",  "x.part", "d/x.lock", "x.meta", "x.tmp", "\x7f"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) assert_null(dl_check_file(good[i]));
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) assert_non_null(dl_check_file(bad[i]));
    char longname[300];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_non_null(dl_check_file(longname)); /* one part over the limit */
}

static void test_revisions(void **state)
{
    (void)state;
    assert_null(dl_check_rev("main"));
    assert_null(dl_check_rev("refs/pr/1"));
    assert_null(dl_check_rev("0123456789abcdef0123456789abcdef01234567"));
    assert_non_null(dl_check_rev(""));
    assert_non_null(dl_check_rev("."));
    assert_non_null(dl_check_rev(".."));
    assert_non_null(dl_check_rev("a\tb"));
}

static void test_percent_encode(void **state)
{
    (void)state;
    char out[64];
    assert_true(dl_percent_encode("refs/pr/1", false, out, sizeof out));
    assert_string_equal(out, "refs%2Fpr%2F1");
    assert_true(dl_percent_encode("a b/c~d.gguf", true, out, sizeof out));
    assert_string_equal(out, "a%20b/c~d.gguf");
    assert_true(dl_percent_encode("\xc3\xa9", false, out, sizeof out));
    assert_string_equal(out, "%C3%A9");
    assert_false(dl_percent_encode("abc", false, out, 3)); /* no room for the terminator */
    assert_false(dl_percent_encode(" ", false, out, 3));
}

static void test_content_range(void **state)
{
    (void)state;
    int64_t a, b, t;
    assert_true(dl_parse_content_range("bytes 100-199/200", &a, &b, &t));
    assert_int_equal(a, 100);
    assert_int_equal(b, 199);
    assert_int_equal(t, 200);
    assert_true(dl_parse_content_range("bytes 0-9/*", &a, &b, &t));
    assert_int_equal(t, -1);
    assert_true(dl_parse_content_range("bytes */1234", &a, &b, &t));
    assert_int_equal(a, -1);
    assert_int_equal(t, 1234);
    const char *bad[] = {"",
                         "bytes",
                         "bytes 10-5/20",
                         "bytes 0-20/20",
                         "bytes */*",
                         "bits 0-1/2",
                         "bytes 0-1/2x",
                         "bytes -1-2/3",
                         "bytes 0-1",
                         "bytes 99999999999999999999-1/2",
                         "bytes 0 -1/2"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) assert_false(dl_parse_content_range(bad[i], &a, &b, &t));
    assert_false(dl_parse_content_range(NULL, &a, &b, &t));
}

static void test_retry_after(void **state)
{
    (void)state;
    assert_int_equal(dl_parse_retry_after("5", 0), 5000);
    assert_int_equal(dl_parse_retry_after(" 0", 0), 0);
    assert_int_equal(dl_parse_retry_after("999999999", 0), 86400000L); /* capped at a day */
    /* Wed, 21 Oct 2015 07:28:00 GMT is 1445412480 */
    assert_int_equal(dl_parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412470L), 10000);
    assert_int_equal(dl_parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412490L), 0); /* past */
    assert_int_equal(dl_parse_retry_after("soon", 0), -1);
    assert_int_equal(dl_parse_retry_after("5s", 0), -1);
    assert_int_equal(dl_parse_retry_after("", 0), -1);
    assert_int_equal(dl_parse_retry_after(NULL, 0), -1);
}

static void test_etag_sha(void **state)
{
    (void)state;
    char out[65];
    const char *hex = "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD";
    char quoted[80];
    snprintf(quoted, sizeof quoted, "W/\"%s\"", hex);
    assert_true(dl_etag_sha256(quoted, out));
    assert_string_equal(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_true(dl_etag_sha256(hex, out));
    assert_false(dl_etag_sha256("\"abc\"", out));
    assert_false(dl_etag_sha256("\"d41d8cd98f00b204e9800998ecf8427e\"", out)); /* an MD5 */
    assert_false(dl_etag_sha256("\"zz7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\"", out));
    assert_false(dl_etag_sha256(NULL, out));
}

static void test_sha256_file(void **state)
{
    (void)state;
    char path[] = "/tmp/bitnet-dl-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    char out[65];
    assert_true(dl_sha256_file(fd, out));
    assert_string_equal(out, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_int_equal(write(fd, "abc", 3), 3);
    assert_true(dl_sha256_file(fd, out));
    assert_string_equal(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    close(fd);
    unlink(path);
    assert_false(dl_sha256_file(-1, out));
}

static void test_cache_root(void **state)
{
    (void)state;
    char out[PATH_MAX];
    setenv("BITNET_CACHE", "/c/bn", 1);
    setenv("XDG_CACHE_HOME", "/x", 1);
    setenv("HOME", "/h", 1);
    assert_true(dl_cache_root(out, sizeof out));
    assert_string_equal(out, "/c/bn");
    unsetenv("BITNET_CACHE");
    assert_true(dl_cache_root(out, sizeof out));
    assert_string_equal(out, "/x/bitnet");
    setenv("XDG_CACHE_HOME", "relative", 1); /* the XDG spec says to ignore it */
    assert_true(dl_cache_root(out, sizeof out));
    assert_string_equal(out, "/h/.cache/bitnet");
    unsetenv("XDG_CACHE_HOME");
    assert_true(dl_cache_root(out, sizeof out));
    assert_string_equal(out, "/h/.cache/bitnet");
    assert_false(dl_cache_root(out, 4));
}

static void test_model_ref(void **state)
{
    (void)state;
    char repo[128], rev[128], file[256];
    const char *why;
    assert_true(dl_is_model_ref("hf:a/b/c.gguf"));
    assert_false(dl_is_model_ref("models/x.gguf"));
    assert_true(dl_parse_model_ref("hf:microsoft/bitnet-b1.58-2B-4T-gguf/ggml-model-i2_s.gguf", repo, sizeof repo,
                                   rev, sizeof rev, file, sizeof file, &why));
    assert_null(why);
    assert_string_equal(repo, "microsoft/bitnet-b1.58-2B-4T-gguf");
    assert_string_equal(rev, "main");
    assert_string_equal(file, "ggml-model-i2_s.gguf");
    assert_true(dl_parse_model_ref("hf:o/n@v1.0/sub/m.gguf", repo, sizeof repo, rev, sizeof rev, file, sizeof file,
                                   &why));
    assert_string_equal(repo, "o/n");
    assert_string_equal(rev, "v1.0");
    assert_string_equal(file, "sub/m.gguf");
    const char *bad[] = {"hf:", "hf:o/n", "hf:o/n/", "hf:o/../x", "hf:../../x/y", "hf:o/n/../../x", "hf:o/n//x",
                         "hf:o/n@/x", "hf:o/n@../x", "x:o/n/f"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        why = NULL;
        assert_false(dl_parse_model_ref(bad[i], repo, sizeof repo, rev, sizeof rev, file, sizeof file, &why));
        assert_non_null(why);
    }
    assert_false(dl_parse_model_ref("hf:o/n/f.gguf", repo, 3, rev, sizeof rev, file, sizeof file, &why));
}

/* A cached hf: reference resolves without any network access (the server here is unreachable). */
static void test_resolve_cached(void **state)
{
    (void)state;
    char dir[] = "/tmp/bitnet-dl-cache-XXXXXX";
    assert_non_null(mkdtemp(dir));
    setenv("BITNET_CACHE", dir, 1);
    setenv("HF_ENDPOINT", "http://127.0.0.1:1", 1);
    char sub[PATH_MAX], path[PATH_MAX + 16], out[PATH_MAX + 16];
    snprintf(sub, sizeof sub, "%s/o--n", dir);
    assert_int_equal(mkdir(sub, 0755), 0);
    snprintf(sub, sizeof sub, "%s/o--n/main", dir);
    assert_int_equal(mkdir(sub, 0755), 0);
    snprintf(path, sizeof path, "%s/m.gguf", sub);
    int fd = open(path, O_CREAT | O_WRONLY, 0644);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(dl_resolve_model_ref("hf:o/n/m.gguf", out, sizeof out), DL_OK);
    assert_string_equal(out, path);
    assert_int_equal(dl_resolve_model_ref("hf:o/n/m.gguf", out, 10), DL_EUSAGE); /* does not fit */
    assert_int_equal(dl_resolve_model_ref("local.gguf", out, sizeof out), DL_OK);
    assert_string_equal(out, "local.gguf");
    assert_int_equal(dl_resolve_model_ref("hf:o/n/../x", out, sizeof out), DL_EUSAGE);
    unlink(path);
    rmdir(sub);
    snprintf(sub, sizeof sub, "%s/o--n", dir);
    rmdir(sub);
    rmdir(dir);
    unsetenv("BITNET_CACHE");
    unsetenv("HF_ENDPOINT");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_repo_names),    cmocka_unit_test(test_file_names),
        cmocka_unit_test(test_revisions),     cmocka_unit_test(test_percent_encode),
        cmocka_unit_test(test_content_range), cmocka_unit_test(test_retry_after),
        cmocka_unit_test(test_etag_sha),      cmocka_unit_test(test_sha256_file),
        cmocka_unit_test(test_cache_root),    cmocka_unit_test(test_model_ref),
        cmocka_unit_test(test_resolve_cached),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
