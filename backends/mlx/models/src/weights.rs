//! Weight loading: GGUF (through MLX's own `mlx_load_gguf`) and MLX/Hugging Face safetensors
//! directories, the GGUF → Hugging Face tensor-name mapping, and the dtype policy (float32 +
//! dequantize-at-load on the CPU device, keep quantized/half precision on GPUs).

use std::collections::HashMap;
use std::path::Path;

use mlx_rs::io::GgufFile;
use mlx_rs::ops::dequantize;
use mlx_rs::{Array, Dtype};

use crate::error::{ModelError, Result};
use crate::nn::{Embedding, Linear, QuantSpec, RmsNorm};
use crate::packed::PackedSource;

/// How weights are materialised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadOptions {
    /// Floating-point dtype of dense weights and activations.
    pub compute_dtype: Dtype,
    /// Dequantize quantized weights at load (faster on the MLX CPU backend, more memory).
    pub dequantize: bool,
    /// Store dense linear weights transposed ([`Linear::DenseT`]) and fuse projections that
    /// share an input ([`crate::nn::Projections`]): faster matrix-vector products on the CPU
    /// backend, same memory.
    pub transpose_dense: bool,
}

impl LoadOptions {
    /// The measured-best choice per device: the MLX CPU backend emulates half precision and its
    /// quantized matmul is slow, so use float32 and dequantize; GPUs keep bf16 and packed weights.
    pub fn for_device(cpu: bool) -> Self {
        if cpu {
            LoadOptions {
                compute_dtype: Dtype::Float32,
                dequantize: true,
                transpose_dense: true,
            }
        } else {
            LoadOptions {
                compute_dtype: Dtype::Bfloat16,
                dequantize: false,
                transpose_dense: false,
            }
        }
    }
}

/// A dense layer, stored transposed when `transpose` ([`Linear::DenseT`]).
pub(crate) fn dense(weight: Array, bias: Option<Array>, transpose: bool) -> Result<Linear> {
    let l = Linear::Dense { weight, bias };
    if transpose {
        l.transposed()
    } else {
        Ok(l)
    }
}

/// The handle identity of an array (stable while that `Array` value lives).
fn handle(a: &Array) -> usize {
    a.as_ptr().ctx as usize
}

/// Where the tensors came from (decides naming and the RoPE layout of q/k).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightFormat {
    /// llama.cpp GGUF: q/k rows permuted for adjacent-pair ("traditional") RoPE.
    Gguf,
    /// Hugging Face / mlx-community safetensors: half-split RoPE.
    SafeTensors,
}

/// A bag of named tensors with helpers that build layers and apply [`LoadOptions`].
pub struct Weights {
    map: HashMap<String, Array>,
    opts: LoadOptions,
    /// Default quantization of packed tensors (GGUF: group 32; safetensors: from config.json).
    quant_group_size: i32,
    /// Source format.
    pub format: WeightFormat,
    /// The quantized arrays of float layers built row-major (embedding tables), by the float
    /// array's handle, for a transposition later ([`Weights::tied_head_layout`]).
    untransposed: HashMap<usize, PackedSource>,
}

impl Weights {
    /// Wrap tensors already named the Hugging Face way.
    pub fn new(
        map: HashMap<String, Array>,
        opts: LoadOptions,
        format: WeightFormat,
        group: i32,
    ) -> Self {
        Weights {
            untransposed: HashMap::new(),
            map,
            opts,
            quant_group_size: group,
            format,
        }
    }

    /// Load every tensor of a GGUF file (names mapped to Hugging Face style). Q4_0/Q4_1/Q8_0 come
    /// out as MLX affine-quantized triples (`weight`/`scales`/`biases`, group size 32).
    pub fn from_gguf(file: &GgufFile, opts: LoadOptions) -> Result<Self> {
        let map = file
            .arrays()?
            .into_iter()
            .map(|(k, v)| (gguf_to_hf_name(&k), v))
            .collect();
        Ok(Weights::new(map, opts, WeightFormat::Gguf, 32))
    }

    /// Load all `*.safetensors` files of a directory.
    pub fn from_safetensors_dir(dir: &Path, opts: LoadOptions, group: i32) -> Result<Self> {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| ModelError::File {
                path: dir.display().to_string(),
                message: e.to_string(),
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(ModelError::File {
                path: dir.display().to_string(),
                message: "no *.safetensors files".into(),
            });
        }
        let mut map = HashMap::new();
        for f in files {
            map.extend(Array::load_safetensors(&f)?);
        }
        Ok(Weights::new(map, opts, WeightFormat::SafeTensors, group))
    }

    /// The load options in effect.
    pub fn options(&self) -> LoadOptions {
        self.opts
    }

