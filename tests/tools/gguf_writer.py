#!/usr/bin/python3
"""A small GGUF v3 writer (and reader) with numpy quantizers, used to build test models for the
Tidelane inference engine.

Written independently from the C++ engine (router/engine), from the public GGUF specification
(ggml docs/gguf.md) and the ggml block layouts (block_q4_0, block_q4_K, ...). The quantizers are
simple (max-abs / min-max / per-sub-block scale+min), not ggml's optimal search, but the bytes
follow ggml's layouts exactly. Each type also has a dequantizer written from the block layout,
so references compute with exactly the values stored in the file.

Run the self-check:  /usr/bin/python3 tests/tools/gguf_writer.py --self-test
Library use:
    w = GGUFWriter()
    w.add_string("general.architecture", "llama"); w.add_uint32("llama.block_count", 2)
    w.add_tensor("token_embd.weight", np_array_out_by_in, "q4_k")
    w.write("model.gguf")
"""
import struct
import sys

import numpy as np

GGUF_MAGIC = b"GGUF"
GGUF_VERSION = 3
DEFAULT_ALIGNMENT = 32

# Metadata value types (gguf.md, enum gguf_metadata_value_type).
UINT8, INT8, UINT16, INT16, UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY, UINT64, INT64, FLOAT64 = range(13)

_SCALAR_FORMATS = {
    UINT8: "<B", INT8: "<b", UINT16: "<H", INT16: "<h", UINT32: "<I", INT32: "<i",
    FLOAT32: "<f", BOOL: "<?", UINT64: "<Q", INT64: "<q", FLOAT64: "<d",
}

# Tensor types: name -> (ggml type id, elements per block, bytes per block).
TYPES = {
    "f32": (0, 1, 4),
    "f16": (1, 1, 2),
    "q4_0": (2, 32, 18),    # f16 d; u8 qs[16]
    "q4_1": (3, 32, 20),    # f16 d, f16 m; u8 qs[16]
    "q5_0": (6, 32, 22),    # f16 d; u8 qh[4]; u8 qs[16]
    "q5_1": (7, 32, 24),    # f16 d, f16 m; u8 qh[4]; u8 qs[16]
    "q8_0": (8, 32, 34),    # f16 d; i8 qs[32]
    "q4_k": (12, 256, 144),  # f16 d, f16 dmin; u8 scales[12]; u8 qs[128]
    "q5_k": (13, 256, 176),  # f16 d, f16 dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]
    "q6_k": (14, 256, 210),  # u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d
    "bf16": (30, 1, 2),
}
TYPE_BY_ID = {v[0]: k for k, v in TYPES.items()}


def type_info(qtype):
    """Accepts a type name ('q4_k') or ggml id (12); returns (name, id, block, bytes_per_block)."""
    name = TYPE_BY_ID[qtype] if isinstance(qtype, int) else qtype.lower()
    tid, blk, nbytes = TYPES[name]
    return name, tid, blk, nbytes


# ---------------------------------------------------------------------------------------------
# Scalar conversions
# ---------------------------------------------------------------------------------------------

def f16_bytes(x):
    """float array -> (..., 2) uint8 of IEEE half, little-endian."""
    return np.ascontiguousarray(np.asarray(x, dtype="<f2")).view(np.uint8).reshape(*np.shape(x), 2)


def f16_round(x):
    """The value a float takes once stored as f16 (so quantizers compute with the stored scale)."""
    return np.asarray(x, dtype=np.float32).astype(np.float16).astype(np.float32)


def f16_round_up(x):
    """Smallest f16 >= x (x >= 0), so a scale never ends up too small to cover its block."""
    h = np.asarray(x, dtype=np.float32).astype(np.float16)
    low = h.astype(np.float32) < x
    h[low] = np.nextafter(h[low], np.float16(np.inf))
    return h.astype(np.float32)


def bf16_from_f32(x):
    """float32 -> bf16 bits (uint16), round to nearest even like ggml_compute_fp32_to_bf16."""
    u = np.ascontiguousarray(x, dtype="<f4").view(np.uint32).astype(np.uint64)
    rounded = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    nan = np.isnan(np.asarray(x, dtype=np.float32))
    rounded[nan] = ((u[nan] >> 16) | 64).astype(np.uint16)  # keep NaN quiet
    return rounded


def bf16_to_f32(bits):
    return (np.asarray(bits, dtype=np.uint32) << 16).view(np.float32)


def _half_at(blocks, offset):
    """Reads the f16 at byte `offset` of every block row -> float32 column (nb, 1)."""
    return np.ascontiguousarray(blocks[:, offset:offset + 2]).view("<f2").astype(np.float32)


def _safe_inv(d):
    return np.divide(1.0, d, out=np.zeros_like(d), where=d != 0)


# ---------------------------------------------------------------------------------------------
# 32-element block quantizers (ggml quantize_row_*_ref logic, vectorised over blocks)
# ---------------------------------------------------------------------------------------------

