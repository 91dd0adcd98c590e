#!/usr/bin/env python3
"""Writes the small quantized checkpoints the quantization tests read.

Run from the repository root:  python3 core/src/test/python/make_quantized_fixtures.py
Needs numpy only (no torch, no safetensors package). Deterministic: the same files each run.

Each case directory under core/src/test/resources/dev/loadstone/quantization/ holds
  config.json           a model config whose quantization_config names the scheme
  model.safetensors     the quantized tensors, packed as the scheme's reference packer does
  expected.safetensors  per quantized weight (logical name), F64 [out, in]: the values, computed
                        in float64 from the integers / FP8 codes, zero points and scales
                        *before* packing, so the expected values do not depend on any unpacker

The definitions followed (see docs/quantization.md):
  fp8 (transformers finegrained_fp8 / DeepSeek-V3): W = fp8(weight) * weight_scale_inv[i // bm, j // bn]
  compressed-tensors float-quantized: W = fp8(weight) * weight_scale (per tensor [1] / per channel [out, 1])
  compressed-tensors pack-quantized (pack_to_int32): value + 2^(bits-1) stored unsigned, 32/bits per int32 along
      the input dim, LSB first; W = (q - zero_point) * weight_scale[o, g(i)]; zero points packed along dim 0
  GPTQ (AutoGPTQ / GPTQModel): qweight [in/8, out] packed along input, qzeros [G, out/8] packed along output,
      stored zero - 1 in the original format, as is in gptq_v2; W[o, i] = (q[i, o] - z[g(i), o]) * s[g(i), o]
  AWQ GEMM (AutoAWQ): qweight [in, out/8], slot k of word c holds output column 8c + [0,2,4,6,1,3,5,7][k];
      W[o, i] = (q[i, o] - z[i // gs, o]) * s[i // gs, o]
"""
import json
import os
import struct

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "resources", "dev", "loadstone", "quantization")
RNG = np.random.default_rng(20261203)
AWQ_ORDER = [0, 2, 4, 6, 1, 3, 5, 7]


# --- numbers ---------------------------------------------------------------------------------

def e4m3_value(code):
    """float8_e4m3fn: bias 7, no infinities, S.1111.111 is NaN."""
    sign = -1.0 if code & 0x80 else 1.0
    exponent = (code >> 3) & 0xF
    mantissa = code & 0x7
    if exponent == 0xF and mantissa == 0x7:
        return float("nan")
    if exponent == 0:
        return sign * mantissa / 8.0 * 2.0 ** -6
    return sign * (1.0 + mantissa / 8.0) * 2.0 ** (exponent - 7)


def random_e4m3(shape):
    """Random FP8 codes, every finite code possible (NaN codes left out)."""
    codes = RNG.integers(0, 256, size=shape, dtype=np.int64)
    codes[(codes & 0x7F) == 0x7F] = 0x7E
    return codes.astype(np.uint8)


def decode_e4m3(codes):
    table = np.array([e4m3_value(c) for c in range(256)], dtype=np.float64)
    return table[codes]


def random_f32_scales(shape):
    return RNG.uniform(1e-4, 2e-2, size=shape).astype(np.float32)


def bf16_bits(values):
    """float64 -> bfloat16 bits by truncating float32 (the scales are then exactly what is stored)."""
    return (np.asarray(values, dtype=np.float32).view(np.uint32) >> 16).astype(np.uint16)


def bf16_value(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32).astype(np.float64)


def random_f16_scales(shape):
    return RNG.uniform(1e-3, 5e-2, size=shape).astype(np.float16)


# --- packing ---------------------------------------------------------------------------------

