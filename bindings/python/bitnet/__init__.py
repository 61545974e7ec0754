"""Python bindings for BitNet.c (ctypes over libbitnet; no compiler needed).

    import bitnet
    with bitnet.Model("model.gguf") as m:
        print(m.generate("In the beginning", max_tokens=32, temperature=0))
        ids = m.tokenize("Hello")
        with m.context(n_ctx=256) as ctx:
            logits = ctx.eval(ids)          # list of floats for the last token

The shared library is found through $BITNET_LIBRARY, next to this package's source tree
(build/libbitnet.so), or on the system's library path.
"""
import ctypes
import ctypes.util
import os

__all__ = ["Model", "Context", "BitnetError", "version"]


def _load_library():
    candidates = []
    if os.environ.get("BITNET_LIBRARY"):
        candidates.append(os.environ["BITNET_LIBRARY"])
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
    candidates += [os.path.join(root, "build", "libbitnet.so"), os.path.join(root, "build", "libbitnet.dylib")]
    found = ctypes.util.find_library("bitnet")
    if found:
        candidates.append(found)
    for path in candidates:
        if path and os.path.exists(path) or (path and not os.path.sep in path):
            try:
                return ctypes.CDLL(path)
            except OSError:
                continue
    raise OSError("libbitnet not found: build it (make) or set BITNET_LIBRARY")


_lib = _load_library()
_c = ctypes
_lib.bitnet_last_error.restype = _c.c_char_p
_lib.bitnet_version.restype = _c.c_char_p


class BitnetError(RuntimeError):
    """A failing library call; the message is bitnet_last_error()."""

    def __init__(self, status):
        super().__init__(_lib.bitnet_last_error().decode("utf-8", "replace"))
        self.status = status


def _check(status):
    if status != 0:
        raise BitnetError(status)


class _SamplerParams(_c.Structure):
    _fields_ = [("temperature", _c.c_float), ("top_k", _c.c_int), ("top_p", _c.c_float), ("min_p", _c.c_float),
                ("repeat_penalty", _c.c_float), ("repeat_last_n", _c.c_int), ("presence_penalty", _c.c_float),
                ("frequency_penalty", _c.c_float), ("seed", _c.c_uint64)]


class _GenerateParams(_c.Structure):
    _fields_ = [("max_tokens", _c.c_int), ("sampling", _SamplerParams), ("stop", _c.POINTER(_c.c_char_p)),
                ("n_stop", _c.c_size_t), ("add_bos", _c.c_bool), ("parse_special", _c.c_bool), ("n_ctx", _c.c_int),
                ("n_threads", _c.c_int)]


class _ContextParams(_c.Structure):
    _fields_ = [("n_ctx", _c.c_int), ("n_threads", _c.c_int), ("n_batch", _c.c_int), ("kv_type", _c.c_int),
                ("match_reference", _c.c_bool), ("batch_split", _c.c_int)]


_lib.bitnet_model_load.argtypes = [_c.c_char_p, _c.c_void_p, _c.POINTER(_c.c_void_p)]
_lib.bitnet_model_free.argtypes = [_c.c_void_p]
_lib.bitnet_model_tokenizer.argtypes = [_c.c_void_p]
_lib.bitnet_model_tokenizer.restype = _c.c_void_p
_lib.bitnet_generate.argtypes = [_c.c_void_p, _c.c_char_p, _c.POINTER(_GenerateParams)]
_lib.bitnet_generate.restype = _c.c_void_p
_lib.bitnet_free_string.argtypes = [_c.c_void_p]
_lib.bitnet_generate_params_default.argtypes = [_c.POINTER(_GenerateParams)]
_lib.bitnet_tokenize.argtypes = [_c.c_void_p, _c.c_char_p, _c.c_size_t, _c.c_int, _c.POINTER(_c.c_int32), _c.c_size_t,
                                 _c.POINTER(_c.c_size_t)]
