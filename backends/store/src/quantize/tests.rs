//! Quantizer: packing layout, dequantization error bounds, file rewriting.

use serde_json::json;

use super::*;
use crate::safetensors::parse_header;

/// Deterministic pseudo-random values in [-1, 1).
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn max_group_error(input: &[f32], spec: QuantSpec, q: &Quantized) -> (f32, f32) {
    let back = dequantize(q, spec);
    assert_eq!(back.len(), input.len());
    let mut worst_ratio = 0f32;
    let mut worst = 0f32;
    for (g, (a, b)) in input
        .chunks(spec.group_size)
        .zip(back.chunks(spec.group_size))
        .enumerate()
    {
        let step = q.scales[g];
        for (x, y) in a.iter().zip(b) {
            let e = (x - y).abs();
            worst = worst.max(e);
            if step > 0.0 {
                worst_ratio = worst_ratio.max(e / step);
            }
        }
    }
    (worst, worst_ratio)
}

#[test]
fn dequantized_4bit_output_is_within_half_a_step_of_the_input() {
    let spec = QuantSpec::for_type("Q4_K_M").unwrap();
    assert_eq!(
        spec,
        QuantSpec {
            bits: 4,
            group_size: 64
        }
    );
    let input = values(8 * 128, 1);
    let q = quantize(&input, 128, spec, FloatType::F32);
    assert_eq!(q.weight.len(), 8 * 128 / 8);
    assert_eq!(q.scales.len(), 8 * 2);
    let (worst, ratio) = max_group_error(&input, spec, &q);
    assert!(ratio <= 0.5 + 1e-3, "error {ratio} steps");
    assert!(worst <= 2.0 / 15.0 / 2.0 + 1e-4, "abs error {worst}");
}

#[test]
fn dequantized_8bit_bf16_output_stays_close_to_the_input() {
    let spec = QuantSpec::for_type("Q8_0").unwrap();
    assert_eq!(spec.bits, 8);
    let input: Vec<f32> = values(4 * 64, 2)
        .into_iter()
        .map(|v| FloatType::BF16.round(v))
        .collect();
    let q = quantize(&input, 64, spec, FloatType::BF16);
    let (worst, _) = max_group_error(&input, spec, &q);
    // half a step (2/255/2) plus bf16 rounding of the bias and of scale * 255
    assert!(worst < 0.01, "abs error {worst}");
}

#[test]
fn values_pack_little_endian_from_the_low_bits() {
    let spec = QuantSpec::for_type("Q4_0").unwrap();
    assert_eq!(spec.group_size, 32);
    // 0..15 then 15..0 in one group of 32: min 0, max 15 => scale 1, bias 0, q = value
    let input: Vec<f32> = (0..16).chain((0..16).rev()).map(|v| v as f32).collect();
    let q = quantize(&input, 32, spec, FloatType::F16);
    assert_eq!(q.scales, [1.0]);
    assert_eq!(q.biases, [0.0]);
    assert_eq!(q.weight[0], 0x7654_3210);
    assert_eq!(q.weight[1], 0xfedc_ba98);
    assert_eq!(q.weight[2], 0x89ab_cdef);
    assert_eq!(dequantize(&q, spec), input);
}

#[test]
fn constant_groups_quantize_to_their_value() {
    let spec = QuantSpec::for_type("INT4").unwrap();
    let input = vec![0.25f32; 64];
    let q = quantize(&input, 64, spec, FloatType::F32);
    assert_eq!(q.scales, [0.0]);
    assert_eq!(dequantize(&q, spec), input);
}

#[test]
fn f16_conversion_round_trips_representable_values() {
    for v in [
        0.0f32,
        -0.0,
        1.0,
        -2.5,
        65504.0,
        6.1035156e-5,
        5.9604645e-8,
        0.33325195,
    ] {
        assert_eq!(f16_to_f32(f32_to_f16(v)), v, "{v}");
    }
    assert_eq!(f16_to_f32(f32_to_f16(1e6)), f32::INFINITY);
    assert_eq!(f32_to_f16(1.0 + 1.0 / 4096.0), 0x3c00, "ties round to even");
}

