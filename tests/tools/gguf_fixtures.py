#!/usr/bin/env python3
"""Writes the GGUF test fixtures into the directory given as argv[1].

quant.gguf      one tensor per supported type (random bytes, finite scales) plus
                "<name>.ref", gguf.quants.dequantize of the same bytes, and
                f16_round.src / f16_round.ref (numpy's f32 -> f16 rounding).
valid.gguf      every metadata kind and a few tensors; valid_v2.gguf is the same
                file stamped version 2.
bad_*.gguf      malformed files made by cutting or patching valid.gguf at offsets
                taken from gguf.GGUFReader; bad_files.txt lists
                "<file> <expected substring>" per line for test_gguf.
"""
import logging
import os
import struct
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as QT
from gguf import GGUFValueType as VT

logging.disable(logging.WARNING)

QUANT_TYPES = ["F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q4_K", "Q5_K", "Q6_K", "Q5_0", "Q5_1"]
# Byte offsets of the f16 scale fields within one block.
SCALE_FIELDS = {"Q8_0": [0], "Q4_0": [0], "Q4_1": [0, 2], "Q5_0": [0], "Q5_1": [0, 2], "Q4_K": [0, 2],
                "Q5_K": [0, 2], "Q6_K": [208]}


def write_quant(path, rng):
    w = gguf.GGUFWriter(path, "test")
    rows_cycle = [3, 5, 7]
    for i, name in enumerate(QUANT_TYPES):
        qt = QT[name]
        block, type_size = gguf.GGML_QUANT_SIZES[qt]
        rows = rows_cycle[i % 3]
        if block == 1:
            ne0 = 37 + 2 * i
            if name == "F32":
                vals = rng.standard_normal((rows, ne0)).astype(np.float32)
                raw = vals.view(np.uint8)
            elif name == "F16":
                vals = (rng.standard_normal((rows, ne0)) * 100).astype(np.float16)
                special = [0.0, -0.0, 65504.0, -65504.0, np.inf, -np.inf, 6e-8, -6e-8, 3e-5, 6.1e-5]
                vals.flat[: len(special)] = np.array(special, dtype=np.float16)
                raw = vals.view(np.uint8)
            else:
                bits = rng.standard_normal((rows, ne0)).astype(np.float32).view(np.uint32) >> 16
                raw = bits.astype(np.uint16).view(np.uint8)
        else:
            nb = 1 + (i % 2)
            ne0 = nb * block
            raw = rng.integers(0, 256, size=(rows, nb, type_size), dtype=np.uint8)
            for off in SCALE_FIELDS[name]:
                scales = rng.uniform(-2.0, 2.0, size=(rows, nb)).astype(np.float16)
                raw[:, :, off:off + 2] = scales.view(np.uint8).reshape(rows, nb, 2)
            raw = raw.reshape(rows, nb * type_size)
        raw = np.ascontiguousarray(raw)
        ref = gguf.quants.dequantize(raw, qt).astype(np.float32).reshape(rows, ne0)
        w.add_tensor("q." + name, raw, raw_dtype=qt)
        w.add_tensor("q." + name + ".ref", np.ascontiguousarray(ref))

    special = np.array([
        0.0, -0.0, 1.0, -1.0, 65504.0, 65519.99, 65520.0, 65536.0, 1e30, -1e30, np.inf, -np.inf,
        2.0 ** -14, 2.0 ** -24, 2.0 ** -25, 1.5 * 2.0 ** -25, 2.0 ** -26, 3 * 2.0 ** -25,
        5 * 2.0 ** -25, 2.0 ** -14 - 2.0 ** -25, 1e-45, 1.0 + 2.0 ** -11, 1.0 + 3 * 2.0 ** -11,
        1.0 + 2.0 ** -11 + 2.0 ** -20, 2049.0, 2051.0, 0.1, 1.0 / 3.0,
    ], dtype=np.float32)
    mags = rng.uniform(-28, 17, size=3000)
    rnd = (rng.choice([-1.0, 1.0], size=3000) * np.exp2(mags)).astype(np.float32)
    bits = rng.integers(0, 2 ** 32, size=3000, dtype=np.uint64).astype(np.uint32)
    bits = bits[(bits & 0x7F800000) != 0x7F800000]  # no NaN/inf from random bits
    src = np.concatenate([special, rnd, bits.view(np.float32)]).astype(np.float32)
    with np.errstate(over="ignore"):
        dst = src.astype(np.float16)
    w.add_tensor("f16_round.src", src)
    w.add_tensor("f16_round.ref", dst)
    finish(w)