def _pack_nibbles_32(q):
    """q: (nb, 32) values 0..15 -> (nb, 16) bytes: element j in the low nibble of byte j,
    element j+16 in the high nibble (ggml's _0/_1 layout)."""
    return (q[:, :16] | (q[:, 16:] << 4)).astype(np.uint8)


def _unpack_nibbles_32(qs):
    return np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.int32)


def _signed_absmax(x):
    """Per row, the element with the largest magnitude, keeping its sign (ggml _0 types)."""
    idx = np.argmax(np.abs(x), axis=1)
    return x[np.arange(x.shape[0]), idx][:, None]


def quantize_q8_0(x):
    amax = np.max(np.abs(x), axis=1, keepdims=True)
    d = f16_round(amax / 127.0)
    q = np.clip(np.rint(x * _safe_inv(d)), -127, 127).astype(np.int8)
    return np.concatenate([f16_bytes(d[:, 0]), q.view(np.uint8)], axis=1)


def quantize_q4_0(x):
    # Largest-magnitude element maps to -8; the top code then clips at 7 (as in ggml).
    d = f16_round(_signed_absmax(x) / -8.0)
    q = np.clip(np.rint(x * _safe_inv(d)) + 8, 0, 15).astype(np.uint8)
    return np.concatenate([f16_bytes(d[:, 0]), _pack_nibbles_32(q)], axis=1)


def quantize_q5_0(x):
    d = f16_round(_signed_absmax(x) / -16.0)
    q = np.clip(np.rint(x * _safe_inv(d)) + 16, 0, 31).astype(np.uint32)
    return np.concatenate([f16_bytes(d[:, 0]), _pack_qh_32(q), _pack_nibbles_32(q & 15)], axis=1)


def _min_max_scale(x, levels):
    """min/max scheme for _1 types: x ~ d*q + m with q in 0..levels. Scale and min are the
    f16 values that get stored; the min is rounded down and the scale up so nothing clips."""
    lo = x.min(axis=1, keepdims=True)
    m = f16_round(lo)
    m = np.where(m > lo, np.nextafter(m.astype(np.float16), np.float16(-np.inf)).astype(np.float32), m)
    d = f16_round_up((x.max(axis=1, keepdims=True) - m) / levels)
    q = np.clip(np.rint((x - m) * _safe_inv(d)), 0, levels).astype(np.uint32)
    return d, m, q


def quantize_q4_1(x):
    d, m, q = _min_max_scale(x, 15)
    return np.concatenate([f16_bytes(d[:, 0]), f16_bytes(m[:, 0]), _pack_nibbles_32(q)], axis=1)


def quantize_q5_1(x):
    d, m, q = _min_max_scale(x, 31)
    return np.concatenate([f16_bytes(d[:, 0]), f16_bytes(m[:, 0]), _pack_qh_32(q),
                           _pack_nibbles_32(q & 15)], axis=1)


def _pack_qh_32(q):
    """Fifth bit of element j -> bit j of a little-endian uint32 (4 bytes)."""
    bits = ((q >> 4) & 1).astype(np.uint32) << np.arange(32, dtype=np.uint32)
    return bits.sum(axis=1, dtype=np.uint32).astype("<u4").view(np.uint8).reshape(-1, 4)


# ---------------------------------------------------------------------------------------------
# K-quants (super-blocks of 256)
# ---------------------------------------------------------------------------------------------

def _k_scales_mins(x, levels):
    """Shared by Q4_K/Q5_K. x: (nb, 8, 32). Each sub-block j is x ~ d*sc[j]*q - dmin*m[j] with
    q in 0..levels and 6-bit sc, m. Mins are rounded up and scales up so no code clips: the
    error per element is then at most half a step. Returns d, dmin (nb,1), sc, m (nb,8), q."""
    neg_min = np.maximum(-x.min(axis=2), 0.0)            # (nb, 8), >= 0 like ggml
    dmin = f16_round_up(neg_min.max(axis=1, keepdims=True) / 63.0)
    m = np.clip(np.ceil(neg_min * _safe_inv(dmin) - 1e-6), 0, 63)
    m_eff = dmin * m                                      # >= neg_min
    need = (x.max(axis=2) + m_eff) / levels               # step each sub-block needs
    d = f16_round_up(need.max(axis=1, keepdims=True) / 63.0)
    sc = np.clip(np.ceil(need * _safe_inv(d) - 1e-6), 0, 63)
    step = (d * sc)[:, :, None]
    q = np.clip(np.rint((x + m_eff[:, :, None]) * _safe_inv(step)), 0, levels).astype(np.uint32)
    return d, dmin, sc.astype(np.uint8), m.astype(np.uint8), q