/// A safetensors file from `(name, dtype, shape, bytes)`.
pub(crate) fn write_safetensors(tensors: &[(&str, &str, Vec<u64>, Vec<u8>)]) -> Vec<u8> {
    let plan: Vec<_> = tensors
        .iter()
        .map(|(n, d, s, b)| (n.to_string(), d.to_string(), s.clone(), b.len() as u64))
        .collect();
    let mut out = encode_header(&plan, &serde_json::Map::new());
    for t in tensors {
        out.extend_from_slice(&t.3);
    }
    out
}

fn f16_bytes(v: &[f32]) -> Vec<u8> {
    let mut out = Vec::new();
    for &x in v {
        FloatType::F16.encode(x, &mut out);
    }
    out
}

#[test]
fn quantize_file_rewrites_linear_weights_and_keeps_norms_and_embeddings() {
    let d = tempfile::tempdir().unwrap();
    let w = values(4 * 64, 3);
    let src = d.path().join("model.safetensors");
    std::fs::write(
        &src,
        write_safetensors(&[
            (
                "model.layers.0.mlp.up_proj.weight",
                "F16",
                vec![4, 64],
                f16_bytes(&w),
            ),
            ("model.norm.weight", "F16", vec![64], f16_bytes(&[1.0; 64])),
            (
                "model.embed_tokens.weight",
                "F16",
                vec![2, 64],
                f16_bytes(&[0.5; 128]),
            ),
        ]),
    )
    .unwrap();
    let h = parse_header(&src).unwrap();
    let spec = QuantSpec::for_type("Q4_K_M").unwrap();
    let mut out = Vec::new();
    let mut seen = Vec::new();
    let n = quantize_file(&src, &h, spec, &mut out, &mut |b| seen.push(b)).unwrap();
    assert_eq!(n, 1);
    assert_eq!(seen.last().copied(), Some((4 * 64 + 64 + 128) * 2));

    let dst = d.path().join("q.safetensors");
    std::fs::write(&dst, &out).unwrap();
    let q = parse_header(&dst).unwrap();
    let shapes: Vec<_> = q
        .tensors
        .iter()
        .map(|t| (t.name.as_str(), t.dtype.as_str(), t.shape.clone()))
        .collect();
    assert_eq!(
        shapes,
        [
            ("model.embed_tokens.weight", "F16", vec![2, 64]),
            ("model.layers.0.mlp.up_proj.biases", "F16", vec![4, 1]),
            ("model.layers.0.mlp.up_proj.scales", "F16", vec![4, 1]),
            ("model.layers.0.mlp.up_proj.weight", "U32", vec![4, 8]),
            ("model.norm.weight", "F16", vec![64]),
        ]
    );
    assert_eq!(q.metadata.unwrap()["format"], json!("mlx"));

    // read the packed tensors back and dequantize
    let bytes = |name: &str| {
        let t = q.tensors.iter().find(|t| t.name == name).unwrap();
        let s = (q.data_start + t.begin) as usize;
        out[s..s + (t.end - t.begin) as usize].to_vec()
    };
    let packed = Quantized {
        weight: bytes("model.layers.0.mlp.up_proj.weight")
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        scales: FloatType::F16.decode(&bytes("model.layers.0.mlp.up_proj.scales")),
        biases: FloatType::F16.decode(&bytes("model.layers.0.mlp.up_proj.biases")),
    };
    let input = FloatType::F16.decode(&f16_bytes(&w));
    let (_, ratio) = max_group_error(&input, spec, &packed);
    assert!(ratio <= 0.5 + 1e-3, "error {ratio} steps");
    assert_eq!(bytes("model.norm.weight"), f16_bytes(&[1.0; 64]));
}

#[test]
fn quantized_config_adds_the_mlx_quantization_block() {
    let c = quantized_config(
        &json!({"model_type": "llama"}),
        QuantSpec::for_type("Q4_0").unwrap(),
    );
    assert_eq!(c["quantization"], json!({"group_size": 32, "bits": 4}));
    assert_eq!(c["model_type"], json!("llama"));
}