def pack_rows(values, bits):
    """[r, c] unsigned ints -> int32 [r, ceil(c * bits / 32)], along the last dim, LSB first (zero padded)."""
    per_word = 32 // bits
    rows, cols = values.shape
    words = -(-cols // per_word)
    padded = np.zeros((rows, words * per_word), dtype=np.uint64)
    padded[:, :cols] = values
    packed = np.zeros((rows, words), dtype=np.uint64)
    for k in range(per_word):
        packed |= padded[:, k::per_word] << np.uint64(bits * k)
    return packed.astype(np.uint32).view(np.int32)


def pack_awq(values):
    """[r, c] 4-bit ints -> int32 [r, c/8] with AWQ's interleaved order."""
    rows, cols = values.shape
    packed = np.zeros((rows, cols // 8), dtype=np.uint64)
    for word in range(cols // 8):
        for slot in range(8):
            packed[:, word] |= values[:, word * 8 + AWQ_ORDER[slot]].astype(np.uint64) << np.uint64(4 * slot)
    return packed.astype(np.uint32).view(np.int32)


# --- files -----------------------------------------------------------------------------------

DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2", "F8_E4M3": "u1", "I8": "i1", "I32": "<i4", "I64": "<i8"}


def write_safetensors(path, tensors):
    """tensors: list of (name, dtype, array); written in name order, as the reference writer does."""
    header = {}
    blobs = []
    offset = 0
    for name, dtype, array in sorted(tensors, key=lambda t: t[0]):
        data = np.ascontiguousarray(array).astype(DTYPES[dtype], copy=False).tobytes()
        header[name] = {"dtype": dtype, "shape": list(array.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(text)))
        out.write(text)
        for blob in blobs:
            out.write(blob)


def write_case(name, quantization_config, tensors, expected, torch_dtype="bfloat16"):
    directory = os.path.join(ROOT, name)
    os.makedirs(directory, exist_ok=True)
    config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "torch_dtype": torch_dtype,
              "quantization_config": quantization_config}
    with open(os.path.join(directory, "config.json"), "w") as out:
        json.dump(config, out, indent=2)
        out.write("\n")
    write_safetensors(os.path.join(directory, "model.safetensors"), tensors)
    write_safetensors(os.path.join(directory, "expected.safetensors"),
                      [(weight, "F64", values) for weight, values in expected.items()])


def plain_tensors():
    """Unquantized tensors every case carries: they must load as they are."""
    norm = bf16_bits(RNG.uniform(0.5, 1.5, size=(8,)))
    return [("model.norm.weight", "BF16", norm)]


# --- cases -----------------------------------------------------------------------------------

def fp8_block():
    bm, bn = 8, 16
    tensors, expected = plain_tensors(), {}
    # down_proj: F32 scales, ragged in both dimensions (20 = 2*8 + 4, 40 = 2*16 + 8)
    # up_proj: BF16 scales, ragged (17 = 2*8 + 1, 33 = 2*16 + 1)
    for module, (rows, cols), scale_dtype in [("down_proj", (20, 40), "F32"), ("up_proj", (17, 33), "BF16")]:
        codes = random_e4m3((rows, cols))
        grid = (-(-rows // bm), -(-cols // bn))
        if scale_dtype == "F32":
            scales = random_f32_scales(grid)
            scale_values = scales.astype(np.float64)
            stored = scales
        else:
            stored = bf16_bits(random_f32_scales(grid))
            scale_values = bf16_value(stored)
        values = decode_e4m3(codes)
        for i in range(rows):
            for j in range(cols):
                values[i, j] *= scale_values[i // bm, j // bn]
        name = "model.layers.0.mlp." + module + ".weight"
        tensors += [(name, "F8_E4M3", codes), (name + "_scale_inv", scale_dtype, stored)]
        expected[name] = values
    write_case("fp8-block", {"quant_method": "fp8", "activation_scheme": "dynamic", "fmt": "e4m3",
                             "weight_block_size": [bm, bn]}, tensors, expected)


def compressed_fp8():
    tensors, expected = plain_tensors(), {}
    # q_proj: one F32 scale for the tensor, with a static input scale; k_proj: BF16 scale per channel.
    rows, cols = 12, 24
    codes = random_e4m3((rows, cols))
    scale = random_f32_scales((1,))
    name = "model.layers.0.self_attn.q_proj."
    tensors += [(name + "weight", "F8_E4M3", codes), (name + "weight_scale", "F32", scale),
                (name + "input_scale", "F32", random_f32_scales((1,)))]
    expected[name + "weight"] = decode_e4m3(codes) * np.float64(scale[0])
    codes = random_e4m3((rows, cols))
    stored = bf16_bits(random_f32_scales((rows, 1)))
    name = "model.layers.0.self_attn.k_proj."
    tensors += [(name + "weight", "F8_E4M3", codes), (name + "weight_scale", "BF16", stored)]
    expected[name + "weight"] = decode_e4m3(codes) * bf16_value(stored)
    weights = lambda strategy: {"num_bits": 8, "type": "float", "symmetric": True, "strategy": strategy,
                                "dynamic": False, "group_size": None, "block_structure": None, "actorder": None}
    write_case("compressed-fp8", {
        "quant_method": "compressed-tensors", "format": "float-quantized", "quantization_status": "compressed",
        "config_groups": {
            "group_0": {"targets": ["re:.*q_proj"], "weights": weights("tensor"),
                        "input_activations": {"num_bits": 8, "type": "float", "strategy": "tensor", "dynamic": False}},
            "group_1": {"targets": ["re:.*k_proj"], "weights": weights("channel"), "input_activations": None}},
        "ignore": ["lm_head"], "kv_cache_scheme": None, "sparsity_config": {}}, tensors, expected)


def compressed_pack(name, symmetric):
    bits, group = 4, 16
    tensors, expected = plain_tensors(), {}
    shapes = {"gate_proj": (12, 40), "up_proj": (9, 36)}   # 40 and 36 inputs: ragged last group and last word
    for index, (module, (rows, cols)) in enumerate(shapes.items()):
        groups = -(-cols // group)
        q = RNG.integers(-8, 8, size=(rows, cols))   # signed, as compressed-tensors quantizes
        scale_bits = bf16_bits(RNG.uniform(1e-3, 5e-2, size=(rows, groups)))
        scales = bf16_value(scale_bits)
        prefix = "model.layers.0.mlp." + module + "."
        g_idx = np.array([i // group for i in range(cols)])
        zp = np.zeros((rows, groups), dtype=np.int64)
        if not symmetric:
            zp = RNG.integers(-8, 8, size=(rows, groups))
            if index == 0:
                g_idx = RNG.permutation(cols) // group   # activation order: any group per input
                tensors.append((prefix + "weight_g_idx", "I32", g_idx.astype(np.int32)))
                # zero points packed along the outputs (as compressed-tensors >= 0.10 writes them)
                tensors.append((prefix + "weight_zero_point", "I32", pack_rows((zp + 8).T.astype(np.uint64), bits).T))
            else:
                tensors.append((prefix + "weight_zero_point", "I8", zp.astype(np.int8)))
        values = np.zeros((rows, cols))
        for o in range(rows):
            for i in range(cols):
                values[o, i] = (q[o, i] - zp[o, g_idx[i]]) * scales[o, g_idx[i]]
        tensors += [(prefix + "weight_packed", "I32", pack_rows((q + 8).astype(np.uint64), bits)),
                    (prefix + "weight_scale", "BF16", scale_bits),
                    (prefix + "weight_shape", "I64", np.array([rows, cols], dtype=np.int64))]
        expected[prefix + "weight"] = values
    write_case(name, {
        "quant_method": "compressed-tensors", "format": "pack-quantized", "quantization_status": "compressed",
        "config_groups": {"group_0": {"targets": ["Linear"], "weights": {
            "num_bits": bits, "type": "int", "symmetric": symmetric, "strategy": "group", "group_size": group,
            "dynamic": False, "actorder": None if symmetric else "group", "block_structure": None},
            "input_activations": None, "output_activations": None}},
        "ignore": ["lm_head"], "sparsity_config": {}}, tensors, expected)


def gptq(name, bits, group_size, desc_act, version2, scale_dtype):
    per_word = 32 // bits
    tensors, expected = plain_tensors(), {}
    for module, (inputs, outputs) in {"o_proj": (64, 16), "v_proj": (48, 8)}.items():
        groups = 1 if group_size < 0 else -(-inputs // group_size)
        size = group_size if group_size > 0 else inputs
        if desc_act:
            g_idx = RNG.permutation(inputs) // size
        else:
            g_idx = np.arange(inputs) // size
        q = RNG.integers(0, 2 ** bits, size=(inputs, outputs))
        lowest = 0 if version2 else 1   # the original format cannot store a zero point of 0
        zeros = RNG.integers(lowest, 2 ** bits, size=(groups, outputs))
        if version2:
            zeros[0, 0], zeros[-1, -1] = 0, 2 ** bits - 1   # both ends, stored as they are
        if scale_dtype == "F16":
            stored_scales = random_f16_scales((groups, outputs))
            scales = stored_scales.astype(np.float64)
        else:
            stored_scales = bf16_bits(RNG.uniform(1e-3, 5e-2, size=(groups, outputs)))
            scales = bf16_value(stored_scales)
        values = np.zeros((outputs, inputs))
        for o in range(outputs):
            for i in range(inputs):
                values[o, i] = (q[i, o] - zeros[g_idx[i], o]) * scales[g_idx[i], o]
        stored_zeros = zeros if version2 else zeros - 1
        prefix = "model.layers.0.self_attn." + module + "."
        tensors += [(prefix + "qweight", "I32", pack_rows(q.T.astype(np.uint64), bits).T),
                    (prefix + "qzeros", "I32", pack_rows(stored_zeros.astype(np.uint64), bits)),
                    (prefix + "scales", scale_dtype, stored_scales),
                    (prefix + "g_idx", "I32", g_idx.astype(np.int32)),
                    (prefix + "bias", "F16", RNG.uniform(-1, 1, size=(outputs,)).astype(np.float16))]
        expected[prefix + "weight"] = values
        assert per_word * (inputs // per_word) == inputs
    config = {"quant_method": "gptq", "bits": bits, "group_size": group_size, "desc_act": desc_act, "sym": not version2,
              "damp_percent": 0.01, "true_sequential": True, "static_groups": False,
              "checkpoint_format": "gptq_v2" if version2 else "gptq"}
    write_case(name, config, tensors, expected, torch_dtype="float16")


def awq():
    group = 16
    tensors, expected = plain_tensors(), {}
    for module, (inputs, outputs) in {"gate_proj": (32, 24), "down_proj": (48, 16)}.items():
        groups = inputs // group
        q = RNG.integers(0, 16, size=(inputs, outputs))
        zeros = RNG.integers(0, 16, size=(groups, outputs))
        scales = random_f16_scales((groups, outputs))
        values = np.zeros((outputs, inputs))
        for o in range(outputs):
            for i in range(inputs):
                values[o, i] = (q[i, o] - zeros[i // group, o]) * np.float64(scales[i // group, o])
        prefix = "model.layers.0.mlp." + module + "."
        tensors += [(prefix + "qweight", "I32", pack_awq(q)), (prefix + "qzeros", "I32", pack_awq(zeros)),
                    (prefix + "scales", "F16", scales)]
        expected[prefix + "weight"] = values
    write_case("awq-gemm", {"quant_method": "awq", "bits": 4, "group_size": group, "zero_point": True,
                            "version": "gemm", "modules_to_not_convert": None}, tensors, expected,
               torch_dtype="float16")


if __name__ == "__main__":
    fp8_block()
    compressed_fp8()
    compressed_pack("compressed-int4", symmetric=True)
    compressed_pack("compressed-int4-asym", symmetric=False)
    gptq("gptq-v1", bits=4, group_size=16, desc_act=False, version2=False, scale_dtype="F16")
    gptq("gptq-v2-desc-act", bits=4, group_size=16, desc_act=True, version2=True, scale_dtype="BF16")
    gptq("gptq-v1-8bit-one-group", bits=8, group_size=-1, desc_act=False, version2=False, scale_dtype="F16")
    awq()