def _pack_k4_scales(sc, m):
    """ggml's 12-byte packing of eight 6-bit scales and mins (inverse of get_scale_min_k4):
    bytes 0-3: sc[0..3] | (sc[4..7] >> 4) << 6;  bytes 4-7: m[0..3] | (m[4..7] >> 4) << 6;
    bytes 8-11: (sc[4..7] & 15) | (m[4..7] & 15) << 4."""
    out = np.zeros((sc.shape[0], 12), dtype=np.uint8)
    out[:, 0:4] = sc[:, 0:4] | ((sc[:, 4:8] >> 4) << 6)
    out[:, 4:8] = m[:, 0:4] | ((m[:, 4:8] >> 4) << 6)
    out[:, 8:12] = (sc[:, 4:8] & 15) | ((m[:, 4:8] & 15) << 4)
    return out


def _pack_k_low_nibbles(q):
    """q: (nb, 8, 32). Sub-blocks 2i and 2i+1 share bytes qs[32i : 32i+32]: 2i in the low
    nibble, 2i+1 in the high nibble."""
    lo = q[:, 0::2, :] & 15
    hi = q[:, 1::2, :] & 15
    return (lo | (hi << 4)).astype(np.uint8).reshape(q.shape[0], 128)


def quantize_q4_k(x):
    x = x.reshape(-1, 8, 32)
    d, dmin, sc, m, q = _k_scales_mins(x, 15)
    return np.concatenate([f16_bytes(d[:, 0]), f16_bytes(dmin[:, 0]), _pack_k4_scales(sc, m),
                           _pack_k_low_nibbles(q)], axis=1)


def quantize_q5_k(x):
    x = x.reshape(-1, 8, 32)
    d, dmin, sc, m, q = _k_scales_mins(x, 31)
    # qh[l] bit j = fifth bit of element l of sub-block j.
    qh = (((q >> 4) & 1) << np.arange(8, dtype=np.uint32)[None, :, None]).sum(axis=1).astype(np.uint8)
    return np.concatenate([f16_bytes(d[:, 0]), f16_bytes(dmin[:, 0]), _pack_k4_scales(sc, m), qh,
                           _pack_k_low_nibbles(q)], axis=1)


def quantize_q6_k(x):
    """16 sub-blocks of 16 with int8 scales; x ~ d*sc[j]*(q-32), q in 0..63 (we use 1..63 so the
    range is symmetric). Scales are rounded up so nothing clips."""
    nb = x.shape[0]
    xs = x.reshape(nb, 16, 16)
    need = np.abs(xs).max(axis=2) / 31.0                 # (nb, 16) step each sub-block needs
    d = f16_round_up(need.max(axis=1, keepdims=True) / 127.0)
    sc = np.clip(np.ceil(need * _safe_inv(d) - 1e-6), 0, 127)
    step = (d * sc)[:, :, None]
    q = (np.clip(np.rint(xs * _safe_inv(step)), -32, 31) + 32).astype(np.uint32).reshape(nb, 2, 4, 32)
    # Element n = 128h + 32k + l: low 4 bits in ql[64h + 32(k%2) + l] (low nibble k<2, high k>=2),
    # high 2 bits in qh[32h + l] at bit 2k; scale index n // 16.
    ql = ((q[:, :, 0:2, :] & 15) | ((q[:, :, 2:4, :] & 15) << 4)).astype(np.uint8).reshape(nb, 128)
    qh = ((q >> 4) << (2 * np.arange(4, dtype=np.uint32))[None, None, :, None]).sum(axis=2)
    qh = qh.astype(np.uint8).reshape(nb, 64)
    return np.concatenate([ql, qh, sc.astype(np.int8).view(np.uint8), f16_bytes(d[:, 0])], axis=1)


# ---------------------------------------------------------------------------------------------
# Dequantizers, written from the block layouts (blocks: (nb, bytes_per_block) uint8)
# ---------------------------------------------------------------------------------------------

def _dq_q8_0(b):
    return _half_at(b, 0) * b[:, 2:34].view(np.int8).astype(np.float32)


def _dq_q4_0(b):
    return _half_at(b, 0) * (_unpack_nibbles_32(b[:, 2:18]) - 8)


def _dq_q4_1(b):
    return _half_at(b, 0) * _unpack_nibbles_32(b[:, 4:20]) + _half_at(b, 2)


def _fifth_bits_32(qh_bytes):
    qh = np.ascontiguousarray(qh_bytes).view("<u4")           # (nb, 1)
    return ((qh >> np.arange(32, dtype=np.uint32)) & 1).astype(np.int32)  # bit j -> element j


def _dq_q5_0(b):
    q = _unpack_nibbles_32(b[:, 6:22]) | (_fifth_bits_32(b[:, 2:6]) << 4)
    return _half_at(b, 0) * (q - 16)


def _dq_q5_1(b):
    q = _unpack_nibbles_32(b[:, 8:24]) | (_fifth_bits_32(b[:, 4:8]) << 4)
    return _half_at(b, 0) * q + _half_at(b, 2)