def finish(w):
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def write_valid(path):
    w = gguf.GGUFWriter(path, "test")
    w.add_uint8("test.u8", 200)
    w.add_int8("test.i8", -100)
    w.add_uint16("test.u16", 60000)
    w.add_int16("test.i16", -30000)
    w.add_uint32("test.u32", 4000000000)
    w.add_int32("test.i32", -2000000000)
    w.add_float32("test.f32", 1.5)
    w.add_bool("test.bool", True)
    w.add_bool("test.false", False)
    w.add_string("test.string", "hello gguf")
    w.add_array("test.str_arr", ["a", "bc", "", "d\u00e9f"])
    w.add_key_value("test.i32_arr", [1, -2, 3, 2147483647, -2147483648], VT.ARRAY, sub_type=VT.INT32)
    w.add_key_value("test.f32_arr", [0.5, -1.25, 3.0], VT.ARRAY, sub_type=VT.FLOAT32)
    w.add_key_value("test.u8_arr", [1, 2, 255], VT.ARRAY, sub_type=VT.UINT8)
    w.add_key_value("test.i64_arr", [5, 2 ** 40], VT.ARRAY, sub_type=VT.INT64)
    w.add_key_value("test.nested", [[1, 2], [3]], VT.ARRAY, sub_type=VT.ARRAY)
    w.add_uint64("test.u64", 2 ** 63 + 5)
    w.add_uint64("test.u64_small", 12345678901)
    w.add_int64("test.i64", -(2 ** 40))
    w.add_float64("test.f64", 2.718281828)
    w.add_tensor("tok_embd.weight", np.arange(32, dtype=np.float32).reshape(4, 8))
    q = gguf.quants.quantize(np.linspace(-1, 1, 64, dtype=np.float32).reshape(2, 32), QT.Q8_0)
    w.add_tensor("blk.0.attn_q.weight", q, raw_dtype=QT.Q8_0)
    w.add_tensor("blk.0.attn_k.weight", q, raw_dtype=QT.Q8_0)
    w.add_tensor("output_norm.weight", np.linspace(0, 7, 8).astype(np.float16))
    finish(w)


def write_alignment(path, value):
    w = gguf.GGUFWriter(path, "test")
    w.add_uint32("general.alignment", value)
    w.add_tensor("t", np.ones(8, dtype=np.float32))
    finish(w)


def write_align64(path):
    w = gguf.GGUFWriter(path, "test")
    w.add_custom_alignment(64)
    w.add_tensor("a", np.ones(3, dtype=np.float32))
    w.add_tensor("b", np.arange(5, dtype=np.float32))
    finish(w)


class Layout:
    """Byte offsets of the fields of a GGUF file, from gguf.GGUFReader."""

    def __init__(self, path):
        r = gguf.GGUFReader(path)
        self.kv = {}
        for name, f in r.fields.items():
            if name.startswith("GGUF."):
                continue
            offs, pos = [], f.offset
            for part in f.parts:
                offs.append(pos)
                pos += part.nbytes
            self.kv[name] = offs  # key_len, key, type, value parts...
        self.tensor = {}
        for t in r.tensors:
            offs, pos = [], t.field.offset
            for part in t.field.parts:
                offs.append(pos)
                pos += part.nbytes
            # name_len, name, n_dims, dims, type, offset; plus data range
            self.tensor[t.name] = offs + [t.data_offset, t.n_bytes]


def patched(data, *edits):
    b = bytearray(data)
    for off, fmt, val in edits:
        struct.pack_into("<" + fmt, b, off, val)
    return bytes(b)


