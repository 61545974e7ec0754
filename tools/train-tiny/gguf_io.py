"""Minimal GGUF v3 reader and writer (little-endian), enough for ternary (I2_S, TQ1_0, TQ2_0) models.

Layout: magic "GGUF", u32 version 3, u64 tensor count, u64 KV count, the KVs
(string key, u32 type, value), the tensor infos (name, u32 n_dims, u64 dims ne0 first,
u32 type, u64 offset relative to the data section), padding to the alignment (32 unless
general.alignment says otherwise), then the tensor data, each tensor aligned.
"""
import struct

import numpy as np

# Value types.
UINT8, INT8, UINT16, INT16, UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY, UINT64, INT64, FLOAT64 = range(13)
_SCALAR = {UINT8: "<B", INT8: "<b", UINT16: "<H", INT16: "<h", UINT32: "<I", INT32: "<i",
           FLOAT32: "<f", BOOL: "<?", UINT64: "<Q", INT64: "<q", FLOAT64: "<d"}

# Tensor types (ggml ids; I2_S is the BitNet fork's).  Sizes: (elements per block, bytes per block).
F32, F16, Q8_0, Q6_K, BF16, TQ1_0, TQ2_0, I2_S = 0, 1, 8, 14, 30, 34, 35, 36
_BLOCK = {F32: (1, 4), F16: (1, 2), BF16: (1, 2), Q8_0: (32, 34), Q6_K: (256, 210), TQ1_0: (256, 54),
          TQ2_0: (256, 66)}
TYPE_NAMES = {F32: "F32", F16: "F16", Q8_0: "Q8_0", Q6_K: "Q6_K", BF16: "BF16", TQ1_0: "TQ1_0",
              TQ2_0: "TQ2_0", I2_S: "I2_S"}
ALIGNMENT = 32


def i2s_nbytes(n_elements):
    return n_elements // 4 + 32


def tensor_nbytes(ttype, shape):
    n = 1
    for d in shape:
        n *= d
    if ttype == I2_S:
        return i2s_nbytes(n)
    if ttype in _BLOCK:
        blk, size = _BLOCK[ttype]
        if n % blk:
            raise ValueError("%s tensor of %d elements is not whole blocks" % (TYPE_NAMES[ttype], n))
        return n // blk * size
    raise ValueError("unsupported tensor type %d" % ttype)


# --- reading --------------------------------------------------------------------
class _Reader:
    def __init__(self, buf):
        self.buf = buf
        self.pos = 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.buf, self.pos)[0]
        self.pos += struct.calcsize(fmt)
        return v

    def string(self):
        n = self.take("<Q")
        s = bytes(self.buf[self.pos:self.pos + n]).decode("utf-8")
        self.pos += n
        return s

    def value(self, vtype):
        if vtype == STRING:
            return self.string()
        if vtype == ARRAY:
            et = self.take("<I")
            n = self.take("<Q")
            return (et, [self.value(et) for _ in range(n)])
        return self.take(_SCALAR[vtype])


def read(path):
    """Returns (kvs: list of (key, type, value)), tensors: dict name -> (type, shape, bytes view)."""
    with open(path, "rb") as f:
        buf = f.read()
    r = _Reader(buf)
    if buf[:4] != b"GGUF":
        raise ValueError("not a GGUF file")
    r.pos = 4
    version = r.take("<I")
    if version != 3:
        raise ValueError("GGUF version %d" % version)
    n_t = r.take("<Q")
    n_kv = r.take("<Q")
    kvs = []
    for _ in range(n_kv):
        k = r.string()
        t = r.take("<I")
        kvs.append((k, t, r.value(t)))
    align = ALIGNMENT
    for k, t, v in kvs:
        if k == "general.alignment":
            align = v
    infos = []
    for _ in range(n_t):
        name = r.string()
        nd = r.take("<I")
        shape = [r.take("<Q") for _ in range(nd)]
        tt = r.take("<I")
        off = r.take("<Q")
        infos.append((name, tt, shape, off))
    data_start = (r.pos + align - 1) // align * align
    tensors = {}
    for name, tt, shape, off in infos:
        nb = tensor_nbytes(tt, shape)
        tensors[name] = (tt, shape, memoryview(buf)[data_start + off:data_start + off + nb])
    return kvs, tensors, {"data_start": data_start, "order": [i[0] for i in infos],
                          "offsets": {i[0]: i[3] for i in infos}}


def kv_dict(kvs):
    return {k: (v[1] if t == ARRAY else v) for k, t, v in kvs}


# --- I2_S -----------------------------------------------------------------------
def i2s_pack(codes, scale):
    """codes: uint8 array (values 0,1,2 = -1,0,+1), row-major, size % 128 == 0.
    Block of 128 elements -> 32 bytes; byte j = elems j, 32+j, 64+j, 96+j, high bits first."""
    c = np.asarray(codes, dtype=np.uint8).reshape(-1, 4, 32)
    packed = (c[:, 0] << 6) | (c[:, 1] << 4) | (c[:, 2] << 2) | c[:, 3]
    tail = struct.pack("<f", scale) + bytes(28)
    return packed.astype(np.uint8).tobytes() + tail