    /// Default group size of packed tensors.
    pub fn quant_group_size(&self) -> i32 {
        self.quant_group_size
    }

    /// The raw tensor map (for load-time rewrites such as the LoRA merge in `lora.rs`).
    pub(crate) fn map_mut(&mut self) -> &mut HashMap<String, Array> {
        &mut self.map
    }

    /// Whether a tensor exists.
    pub fn contains(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }

    /// Remove and return a tensor as stored.
    pub fn take_raw(&mut self, name: &str) -> Result<Array> {
        self.map
            .remove(name)
            .ok_or_else(|| ModelError::MissingTensor(name.to_string()))
    }

    /// Remove a floating-point tensor and cast it to the compute dtype.
    pub fn take_float(&mut self, name: &str) -> Result<Array> {
        let a = self.take_raw(name)?;
        self.cast(a)
    }

    fn cast(&self, a: Array) -> Result<Array> {
        if a.dtype() == self.opts.compute_dtype {
            Ok(a)
        } else {
            Ok(a.as_dtype(self.opts.compute_dtype)?)
        }
    }

    /// Build a linear layer from `{prefix}.weight` (+ `.scales`/`.biases` when quantized, + `.bias`),
    /// dense ones in the layout the options ask for.
    pub fn linear(&mut self, prefix: &str) -> Result<Linear> {
        self.linear_as(prefix, self.opts.transpose_dense)
    }

    /// [`Weights::linear`] with the dense layout given: `transpose` = [`Linear::DenseT`].
    pub fn linear_as(&mut self, prefix: &str, transpose: bool) -> Result<Linear> {
        let weight = self.take_raw(&format!("{prefix}.weight"))?;
        let bias = match self.map.remove(&format!("{prefix}.bias")) {
            Some(b) => Some(self.cast(b)?),
            None => None,
        };
        let Some(scales) = self.map.remove(&format!("{prefix}.scales")) else {
            let weight = self.cast(weight)?;
            return dense(weight, bias, transpose);
        };
        let biases = self.take_raw(&format!("{prefix}.biases"))?;
        let group_size = self.quant_group_size;
        let in_features = scales.dim(-1) * group_size;
        let packed = weight.dim(-1);
        if in_features == 0 || (packed * 32) % in_features != 0 {
            return Err(ModelError::Invalid(format!(
                "{prefix}: cannot infer bits from packed width {packed} and {in_features} inputs"
            )));
        }
        let spec = QuantSpec {
            group_size,
            bits: packed * 32 / in_features,
        };
        if self.opts.dequantize {
            // Upcast scales/biases first: dequantizing with bf16 scales rounds every weight to
            // bf16 (measured: 0.05 logit error on the q4 parity fixtures vs mlx-lm in float32).
            let (scales, biases) = (self.cast(scales)?, self.cast(biases)?);
            let w = dequantize(&weight, &scales, &biases, spec.group_size, spec.bits)?;
            let w = self.cast(w)?;
            let source = PackedSource {
                weight,
                scales,
                biases,
                spec,
            };
            return self.dense_from_quantized(w, bias, transpose, source);
        }
        Ok(Linear::Quantized {
            weight,
            scales: self.cast(scales)?,
            biases: self.cast(biases)?,
            bias,
            spec,
        })
    }

    /// Build an embedding table from `{prefix}.weight` (quantized or not), row-major
    /// `[vocab, dim]` whatever the options (lookups read rows; see
    /// [`Weights::tied_head_layout`] for a table that doubles as the output head).
    pub fn embedding(&mut self, prefix: &str) -> Result<Embedding> {
        Ok(Embedding {
            table: self.linear_as(prefix, false)?,
        })
    }

    /// The embedding of a decoder with a tied output head (`lm_head` is `None`), in the layout
    /// the options ask for: transposed on the CPU layout, where the head's one-row product
    /// over the whole vocabulary is the largest matmul of a decode step.
    pub fn tied_head_layout(
        &self,
        embed: Embedding,
        lm_head: Option<&Linear>,
    ) -> Result<Embedding> {
        if lm_head.is_some() || !self.opts.transpose_dense {
            return Ok(embed);
        }
        let source = match &embed.table {
            Linear::Dense { weight, .. } => self.untransposed.get(&handle(weight)).cloned(),
            _ => None,
        };
        Ok(Embedding {
            table: embed.table.transposed_packed(source)?,
        })
    }

    /// A float layer dequantized from `source`: transposed with its packed twin, or row-major
    /// with the source remembered for [`Weights::tied_head_layout`].
    pub(crate) fn dense_from_quantized(
        &mut self,
        weight: Array,
        bias: Option<Array>,
        transpose: bool,
        source: PackedSource,
    ) -> Result<Linear> {
        let l = Linear::Dense { weight, bias };
        if transpose {
            return l.transposed_packed(Some(source));
        }
        if let Linear::Dense { weight, .. } = &l {
            self.untransposed.insert(handle(weight), source);
        }
        Ok(l)
    }

