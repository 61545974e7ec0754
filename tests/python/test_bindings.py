"""The Python bindings against the real stories260K model (llama2.c's published greedy text)."""
import ctypes
import os
import sys

sys.path.insert(0, os.path.join(os.environ["BITNET_SOURCE_DIR"], "bindings", "python"))
import bitnet  # noqa: E402

data = os.environ["BITNET_TEST_DATA"]
expected = open(os.path.join(data, "gguf", "stories260K_expected_greedy_200steps.txt")).read()

with bitnet.Model(os.path.join(data, "gguf", "stories260K.gguf")) as m:
    assert m.n_vocab == 512
    ids = m.tokenize("Once upon a time")
    assert ids[0] == 1 and len(ids) > 2, ids
    assert m.detokenize(ids[1:]).strip() == "Once upon a time"
    text = m.generate("Once upon a time", max_tokens=40, temperature=0)
    assert expected.startswith("Once upon a time" + text), text
    with m.context(n_ctx=64) as ctx:
        logits = ctx.eval(ids)
        assert len(logits) == 512 and ctx.pos == len(ids)
        best = max(range(512), key=lambda i: logits[i])
        assert m.generate("Once upon a time", max_tokens=1, temperature=0) == m.detokenize(ids[1:] + [best])[len("Once upon a time"):]
# The ctypes mirrors of the parameter structs must be as large as the C structs the library fills:
# a canary right after each must survive the C defaults function.
for cls, fill in ((bitnet._ContextParams, bitnet._lib.bitnet_context_params_default),
                  (bitnet._GenerateParams, bitnet._lib.bitnet_generate_params_default),
                  (bitnet._SamplerParams, bitnet._lib.bitnet_sampler_params_default)):
    class Guarded(ctypes.Structure):
        _fields_ = [("p", cls), ("canary", ctypes.c_uint8 * 32)]
    g = Guarded()
    ctypes.memset(ctypes.byref(g.canary), 0xAB, 32)
    fill.argtypes = [ctypes.c_void_p]
    fill(ctypes.byref(g.p))
    assert all(b == 0xAB for b in g.canary), "%s is smaller than its C struct" % cls.__name__

try:
    bitnet.Model("/nonexistent.gguf")
    raise AssertionError("loading a missing file must fail")
except bitnet.BitnetError as e:
    assert "nonexistent" in str(e)
print("python bindings: ok (bitnet %s)" % bitnet.version())