def write_bad(out, valid):
    lay = Layout(os.path.join(out, "valid.gguf"))
    q = lay.tensor["blk.0.attn_q.weight"]
    k = lay.tensor["blk.0.attn_k.weight"]
    e = lay.tensor["tok_embd.weight"]
    last = lay.tensor["output_norm.weight"]
    bad = {
        "empty": (b"", "empty"),
        "tiny": (b"GGU", "too small"),
        "short_header": (valid[:20], "too small for a GGUF header"),
        "magic": (b"GGML" + valid[4:], "not a GGUF file"),
        "version1": (patched(valid, (4, "I", 1)), "unsupported GGUF version 1 ("),
        "version99": (patched(valid, (4, "I", 99)), "unsupported GGUF version 99"),
        "trunc_meta": (valid[:lay.kv["test.f64"][3] + 3], "truncated at offset"),
        "trunc_key": (valid[:lay.kv["test.i64"][1] + 3], "name of metadata key 19: string length 8"),
        "trunc_counts": (valid[:200], "kv_count 21 cannot fit"),
        "trunc_data": (valid[:last[6] + last[7] // 2], "tensor 'output_norm.weight' data"),
        "past_end": (patched(valid, (q[5], "Q", 320)), "tensor 'blk.0.attn_q.weight' data [1312..1380) extends past end of file (size 1344)"),
        "offset_wrap": (patched(valid, (q[5], "Q", 2 ** 64 - 32)), "offset 18446744073709551584 is past end of file"),
        "unknown_type": (patched(valid, (q[4], "I", 99)), "tensor 'blk.0.attn_q.weight' has unknown type 99"),
        "unsupported_type": (patched(valid, (q[4], "I", 10)), "unsupported type Q2_K (10)"),
        "dims_huge0": (patched(valid, (e[3], "Q", 2 ** 62)), "needs more bytes than the whole file"),
        "dims_huge1": (patched(valid, (e[3] + 8, "Q", 2 ** 62)), "needs more bytes than the whole file"),
        "dims_overflow": (patched(valid, (e[3], "Q", 2 ** 33), (e[3] + 8, "Q", 2 ** 33)),
                          "needs more bytes than the whole file"),
        "dims_negative": (patched(valid, (e[3], "Q", 2 ** 63 + 1)), "must be positive"),
        "dims_zero": (patched(valid, (e[3] + 8, "Q", 0)), "dimension 1 is 0"),
        "ndims5": (patched(valid, (q[2], "I", 5)), "has 5 dimensions"),
        "ndims0": (patched(valid, (q[2], "I", 0)), "has 0 dimensions"),
        "row_block": (patched(valid, (q[3], "Q", 16), (q[3] + 8, "Q", 4)), "not a multiple of the Q8_0 block size 32"),
        "misaligned": (patched(valid, (k[5], "Q", struct.unpack_from("<Q", valid, k[5])[0] + 4)),
                       "is not a multiple of the alignment 32"),
        "key_len_huge": (patched(valid, (lay.kv["test.u8"][0], "Q", 2 ** 62)), "string length 4611686018427387904"),
        "str_len_huge": (patched(valid, (lay.kv["test.string"][3], "Q", 2 ** 63)), "value of metadata key 'test.string'"),
        "arr_len_huge": (patched(valid, (lay.kv["test.f32_arr"][4], "Q", 2 ** 61)), "metadata key 'test.f32_arr': array of"),
        "str_arr_len_huge": (patched(valid, (lay.kv["test.str_arr"][4], "Q", 2 ** 61)), "'test.str_arr': array of"),
        "value_type": (patched(valid, (lay.kv["test.i16"][2], "I", 13)), "'test.i16' has unknown value type 13"),
        "elem_type": (patched(valid, (lay.kv["test.i32_arr"][3], "I", 77)), "unknown element type 77"),
        "kv_count": (patched(valid, (16, "Q", 2 ** 60)), "kv_count"),
        "tensor_count": (patched(valid, (8, "Q", 2 ** 60)), "tensor_count"),
        "dup_key": (valid[:lay.kv["test.i8"][1]] + b"test.u8" + valid[lay.kv["test.i8"][1] + 7:],
                    "duplicate metadata key 'test.u8'"),
        "dup_tensor": (valid[:k[1]] + b"blk.0.attn_q.weight" + valid[k[1] + 19:],
                       "duplicate tensor name 'blk.0.attn_q.weight'"),
    }
    return bad


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(1234)
    write_quant(os.path.join(out, "quant.gguf"), rng)
    write_valid(os.path.join(out, "valid.gguf"))
    with open(os.path.join(out, "valid.gguf"), "rb") as fh:
        valid = fh.read()
    with open(os.path.join(out, "valid_v2.gguf"), "wb") as fh:
        fh.write(patched(valid, (4, "I", 2)))
    write_align64(os.path.join(out, "valid_align64.gguf"))
    write_alignment(os.path.join(out, "bad_align0.gguf"), 0)
    write_alignment(os.path.join(out, "bad_align48.gguf"), 48)
    lines = ["bad_align0.gguf general.alignment is 0", "bad_align48.gguf general.alignment is 48"]
    for name, (data, expect) in write_bad(out, valid).items():
        fname = "bad_" + name + ".gguf"
        with open(os.path.join(out, fname), "wb") as fh:
            fh.write(data)
        lines.append(fname + " " + expect)
    with open(os.path.join(out, "bad_files.txt"), "w") as fh:
        fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