    /// Build an RMSNorm from `{prefix}.weight`.
    pub fn rms_norm(&mut self, prefix: &str, eps: f32) -> Result<RmsNorm> {
        Ok(RmsNorm {
            weight: self.take_float(&format!("{prefix}.weight"))?,
            eps,
        })
    }

    /// Names still unused (for diagnostics).
    pub fn remaining(&self) -> Vec<String> {
        let mut v: Vec<_> = self.map.keys().cloned().collect();
        v.sort();
        v
    }
}

/// Map a llama.cpp GGUF tensor name onto the Hugging Face name our models use; unknown names pass
/// through unchanged.
pub fn gguf_to_hf_name(name: &str) -> String {
    let (stem, suffix) = match name.rsplit_once('.') {
        Some((s, x)) if matches!(x, "weight" | "bias" | "scales" | "biases") => (s, x),
        _ => (name, ""),
    };
    let join = |s: String| {
        if suffix.is_empty() {
            s
        } else {
            format!("{s}.{suffix}")
        }
    };
    match stem {
        "token_embd" => return join("model.embed_tokens".into()),
        "output_norm" => return join("model.norm".into()),
        "output" => return join("lm_head".into()),
        _ => {}
    }
    if let Some(rest) = stem.strip_prefix("blk.") {
        if let Some((n, part)) = rest.split_once('.') {
            let hf = match part {
                "attn_norm" => "input_layernorm",
                "ffn_norm" => "post_attention_layernorm",
                "attn_q" => "self_attn.q_proj",
                "attn_k" => "self_attn.k_proj",
                "attn_v" => "self_attn.v_proj",
                "attn_output" => "self_attn.o_proj",
                "attn_q_norm" => "self_attn.q_norm",
                "attn_k_norm" => "self_attn.k_norm",
                "ffn_gate" => "mlp.gate_proj",
                "ffn_up" => "mlp.up_proj",
                "ffn_down" => "mlp.down_proj",
                _ => return name.to_string(),
            };
            return join(format!("model.layers.{n}.{hf}"));
        }
    }
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gguf_names_map_to_hugging_face_names() {
        assert_eq!(
            gguf_to_hf_name("token_embd.weight"),
            "model.embed_tokens.weight"
        );
        assert_eq!(
            gguf_to_hf_name("blk.7.attn_q.scales"),
            "model.layers.7.self_attn.q_proj.scales"
        );
        assert_eq!(
            gguf_to_hf_name("blk.0.ffn_down.biases"),
            "model.layers.0.mlp.down_proj.biases"
        );
        assert_eq!(
            gguf_to_hf_name("blk.3.ffn_norm.weight"),
            "model.layers.3.post_attention_layernorm.weight"
        );
        assert_eq!(gguf_to_hf_name("output.weight"), "lm_head.weight");
        assert_eq!(gguf_to_hf_name("rope_freqs.weight"), "rope_freqs.weight");
    }

    #[test]
    fn quantized_linear_is_dequantized_when_asked() {
        let v: Vec<f32> = (0..64 * 4).map(|i| (i % 7) as f32 - 3.0).collect();
        let (q, s, b) = mlx_rs::ops::quantize(Array::from_slice(&v, &[4, 64]), 32, 4).unwrap();
        let map = HashMap::from([
            ("l.weight".to_string(), q),
            ("l.scales".to_string(), s),
            ("l.biases".to_string(), b),
        ]);
        let opts = LoadOptions {
            compute_dtype: Dtype::Float32,
            dequantize: true,
            transpose_dense: false,
        };
        let mut w = Weights::new(map.clone(), opts, WeightFormat::Gguf, 32);
        assert!(matches!(w.linear("l").unwrap(), Linear::Dense { .. }));
        let cpu_layout = LoadOptions {
            transpose_dense: true,
            ..opts
        };
        let mut w = Weights::new(map.clone(), cpu_layout, WeightFormat::Gguf, 32);
        assert!(matches!(w.linear("l").unwrap(), Linear::DenseT { .. }));
        let opts = LoadOptions {
            dequantize: false,
            ..opts
        };
        let mut w = Weights::new(map, opts, WeightFormat::Gguf, 32);
        match w.linear("l").unwrap() {
            Linear::Quantized { spec, .. } => assert_eq!(
                spec,
                QuantSpec {
                    group_size: 32,
                    bits: 4
                }
            ),
            _ => panic!("expected quantized"),
        }
    }
}
