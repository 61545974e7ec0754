"""Minimal GGUF v3 reader and writer (little-endian), enough for BitNet b1.58 files.

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

# Tensor types used here (ggml ids; I2_S is the BitNet fork's).
F32, F16, I2_S = 0, 1, 36
ALIGNMENT = 32


def i2s_nbytes(n_elements):
    return n_elements // 4 + 32


def tensor_nbytes(ttype, shape):
    n = 1
    for d in shape:
        n *= d
    if ttype == F32:
        return 4 * n
    if ttype == F16:
        return 2 * n
    if ttype == I2_S:
        return i2s_nbytes(n)
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