def i2s_unpack(data, n_elements):
    """Returns (int8 values in {-1,0,1}, float32 scale)."""
    raw = np.frombuffer(data, dtype=np.uint8, count=n_elements // 4).reshape(-1, 32)
    c = np.stack([(raw >> 6) & 3, (raw >> 4) & 3, (raw >> 2) & 3, raw & 3], axis=1)
    vals = c.reshape(-1).astype(np.int8) - 1
    vals[vals == 2] = 0  # code 3 is unused; treat as 0 like the reference dequantizer
    scale = struct.unpack_from("<f", data, n_elements // 4)[0]
    return vals, scale


# --- TQ2_0 / TQ1_0 (spec §5) ------------------------------------------------------
def tq2_unpack(data, n_elements):
    """256-element blocks of qs[64] + fp16 d.  Byte m of each 32-byte half holds elements m, m+32,
    m+64, m+96 of that half at bit offsets 0, 2, 4, 6.  Returns (int8 values in {-1,0,1},
    float32 block scales d)."""
    b = np.frombuffer(data, dtype=np.uint8, count=n_elements // 256 * 66).reshape(-1, 66)
    qs = b[:, :64].reshape(-1, 2, 1, 32)
    codes = (qs >> (2 * np.arange(4, dtype=np.uint8)).reshape(1, 1, 4, 1)) & 3  # [blk, half, l, m]
    d = b[:, 64:66].copy().view(np.float16).reshape(-1).astype(np.float32)
    return codes.reshape(-1).astype(np.int8) - 1, d


def _trits(byte_arr, n):
    """Trits 0..n-1 of base-3 groups stored as ceil(v*256/243): ((uint8)(b*3^k) * 3) >> 8."""
    out = []
    for k in range(n):
        q = (byte_arr.astype(np.uint16) * (3 ** k)) & 0xFF
        out.append(((q * 3) >> 8).astype(np.int8) - 1)
    return np.stack(out, axis=1)  # [..., k, j] with k the trit (most significant first)


def tq1_unpack(data, n_elements):
    """256-element blocks of qs[48] + qh[4] + fp16 d: qs[0..31] hold 5 trits of elements
    {m, m+32, ..., m+128}; qs[32..47] 5 trits of the next 80 (stride 16); qh[0..3] 4 trits of
    the last 16 (stride 4).  Returns (int8 values in {-1,0,1}, float32 block scales d)."""
    b = np.frombuffer(data, dtype=np.uint8, count=n_elements // 256 * 54).reshape(-1, 54)
    first = _trits(b[:, 0:32], 5).reshape(-1, 160)    # element 32k + m
    second = _trits(b[:, 32:48], 5).reshape(-1, 80)   # element 160 + 16k + m
    last = _trits(b[:, 48:52], 4).reshape(-1, 16)     # element 240 + 4k + j
    d = b[:, 52:54].copy().view(np.float16).reshape(-1).astype(np.float32)
    return np.concatenate([first, second, last], axis=1).reshape(-1), d


def dequantize(ttype, data, n_elements):
    """Float32 values of a tensor of one of the types above (except Q6_K)."""
    if ttype == F32:
        return np.frombuffer(data, dtype="<f4", count=n_elements).copy()
    if ttype == F16:
        return np.frombuffer(data, dtype="<f2", count=n_elements).astype(np.float32)
    if ttype == BF16:
        h = np.frombuffer(data, dtype="<u2", count=n_elements).astype(np.uint32) << 16
        return h.view(np.float32)
    if ttype == Q8_0:
        b = np.frombuffer(data, dtype=np.uint8, count=n_elements // 32 * 34).reshape(-1, 34)
        d = b[:, :2].copy().view(np.float16).astype(np.float32)
        return (b[:, 2:].view(np.int8).astype(np.float32) * d).reshape(-1)
    if ttype == I2_S:
        vals, scale = i2s_unpack(data, n_elements)
        return vals.astype(np.float32) * np.float32(scale)
    if ttype in (TQ1_0, TQ2_0):
        vals, d = (tq1_unpack if ttype == TQ1_0 else tq2_unpack)(data, n_elements)
        return (vals.reshape(-1, 256).astype(np.float32) * d[:, None]).reshape(-1)
    raise ValueError("cannot dequantize type %s" % TYPE_NAMES.get(ttype, ttype))


# --- writing --------------------------------------------------------------------
def _pack_string(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def _pack_value(vtype, v):
    if vtype == STRING:
        return _pack_string(v)
    if vtype == ARRAY:
        et, items = v
        out = [struct.pack("<IQ", et, len(items))]
        if et == STRING:
            out.extend(_pack_string(s) for s in items)
        else:
            out.append(np.asarray(items, dtype=np.dtype(_SCALAR[et])).tobytes())
        return b"".join(out)
    return struct.pack(_SCALAR[vtype], v)


def write(path, kvs, tensors):
    """kvs: list of (key, type, value); tensors: list of (name, type, shape ne0-first, bytes)."""
    out = [b"GGUF", struct.pack("<IQQ", 3, len(tensors), len(kvs))]
    for k, t, v in kvs:
        out.append(_pack_string(k) + struct.pack("<I", t) + _pack_value(t, v))
    off = 0
    for name, tt, shape, data in tensors:
        if len(data) != tensor_nbytes(tt, shape):
            raise ValueError("%s: %d bytes, expected %d" % (name, len(data), tensor_nbytes(tt, shape)))
        out.append(_pack_string(name) + struct.pack("<I", len(shape))
                   + b"".join(struct.pack("<Q", d) for d in shape) + struct.pack("<IQ", tt, off))
        off += (len(data) + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT
    head = b"".join(out)
    head += bytes((-len(head)) % ALIGNMENT)
    body = []
    for name, tt, shape, data in tensors:
        body.append(bytes(data))
        body.append(bytes((-len(data)) % ALIGNMENT))
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(head)
        f.write(b"".join(body))
    import os
    os.replace(tmp, path)