def _get_scale_min_k4(s):
    """s: (nb, 12) -> sc, m (nb, 8), following ggml get_scale_min_k4(j, q)."""
    s = s.astype(np.int32)
    sc = np.empty((s.shape[0], 8), np.int32)
    m = np.empty((s.shape[0], 8), np.int32)
    for j in range(8):
        if j < 4:
            sc[:, j] = s[:, j] & 63
            m[:, j] = s[:, j + 4] & 63
        else:
            sc[:, j] = (s[:, j + 4] & 0xF) | ((s[:, j - 4] >> 6) << 4)
            m[:, j] = (s[:, j + 4] >> 4) | ((s[:, j] >> 6) << 4)
    return sc, m


def _dq_k_common(b, qs_off, qh_off):
    d, dmin = _half_at(b, 0), _half_at(b, 2)
    sc, m = _get_scale_min_k4(b[:, 4:16])
    out = np.empty((b.shape[0], 256), np.float32)
    for j in range(8):                       # sub-block j of 32 elements
        byte = b[:, qs_off + 32 * (j // 2): qs_off + 32 * (j // 2) + 32].astype(np.int32)
        q = (byte & 0xF) if j % 2 == 0 else (byte >> 4)
        if qh_off is not None:
            q = q + (((b[:, qh_off:qh_off + 32].astype(np.int32) >> j) & 1) << 4)
        out[:, 32 * j:32 * j + 32] = d * sc[:, j:j + 1] * q - dmin * m[:, j:j + 1]
    return out


def _dq_q4_k(b):
    return _dq_k_common(b, qs_off=16, qh_off=None)


def _dq_q5_k(b):
    return _dq_k_common(b, qs_off=48, qh_off=16)


def _dq_q6_k(b):
    ql, qh = b[:, 0:128].astype(np.int32), b[:, 128:192].astype(np.int32)
    sc = b[:, 192:208].view(np.int8).astype(np.float32)
    d = _half_at(b, 208)
    out = np.empty((b.shape[0], 256), np.float32)
    for n in range(256):
        h, k, l = n // 128, (n % 128) // 32, n % 32
        low = ql[:, 64 * h + 32 * (k % 2) + l]
        low = (low & 0xF) if k < 2 else (low >> 4)
        high = (qh[:, 32 * h + l] >> (2 * k)) & 3
        out[:, n] = d[:, 0] * sc[:, n // 16] * ((low | (high << 4)) - 32)
    return out


_QUANTIZERS = {"q8_0": quantize_q8_0, "q4_0": quantize_q4_0, "q4_1": quantize_q4_1,
               "q5_0": quantize_q5_0, "q5_1": quantize_q5_1, "q4_k": quantize_q4_k,
               "q5_k": quantize_q5_k, "q6_k": quantize_q6_k}
_DEQUANTIZERS = {"q8_0": _dq_q8_0, "q4_0": _dq_q4_0, "q4_1": _dq_q4_1, "q5_0": _dq_q5_0,
                 "q5_1": _dq_q5_1, "q4_k": _dq_q4_k, "q5_k": _dq_q5_k, "q6_k": _dq_q6_k}


def quantize(qtype, values):
    """float array (any shape, size a multiple of the block) -> raw bytes of that ggml type."""
    name, _, blk, _ = type_info(qtype)
    x = np.ascontiguousarray(values, dtype=np.float32).reshape(-1)
    if name == "f32":
        return x.astype("<f4").tobytes()
    if name == "f16":
        return x.astype("<f2").tobytes()
    if name == "bf16":
        return bf16_from_f32(x).astype("<u2").tobytes()
    if x.size % blk:
        raise ValueError(f"{name}: {x.size} elements is not a multiple of the block size {blk}")
    out = []
    chunk = blk * 65536                      # bounds the temporaries for 100M-parameter models
    for start in range(0, x.size, chunk):
        out.append(_QUANTIZERS[name](x[start:start + chunk].reshape(-1, blk)).tobytes())
    return b"".join(out)


def dequantize(qtype, data, n):
    """Raw bytes of a ggml type -> float32 array of n elements."""
    name, _, blk, nbytes = type_info(qtype)
    raw = np.frombuffer(data, dtype=np.uint8)
    if name == "f32":
        return raw[:4 * n].view("<f4").astype(np.float32)
    if name == "f16":
        return raw[:2 * n].view("<f2").astype(np.float32)
    if name == "bf16":
        return bf16_to_f32(raw[:2 * n].view("<u2"))
    nb = n // blk
    return _DEQUANTIZERS[name](raw[:nb * nbytes].reshape(nb, nbytes)).reshape(-1)


def tensor_nbytes(qtype, n):
    _, _, blk, nbytes = type_info(qtype)
    return n // blk * nbytes


# ---------------------------------------------------------------------------------------------
# The GGUF container
# ---------------------------------------------------------------------------------------------

def _pack_string(s):
    raw = s.encode("utf-8") if isinstance(s, str) else bytes(s)
    return struct.pack("<Q", len(raw)) + raw


def _pack_value(vtype, value):
    if vtype == STRING:
        return _pack_string(value)
    return struct.pack(_SCALAR_FORMATS[vtype], value)


class GGUFWriter:
    """Collects metadata and tensors, then writes a GGUF v3 file in one go."""

    def __init__(self, alignment=DEFAULT_ALIGNMENT):
        self.alignment = alignment
        self.kv = []        # (key, packed type+value bytes)
        self.tensors = []   # (name, dims ggml order, type id, raw bytes)
        self.add_uint32("general.alignment", alignment)

    # -- metadata --------------------------------------------------------------------------
    def add_value(self, key, vtype, value):
        self.kv.append((key, struct.pack("<I", vtype) + _pack_value(vtype, value)))

    def add_array(self, key, elem_type, values):
        body = struct.pack("<IIQ", ARRAY, elem_type, len(values))
        if elem_type == STRING:
            body += b"".join(_pack_string(v) for v in values)
        else:
            fmt = _SCALAR_FORMATS[elem_type]
            body += np.asarray(values, dtype=np.dtype(fmt)).tobytes()
        self.kv.append((key, body))

    def add_uint8(self, k, v): self.add_value(k, UINT8, v)
    def add_int8(self, k, v): self.add_value(k, INT8, v)
    def add_uint16(self, k, v): self.add_value(k, UINT16, v)
    def add_int16(self, k, v): self.add_value(k, INT16, v)
    def add_uint32(self, k, v): self.add_value(k, UINT32, v)
    def add_int32(self, k, v): self.add_value(k, INT32, v)
    def add_uint64(self, k, v): self.add_value(k, UINT64, v)
    def add_int64(self, k, v): self.add_value(k, INT64, v)
    def add_float32(self, k, v): self.add_value(k, FLOAT32, v)
    def add_float64(self, k, v): self.add_value(k, FLOAT64, v)
    def add_bool(self, k, v): self.add_value(k, BOOL, bool(v))
    def add_string(self, k, v): self.add_value(k, STRING, v)

    # -- tensors ---------------------------------------------------------------------------
    def add_transformer_hparams(self, arch, hp, rope_dims):
        """The `{arch}.*` hyper-parameters llama.cpp and our engine read, from a dict with ctx,
        dim, n_layers, ff, n_heads, n_kv_heads, rms_eps and rope_base."""
        self.add_uint32(f"{arch}.context_length", hp["ctx"])
        self.add_uint32(f"{arch}.embedding_length", hp["dim"])
        self.add_uint32(f"{arch}.block_count", hp["n_layers"])
        self.add_uint32(f"{arch}.feed_forward_length", hp["ff"])
        self.add_uint32(f"{arch}.attention.head_count", hp["n_heads"])
        self.add_uint32(f"{arch}.attention.head_count_kv", hp["n_kv_heads"])
        self.add_float32(f"{arch}.attention.layer_norm_rms_epsilon", hp["rms_eps"])
        self.add_float32(f"{arch}.rope.freq_base", hp["rope_base"])
        self.add_uint32(f"{arch}.rope.dimension_count", rope_dims)

    def add_tensor(self, name, array, qtype="f32"):
        """Quantizes `array` (numpy shape (..., in)) and records it with ggml dims reversed:
        ne[0] is the last numpy axis. Returns the raw bytes written."""
        array = np.asarray(array, dtype=np.float32)
        name_t, tid, blk, _ = type_info(qtype)
        if array.shape[-1] % blk:
            raise ValueError(f"{name}: row length {array.shape[-1]} not a multiple of {blk} for {name_t}")
        raw = quantize(name_t, array)
        self.add_raw_tensor(name, list(reversed(array.shape)), tid, raw)
        return raw

    def add_raw_tensor(self, name, ggml_dims, type_id, raw):
        self.tensors.append((name, [int(d) for d in ggml_dims], int(type_id), bytes(raw)))

    def _pad(self, n):
        return (-n) % self.alignment

    def write(self, path):
        header = GGUF_MAGIC + struct.pack("<IQQ", GGUF_VERSION, len(self.tensors), len(self.kv))
        header += b"".join(_pack_string(k) + body for k, body in self.kv)
        offset = 0
        infos = []
        for name, dims, tid, raw in self.tensors:
            infos.append(_pack_string(name) + struct.pack("<I", len(dims)) +
                         struct.pack(f"<{len(dims)}Q", *dims) + struct.pack("<IQ", tid, offset))
            offset += len(raw) + self._pad(len(raw))
        header += b"".join(infos)
        with open(path, "wb") as f:
            f.write(header + b"\0" * self._pad(len(header)))
            for _, _, _, raw in self.tensors:
                f.write(raw)
                f.write(b"\0" * self._pad(len(raw)))


# ---------------------------------------------------------------------------------------------
# A minimal reader (self-test, and to inspect files such as shared/models/*.gguf)
# ---------------------------------------------------------------------------------------------

class _Cursor:
    def __init__(self, buf):
        self.buf, self.pos = buf, 0

    def take(self, fmt):
        vals = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += struct.calcsize(fmt)
        return vals[0] if len(vals) == 1 else vals

    def string(self):
        n = self.take("<Q")
        s = bytes(self.buf[self.pos:self.pos + n]).decode("utf-8")
        self.pos += n
        return s

    def value(self, vtype):
        if vtype == STRING:
            return self.string()
        if vtype == ARRAY:
            etype, n = self.take("<I"), self.take("<Q")
            return [self.value(etype) for _ in range(n)]
        return self.take(_SCALAR_FORMATS[vtype])


def read_gguf(path, load_tensors=True):
    """Returns (metadata dict, tensors dict name -> dict(type, dims, data float32 numpy shape))."""
    buf = memoryview(open(path, "rb").read())
    c = _Cursor(buf)
    if bytes(buf[:4]) != GGUF_MAGIC:
        raise ValueError(f"{path}: not a GGUF file")
    c.pos = 4
    version, n_tensors, n_kv = c.take("<IQQ")
    if version != 3:
        raise ValueError(f"{path}: GGUF version {version}, expected 3")
    meta = {}
    for _ in range(n_kv):
        key = c.string()
        meta[key] = c.value(c.take("<I"))
    infos = []
    for _ in range(n_tensors):
        name = c.string()
        nd = c.take("<I")
        dims = list(struct.unpack_from(f"<{nd}Q", buf, c.pos))
        c.pos += 8 * nd
        tid, off = c.take("<IQ")
        infos.append((name, dims, tid, off))
    align = meta.get("general.alignment", DEFAULT_ALIGNMENT)
    data_start = c.pos + (-c.pos) % align
    tensors = {}
    for name, dims, tid, off in infos:
        n = int(np.prod(dims))
        entry = {"type": TYPE_BY_ID.get(tid, tid), "dims": dims, "offset": data_start + off}
        if load_tensors:
            start = data_start + off
            raw = bytes(buf[start:start + tensor_nbytes(tid, n)])
            entry["data"] = dequantize(tid, raw, n).reshape(list(reversed(dims)))
        tensors[name] = entry
    return meta, tensors


# ---------------------------------------------------------------------------------------------
# Self-test
# ---------------------------------------------------------------------------------------------

def _step_bound(name, x):
    """Largest error allowed per element for a block of inputs: half a quantisation step,
    or a full step for _0 types whose top code clips (ggml's -8/-16 convention), plus
    the f16/bf16 rounding of the input itself for float types."""
    ax = np.abs(x)
    if name == "f32":
        return np.zeros_like(x)
    if name == "f16":
        return ax * 2.0 ** -11 + 2.0 ** -24
    if name == "bf16":
        return ax * 2.0 ** -8
    blk = TYPES[name][1]
    xb = x.reshape(-1, blk)
    if name == "q8_0":
        step = np.abs(xb).max(1, keepdims=True) / 127 * 0.5
    elif name in ("q4_0", "q5_0"):
        step = np.abs(xb).max(1, keepdims=True) / (8 if name == "q4_0" else 16)
    elif name in ("q4_1", "q5_1"):
        step = (xb.max(1, keepdims=True) - xb.min(1, keepdims=True)) / (15 if name == "q4_1" else 31) * 0.5
    else:
        # K types: a sub-block's step is at most its own range/levels rounded up to a 6/8-bit
        # multiple of the super-block scale (d <= max range / (levels*63)).
        sub = 16 if name == "q6_k" else 32
        levels = {"q4_k": 15, "q5_k": 31, "q6_k": 31}[name]
        xs = x.reshape(-1, blk // sub, sub)
        if name == "q6_k":
            rng = np.abs(xs).max(2)
            d = rng.max(1, keepdims=True) / levels / 127
        else:
            rng = xs.max(2) - np.minimum(xs.min(2), 0) + np.maximum(-xs.min(2), 0).max(1, keepdims=True) / 63
            d = rng.max(1, keepdims=True) / levels / 63
        step = (rng / levels + d * 1.01)[:, :, None] * 0.5
        return np.broadcast_to(step, xs.shape).reshape(-1) * 1.002 + 1e-7
    return np.broadcast_to(step, xb.shape).reshape(-1) * 1.002 + 1e-7


def self_test():
    import os
    import tempfile
    rng = np.random.default_rng(1234)
    ok = True
    n = 256 * 24
    cases = {
        "normal": rng.standard_normal(n).astype(np.float32) * 0.02,
        "shifted": (rng.standard_normal(n) * 0.5 + 0.3).astype(np.float32),
        "uniform": rng.uniform(-3, 5, n).astype(np.float32),
        "spiky": np.where(rng.random(n) < 0.01, 50.0, 1.0).astype(np.float32) * rng.standard_normal(n).astype(np.float32),
    }
    cases["spiky"][:256] = 0.0          # an all-zero super-block must not divide by zero
    for name in TYPES:
        worst = 0.0
        for label, x in cases.items():
            raw = quantize(name, x)
            assert len(raw) == tensor_nbytes(name, n), (name, len(raw))
            y = dequantize(name, raw, n)
            err = np.abs(y - x)
            bound = _step_bound(name, x)
            ratio = float((err / np.maximum(bound, 1e-30)).max()) if name != "f32" else float(err.max())
            worst = max(worst, ratio)
            if (err > bound).any() or not np.isfinite(y).all():
                ok = False
                i = int(np.argmax(err - bound))
                print(f"FAIL {name} {label}: element {i} x={x[i]} y={y[i]} err={err[i]} bound={bound[i]}")
        rel = float(np.abs(dequantize(name, quantize(name, cases['normal']), n) - cases['normal']).max()
                    / np.abs(cases['normal']).max())
        print(f"{name:5s} id={TYPES[name][0]:2d} bytes/block={TYPES[name][2]:3d} "
              f"max err/bound={worst:.3f}  max rel err (normal)={rel:.2e}")

    # Hand-made blocks pin the bit layout independently of the quantizer.
    ok &= _layout_checks()

    # Container round trip: every metadata type, arrays, tensors, alignment.
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "t.gguf")
        w = GGUFWriter()
        scalars = [("u8", UINT8, 200), ("i8", INT8, -100), ("u16", UINT16, 60000), ("i16", INT16, -30000),
                   ("u32", UINT32, 4000000000), ("i32", INT32, -2000000000), ("f32", FLOAT32, 0.5),
                   ("b", BOOL, True), ("s", STRING, "héllo ▁"), ("u64", UINT64, 2 ** 63 + 5),
                   ("i64", INT64, -2 ** 62), ("f64", FLOAT64, 1e-300)]
        for key, vt, v in scalars:
            w.add_value("t." + key, vt, v)
        w.add_array("t.arr_s", STRING, ["a", "", "▁b"])
        w.add_array("t.arr_i32", INT32, [1, -2, 3])
        w.add_array("t.arr_f32", FLOAT32, [0.25, -1.5])
        expect = {}
        for i, name in enumerate(TYPES):
            a = rng.standard_normal((3, 256)).astype(np.float32)
            raw = w.add_tensor(f"w.{name}", a, name)
            expect[f"w.{name}"] = dequantize(name, raw, a.size).reshape(a.shape)
        w.add_tensor("odd", rng.standard_normal(7).astype(np.float32))   # forces padding
        w.add_tensor("after_odd", np.arange(5, dtype=np.float32))
        w.write(path)
        meta, tensors = read_gguf(path)
        for key, vt, v in scalars:
            got = meta["t." + key]
            if got != v:
                ok = False
                print(f"FAIL metadata t.{key}: {got!r} != {v!r}")
        if meta["t.arr_s"] != ["a", "", "▁b"] or meta["t.arr_i32"] != [1, -2, 3] or meta["t.arr_f32"] != [0.25, -1.5]:
            ok = False
            print("FAIL metadata arrays")
        for name, a in expect.items():
            t = tensors[name]
            if t["dims"] != [256, 3] or t["offset"] % 32 or not np.array_equal(t["data"], a):
                ok = False
                print(f"FAIL tensor {name}: dims {t['dims']} offset {t['offset']}")
        if not np.array_equal(tensors["after_odd"]["data"], np.arange(5)) or tensors["after_odd"]["offset"] % 32:
            ok = False
            print("FAIL padding after an odd-sized tensor")
    print("container round trip:", "ok" if ok else "FAILED")
    print("SELF-TEST", "PASSED" if ok else "FAILED")
    return ok


def _layout_checks():
    """Builds blocks by hand from the ggml struct definitions and checks dequantize reads them."""
    ok = True

    def check(label, got, want):
        nonlocal ok
        if not np.allclose(got, want, rtol=0, atol=1e-6):
            ok = False
            print(f"FAIL layout {label}: got {got[:8]} want {want[:8]}")

    one = np.float16(1.0).tobytes()
    half = np.float16(0.5).tobytes()
    # Q4_0: qs[j] low nibble = element j, high nibble = element j+16; value (q-8)*d.
    qs = bytes((j & 15) | ((15 - j) << 4) for j in range(16))
    want = np.array([j - 8 for j in range(16)] + [15 - j - 8 for j in range(16)], np.float32)
    check("q4_0", dequantize("q4_0", one + qs, 32), want)
    # Q4_1: d*q + m.
    check("q4_1", dequantize("q4_1", half + one + qs, 32), (want + 8) * 0.5 + 1)
    # Q5_0: bit j of the u32 qh is the fifth bit of element j.
    qh = struct.pack("<I", 0x80000001)            # element 0 and element 31
    want5 = np.array([j for j in range(16)] + [15 - j for j in range(16)], np.float32)
    want5[0] += 16
    want5[31] += 16
    check("q5_0", dequantize("q5_0", one + qh + qs, 32), want5 - 16)
    check("q5_1", dequantize("q5_1", one + half + qh + qs, 32), want5 + 0.5)
    # Q8_0
    q8 = np.arange(-16, 16, dtype=np.int8)
    check("q8_0", dequantize("q8_0", half + q8.tobytes(), 32), q8 * 0.5)
    # Q4_K: sub-block j has scale j+1 and min 60-j (6 bits; j>=4 use the split encoding).
    sc = np.arange(1, 9, dtype=np.uint8) + np.array([0, 0, 0, 0, 40, 40, 40, 40], np.uint8)
    mn = (60 - np.arange(8)).astype(np.uint8)
    scales = _pack_k4_scales(sc[None], mn[None])[0].tobytes()
    qsk = bytes((l & 15) | (((l + 3) & 15) << 4) for l in range(32)) * 4
    want_k = []
    for j in range(8):
        q = [(l & 15) if j % 2 == 0 else ((l + 3) & 15) for l in range(32)]
        want_k += [1.0 * sc[j] * v - 0.5 * mn[j] for v in q]
    got = dequantize("q4_k", one + half + scales + qsk, 256)
    check("q4_k", got, np.array(want_k, np.float32))
    # Unpacking the 12 scale bytes by hand: byte 0 = sc0 | (sc4>>4)<<6, byte 8 = (sc4&15)|(m4&15)<<4.
    s = np.frombuffer(scales, np.uint8)
    if s[0] != (sc[0] | ((sc[4] >> 4) << 6)) or s[8] != ((sc[4] & 15) | ((mn[4] & 15) << 4)):
        ok = False
        print("FAIL layout q4_k scale packing")
    # Q5_K: qh[l] bit j = fifth bit of element l of sub-block j. Set bit 3 for l=5.
    qh5 = bytearray(32)
    qh5[5] = 1 << 3
    got = dequantize("q5_k", one + half + scales + bytes(qh5) + qsk, 256)
    want5k = np.array(want_k, np.float32)
    want5k[3 * 32 + 5] += 16 * 1.0 * sc[3]
    check("q5_k", got, want5k)
    # Q6_K: element 128h+32k+l; ql[64h+32(k%2)+l] nibble (k<2 low, else high); qh[32h+l]>>(2k)&3.
    ql = bytearray(128)
    qh6 = bytearray(64)
    ql[64 + 32 + 7] = 0x5 | (0x9 << 4)        # h=1, k=1 low -> 5; k=3 high -> 9 (l=7)
    qh6[32 + 7] = (2 << 2) | (1 << 6)         # k=1 high bits 2, k=3 high bits 1
    sc6 = np.arange(-8, 8, dtype=np.int8)
    got = dequantize("q6_k", bytes(ql) + bytes(qh6) + sc6.tobytes() + half, 256)
    want6 = np.array([0.5 * sc6[n // 16] * (0 - 32) for n in range(256)], np.float32)
    want6[128 + 32 + 7] = 0.5 * sc6[(128 + 32 + 7) // 16] * ((5 | (2 << 4)) - 32)
    want6[128 + 96 + 7] = 0.5 * sc6[(128 + 96 + 7) // 16] * ((9 | (1 << 4)) - 32)
    check("q6_k", got, want6)
    # BF16: top half of the f32 bits, ties to even.
    check("bf16", bf16_to_f32(bf16_from_f32(np.array([1.0, 1.0 + 2 ** -8, 1.0 + 3 * 2 ** -8], np.float32))),
          np.array([1.0, 1.0, 1.0 + 4 * 2 ** -8], np.float32))
    print("hand-built block layouts:", "ok" if ok else "FAILED")
    return ok


if __name__ == "__main__":
    if "--self-test" in sys.argv:
        sys.exit(0 if self_test() else 1)
    if len(sys.argv) == 3 and sys.argv[1] == "--dump":
        meta, tensors = read_gguf(sys.argv[2], load_tensors=False)
        for k, v in meta.items():
            text = repr(v if not isinstance(v, list) or len(v) <= 8 else v[:8] + ["..."])
            print(f"{k} = {text}")
        for name, t in tensors.items():
            print(f"{name} {t['type']} {t['dims']} @{t['offset']}")
        sys.exit(0)
    print(__doc__)
    print("usage: gguf_writer.py --self-test | --dump FILE.gguf")
    sys.exit(2)