_lib.bitnet_detokenize.argtypes = [_c.c_void_p, _c.POINTER(_c.c_int32), _c.c_size_t, _c.c_bool]
_lib.bitnet_detokenize.restype = _c.c_void_p
_lib.bitnet_tokenizer_n_vocab.argtypes = [_c.c_void_p]
_lib.bitnet_context_params_default.argtypes = [_c.POINTER(_ContextParams)]
_lib.bitnet_context_init.argtypes = [_c.c_void_p, _c.POINTER(_ContextParams), _c.POINTER(_c.c_void_p)]
_lib.bitnet_context_free.argtypes = [_c.c_void_p]
_lib.bitnet_context_pos.argtypes = [_c.c_void_p]
_lib.bitnet_eval.argtypes = [_c.c_void_p, _c.POINTER(_c.c_int32), _c.c_int, _c.c_bool]
_lib.bitnet_get_logits.argtypes = [_c.c_void_p, _c.c_int]
_lib.bitnet_get_logits.restype = _c.POINTER(_c.c_float)

TOKENIZE_ADD_BOS, TOKENIZE_NO_BOS, TOKENIZE_PARSE_SPECIAL = 1, 2, 4


def version():
    return _lib.bitnet_version().decode()


def _take_string(ptr):
    if not ptr:
        raise BitnetError(1)
    try:
        return _c.string_at(ptr).decode("utf-8")
    finally:
        _lib.bitnet_free_string(ptr)


class Model:
    """A loaded GGUF model (read-only; may be shared by several contexts)."""

    def __init__(self, path):
        self._h = _c.c_void_p()
        _check(_lib.bitnet_model_load(os.fsencode(path), None, _c.byref(self._h)))
        self._tok = _lib.bitnet_model_tokenizer(self._h)

    def close(self):
        if self._h:
            _lib.bitnet_model_free(self._h)
            self._h = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()

    @property
    def n_vocab(self):
        return _lib.bitnet_tokenizer_n_vocab(self._tok)

    def tokenize(self, text, add_bos=True, parse_special=False):
        data = text.encode("utf-8")
        flags = (TOKENIZE_ADD_BOS if add_bos else TOKENIZE_NO_BOS) | (TOKENIZE_PARSE_SPECIAL if parse_special else 0)
        cap = len(data) + 8
        buf = (_c.c_int32 * cap)()
        n = _c.c_size_t()
        _check(_lib.bitnet_tokenize(self._tok, data, len(data), flags, buf, cap, _c.byref(n)))
        return list(buf[:n.value])

    def detokenize(self, ids, special=False):
        arr = (_c.c_int32 * len(ids))(*ids)
        return _take_string(_lib.bitnet_detokenize(self._tok, arr, len(ids), special))

    def generate(self, prompt, max_tokens=128, temperature=0.8, top_k=40, top_p=0.95, min_p=0.05, seed=0,
                 stop=()):
        p = _GenerateParams()
        _lib.bitnet_generate_params_default(_c.byref(p))
        p.max_tokens, p.sampling.temperature, p.sampling.top_k = max_tokens, temperature, top_k
        p.sampling.top_p, p.sampling.min_p, p.sampling.seed = top_p, min_p, seed
        stops = (_c.c_char_p * max(1, len(stop)))(*[s.encode() for s in stop])
        p.stop, p.n_stop = stops, len(stop)
        return _take_string(_lib.bitnet_generate(self._h, prompt.encode("utf-8"), _c.byref(p)))

    def context(self, n_ctx=0, n_threads=0):
        return Context(self, n_ctx, n_threads)


class Context:
    """A KV cache for evaluating tokens with a model."""

    def __init__(self, model, n_ctx=0, n_threads=0):
        self.model = model
        p = _ContextParams()
        _lib.bitnet_context_params_default(_c.byref(p))
        p.n_ctx, p.n_threads = n_ctx, n_threads
        self._h = _c.c_void_p()
        _check(_lib.bitnet_context_init(model._h, _c.byref(p), _c.byref(self._h)))

    def close(self):
        if self._h:
            _lib.bitnet_context_free(self._h)
            self._h = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()

    @property
    def pos(self):
        return _lib.bitnet_context_pos(self._h)

    def eval(self, ids, all_logits=False):
        """Evaluates ids at the current position; returns the last token's logits (or all rows)."""
        arr = (_c.c_int32 * len(ids))(*ids)
        _check(_lib.bitnet_eval(self._h, arr, len(ids), all_logits))
        nv = self.model.n_vocab
        rows = range(len(ids)) if all_logits else [-1]
        out = [_lib.bitnet_get_logits(self._h, i)[:nv] for i in rows]
        return out if all_logits else out[0]
