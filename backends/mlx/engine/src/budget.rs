//! Memory budget for the engine thread's model residency (Ollama's scheduler semantics).
//!
//! Request path: `Engine::generate`/`embed` → engine thread → `ensure_loaded` → **here**: before a
//! model is loaded, [`estimate`] reads only the weight files' headers (GGUF tensor infos or
//! safetensors JSON headers, plus `config.json`) and predicts the resident bytes in the dtype the
//! load policy produces (weights) + the KV cache for `num_ctx × num_parallel` + overhead.
//! [`plan`] then decides which idle models to evict (least recently used first) so the total
//! fits [`memory_budget`], or refuses with Ollama's "model requires more system memory" error.
//! Everything except the file reading is a pure function, unit-tested without a model.

use std::collections::HashMap;
use std::io::{BufReader, Read, Seek};
use std::path::Path;
use std::time::Instant;

use mlx_rs::Dtype;
use ollmlx_models::LoadOptions;

/// Fixed part of the overhead: activations, logits of a prefill batch, allocator slack.
pub const OVERHEAD_FIXED: u64 = 64 << 20;
/// Proportional part of the overhead, in percent of the weights.
pub const OVERHEAD_PERCENT: u64 = 2;
/// Memory left to the OS and the rest of the process when the budget is the system RAM.
pub const SYSTEM_RESERVE: u64 = 1 << 30;

/// Why a model cannot be placed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BudgetError {
    /// The model alone is larger than the whole budget (Ollama's wording and units).
    #[error(
        "model requires more system memory ({}) than is available ({})",
        human_bytes2(*required),
        human_bytes2(*available)
    )]
    TooLarge {
        /// Estimated bytes the model needs.
        required: u64,
        /// The budget.
        available: u64,
    },
    /// It would fit only by evicting models that are serving requests right now.
    #[error("not enough memory to load the model while other models are busy ({} needed, {} free)", human_bytes2(*required), human_bytes2(*free))]
    Busy {
        /// Estimated bytes the model needs.
        required: u64,
        /// Bytes free after evicting every idle model.
        free: u64,
    },
    /// The weight files could not be read.
    #[error("estimating memory for {path}: {message}")]
    Read {
        /// File or directory.
        path: String,
        /// What went wrong.
        message: String,
    },
}

/// Predicted resident bytes of a loaded model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Footprint {
    /// Weights in the dtype the load policy produces (MLX allocations).
    pub weights: u64,
    /// Packed twins of dequantized weights, held by the BLAS shim outside MLX.
    pub packed: u64,
    /// KV cache for `num_ctx × num_parallel` tokens.
    pub kv: u64,
    /// Activations, logits, allocator slack.
    pub overhead: u64,
}

impl Footprint {
    /// Everything together (what `/api/ps` reports as `size`).
    pub fn total(&self) -> u64 {
        self.weights + self.packed + self.kv + self.overhead
    }
}

/// The attention shape that sizes the KV cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KvShape {
    /// Transformer blocks.
    pub layers: u64,
    /// Key/value heads (GQA).
    pub kv_heads: u64,
    /// Per-head dimension.
    pub head_dim: u64,
}

/// How a tensor is stored in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// Floating point (cast to the compute dtype at load).
    Float,
    /// Packed affine-quantized MLX weight (safetensors `u32`); `elements` counts the unpacked
    /// values.
    Packed {
        /// Stored bytes.
        bytes: u64,
    },
    /// Quantization side tensor (`.scales`/`.biases`) of a packed weight.
    QuantSide,
    /// GGUF block-quantized type MLX keeps packed (Q4_0/Q4_1/Q8_0) with this many bits.
    GgufQuant {
        /// 4 or 8.
        bits: u64,
    },
    /// Any other integer tensor, kept as stored.
    Raw {
        /// Stored bytes.
        bytes: u64,
    },
}

/// One tensor as far as memory is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TensorSize {
    /// Logical element count (for packed weights: after unpacking).
    pub elements: u64,
    /// How it is stored.
    pub storage: Storage,
}

/// Bytes per element of a compute dtype.
pub fn dtype_bytes(d: Dtype) -> u64 {
    match d {
        Dtype::Float64 | Dtype::Int64 | Dtype::Uint64 | Dtype::Complex64 => 8,
        Dtype::Float32 | Dtype::Int32 | Dtype::Uint32 => 4,
        Dtype::Float16 | Dtype::Bfloat16 | Dtype::Int16 | Dtype::Uint16 => 2,
        _ => 1,
    }
}

/// Resident bytes of the weights after loading with `opts`: float tensors in the compute dtype;
/// quantized weights either dequantized to the compute dtype or kept packed with their
/// scales/biases in the compute dtype (group size `group` for safetensors, 32 for GGUF).
pub fn weight_bytes(tensors: &[TensorSize], opts: LoadOptions, group: u64) -> u64 {
    let cb = dtype_bytes(opts.compute_dtype);
    tensors
        .iter()
        .map(|t| match t.storage {
            Storage::Float => t.elements * cb,
            Storage::Raw { bytes } => bytes,
            Storage::Packed { .. } | Storage::GgufQuant { .. } if opts.dequantize => {
                t.elements * cb
            }
            Storage::Packed { bytes } => bytes + 2 * t.elements.div_ceil(group.max(1)) * cb,
            Storage::GgufQuant { bits } => t.elements * bits / 8 + 2 * t.elements.div_ceil(32) * cb,
            Storage::QuantSide => 0,
        })
        .sum()
}

/// Bytes of the packed twins the BLAS shim keeps outside MLX for weights dequantized into the
/// transposed CPU layout (`ollmlx_models::packed`): half a byte per value for 2- and 4-bit
/// weights, a byte for wider ones, plus a float32 scale and bias per group.
pub fn twin_bytes(tensors: &[TensorSize], opts: LoadOptions, group: u64) -> u64 {
    if !(opts.dequantize && opts.transpose_dense) {
        return 0;
    }
    let twin = |elements: u64, bits: u64, group: u64| {
        let values = if bits <= 4 {
            elements.div_ceil(2)
        } else {
            elements
        };
        values + 2 * elements.div_ceil(group.max(1)) * 4
    };
    tensors
        .iter()
        .map(|t| match t.storage {
            Storage::Packed { bytes } => twin(t.elements, bytes * 8 / t.elements.max(1), group),
            Storage::GgufQuant { bits } => twin(t.elements, bits, 32),
            _ => 0,
        })
        .sum()
}

/// KV cache bytes: layers × kv_heads × head_dim × 2 (keys and values) × dtype × tokens, with
/// tokens = `num_ctx × num_parallel`.
pub fn kv_bytes(shape: KvShape, num_ctx: u64, num_parallel: u64, dtype: Dtype) -> u64 {
    shape.layers
        * shape.kv_heads
        * shape.head_dim
        * 2
        * dtype_bytes(dtype)
        * num_ctx
        * num_parallel.max(1)
}

/// Overhead for weights of `weights` bytes.
pub fn overhead(weights: u64) -> u64 {
    OVERHEAD_FIXED + weights * OVERHEAD_PERCENT / 100
}

/// Predict the footprint of the model at `path` (a GGUF file or a safetensors directory).
pub fn estimate(
    path: &Path,
    opts: LoadOptions,
    num_ctx: u64,
    num_parallel: u64,
) -> Result<Footprint, BudgetError> {
    let read_err = |e: std::io::Error| BudgetError::Read {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    // A directory holding `model.gguf` (a GGUF base assembled with a LoRA adapter) is a GGUF.
    let in_dir = path.join(ollmlx_models::GGUF_IN_DIR);
    let gguf_dir = path.is_dir() && !path.join("config.json").exists() && in_dir.is_file();
    let (tensors, shape, group) = if gguf_dir {
        let (tensors, shape) = gguf(&in_dir).map_err(read_err)?;
        (tensors, shape, 32)
    } else if path.is_dir() {
        safetensors_dir(path).map_err(read_err)?
    } else {
        let (tensors, shape) = gguf(path).map_err(read_err)?;
        (tensors, shape, 32)
    };
    let weights = weight_bytes(&tensors, opts, group);
    Ok(Footprint {
        weights,
        packed: twin_bytes(&tensors, opts, group),
        kv: kv_bytes(shape, num_ctx, num_parallel, opts.compute_dtype),
        overhead: overhead(weights),
    })
}

/// The memory the engine may fill: `limit` when set (`OLLMLX_MEMORY_LIMIT`); on a GPU what MLX
/// reports as its memory limit; otherwise total system RAM minus [`SYSTEM_RESERVE`]. `u64::MAX`
/// when nothing is known.
pub fn memory_budget(limit: Option<u64>, gpu: bool) -> u64 {
    if let Some(l) = limit {
        return l;
    }
    if gpu {
        if let Ok(l) = mlx_rs::memory::memory_limit() {
            if l > 0 {
                return l as u64;
            }
        }
    }
    system_memory().map_or(u64::MAX, |t| t.saturating_sub(SYSTEM_RESERVE))
}

/// Total physical memory (Linux `/proc/meminfo`).
pub fn system_memory() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/meminfo").ok()?;
    parse_meminfo(&s)
}

fn parse_meminfo(s: &str) -> Option<u64> {
    let line = s.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Parse a byte size: plain bytes or a number with `B`, `KB`/`MB`/`GB`/`TB` (powers of 1000) or
/// `KiB`/`MiB`/`GiB`/`TiB` (powers of 1024), case-insensitive, optional space.
pub fn parse_bytes(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    (n >= 0.0).then_some((n * mult) as u64)
}

/// Ollama's `format.HumanBytes2`: one decimal, binary units.
pub fn human_bytes2(b: u64) -> String {
    const K: u64 = 1024;
    match b {
        b if b >= K * K * K => format!("{:.1} GiB", b as f64 / (K * K * K) as f64),
        b if b >= K * K => format!("{:.1} MiB", b as f64 / (K * K) as f64),
        b if b >= K => format!("{:.1} KiB", b as f64 / K as f64),
        b => format!("{b} B"),
    }
}

/// A resident model as the eviction decision sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Model name.
    pub name: String,
    /// Its footprint.
    pub bytes: u64,
    /// Last request finished at.
    pub last_used: Instant,
    /// Serving a request right now (never evicted).
    pub busy: bool,
}

/// Which resident models to evict (in order) so a model needing `need` bytes fits `budget` and
/// at most `max_loaded` models stay resident. `residents` must not include the model itself.
/// Refuses without evicting anything when the model alone exceeds the budget.
pub fn plan(
    need: u64,
    budget: u64,
    max_loaded: usize,
    residents: &[Candidate],
) -> Result<Vec<String>, BudgetError> {
    if need > budget {
        return Err(BudgetError::TooLarge {
            required: need,
            available: budget,
        });
    }
    let mut idle: Vec<&Candidate> = residents.iter().filter(|c| !c.busy).collect();
    idle.sort_by_key(|c| c.last_used);
    let mut used: u64 = residents.iter().map(|c| c.bytes).sum();
    let mut count = residents.len();
    let mut evict = Vec::new();
    let mut idle = idle.into_iter();
    while used.saturating_add(need) > budget || count + 1 > max_loaded.max(1) {
        let Some(c) = idle.next() else {
            return Err(BudgetError::Busy {
                required: need,
                free: budget.saturating_sub(used),
            });
        };
        used -= c.bytes;
        count -= 1;
        evict.push(c.name.clone());
    }
    Ok(evict)
}

// --- header readers -------------------------------------------------------------------------

fn invalid(msg: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg.into())
}

/// Tensor sizes, KV shape and quantization group of an MLX/HF safetensors directory.
fn safetensors_dir(dir: &Path) -> std::io::Result<(Vec<TensorSize>, KvShape, u64)> {
    let cfg: serde_json::Value = match std::fs::read(dir.join("config.json")) {
        Ok(b) => serde_json::from_slice(&b).map_err(|e| invalid(format!("config.json: {e}")))?,
        Err(_) => serde_json::Value::Null,
    };
    let group = cfg["quantization"]["group_size"].as_u64().unwrap_or(64);
    let mut headers: HashMap<String, (String, u64)> = HashMap::new();
    let mut files: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(invalid("no *.safetensors files"));
    }
    for f in files {
        headers.extend(safetensors_header(&f)?);
    }
    Ok((
        safetensors_sizes(&headers, group),
        kv_shape_from_config(&cfg),
        group,
    ))
}

/// `name → (dtype, elements)` from one safetensors file's header.
fn safetensors_header(path: &Path) -> std::io::Result<HashMap<String, (String, u64)>> {
    let mut f = std::fs::File::open(path)?;
    let mut len = [0u8; 8];
    f.read_exact(&mut len)?;
    let len = u64::from_le_bytes(len);
    if len > 100 << 20 {
        return Err(invalid(format!("{}: header too large", path.display())));
    }
    let mut buf = vec![0u8; len as usize];
    f.read_exact(&mut buf)?;
    let v: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&buf)
        .map_err(|e| invalid(format!("{}: header: {e}", path.display())))?;
    Ok(v.into_iter()
        .filter(|(k, _)| k != "__metadata__")
        .map(|(k, t)| {
            let dtype = t["dtype"].as_str().unwrap_or("").to_string();
            let n = t["shape"]
                .as_array()
                .map_or(0, |s| s.iter().map(|d| d.as_u64().unwrap_or(0)).product());
            (k, (dtype, n))
        })
        .collect())
}

/// Classify safetensors tensors (`name → (dtype, elements)`): `X.weight` with an `X.scales`
/// sibling is a packed MLX weight whose logical element count is `scales × group`; its
/// `.scales`/`.biases` are side tensors; other float tensors are cast to the compute dtype.
pub fn safetensors_sizes(h: &HashMap<String, (String, u64)>, group: u64) -> Vec<TensorSize> {
    let elem_bytes = |d: &str| match d {
        "F64" | "I64" | "U64" => 8,
        "F32" | "I32" | "U32" => 4,
        "F16" | "BF16" | "I16" | "U16" => 2,
        _ => 1,
    };
    h.iter()
        .map(|(name, (dtype, n))| {
            let stem = name.rsplit_once('.').map_or(name.as_str(), |(s, _)| s);
            let scales = h.get(&format!("{stem}.scales")).map(|s| s.1);
            match scales {
                Some(scales) if name.ends_with(".weight") => TensorSize {
                    elements: scales * group,
                    storage: Storage::Packed {
                        bytes: n * elem_bytes(dtype),
                    },
                },
                Some(_) if name.ends_with(".scales") || name.ends_with(".biases") => TensorSize {
                    elements: *n,
                    storage: Storage::QuantSide,
                },
                _ if dtype.starts_with('F') || dtype == "BF16" => TensorSize {
                    elements: *n,
                    storage: Storage::Float,
                },
                _ => TensorSize {
                    elements: *n,
                    storage: Storage::Raw {
                        bytes: n * elem_bytes(dtype),
                    },
                },
            }
        })
        .collect()
}

fn kv_shape_from_config(cfg: &serde_json::Value) -> KvShape {
    let is_encoder = cfg["model_type"] == "bert"
        || cfg["architectures"].as_array().is_some_and(|a| {
            a.iter()
                .any(|x| x.as_str().is_some_and(|s| s.starts_with("Bert")))
        });
    if is_encoder {
        return KvShape::default();
    }
    let heads = cfg["num_attention_heads"].as_u64().unwrap_or(0);
    let hidden = cfg["hidden_size"].as_u64().unwrap_or(0);
    KvShape {
        layers: cfg["num_hidden_layers"].as_u64().unwrap_or(0),
        kv_heads: cfg["num_key_value_heads"].as_u64().unwrap_or(heads),
        head_dim: cfg["head_dim"]
            .as_u64()
            .unwrap_or(hidden.checked_div(heads).unwrap_or(0)),
    }
}

/// Tensor sizes and KV shape from a GGUF file's header (tensor data is never read).
fn gguf(path: &Path) -> std::io::Result<(Vec<TensorSize>, KvShape)> {
    let mut r = BufReader::with_capacity(1 << 16, std::fs::File::open(path)?);
    let mut magic = [0u8; 4];
    r.read_exact(&mut magic)?;
    if &magic != b"GGUF" {
        return Err(invalid("not a GGUF file"));
    }
    let version = read_u32(&mut r)?;
    if version < 2 {
        return Err(invalid(format!("GGUF version {version} is not supported")));
    }
    let n_tensors = read_u64(&mut r)?;
    let n_kv = read_u64(&mut r)?;
    let mut ints: HashMap<String, u64> = HashMap::new();
    let mut arch = String::new();
    for _ in 0..n_kv {
        let key = read_string(&mut r)?;
        let ty = read_u32(&mut r)?;
        match ty {
            8 => {
                let s = read_string(&mut r)?;
                if key == "general.architecture" {
                    arch = s;
                }
            }
            9 => {
                let et = read_u32(&mut r)?;
                let n = read_u64(&mut r)?;
                for _ in 0..n {
                    skip_value(&mut r, et)?;
                }
            }
            _ => {
                if let Some(v) = read_int(&mut r, ty)? {
                    ints.insert(key, v);
                }
            }
        }
    }
    let mut tensors = Vec::with_capacity(n_tensors.min(1 << 16) as usize);
    for _ in 0..n_tensors {
        let _name = read_string(&mut r)?;
        let dims = read_u32(&mut r)?;
        if dims > 8 {
            return Err(invalid("tensor with more than 8 dimensions"));
        }
        let mut elements = 1u64;
        for _ in 0..dims {
            elements = elements.saturating_mul(read_u64(&mut r)?);
        }
        let ty = read_u32(&mut r)?;
        let _offset = read_u64(&mut r)?;
        let storage = match ty {
            2 | 3 => Storage::GgufQuant { bits: 4 },
            8 => Storage::GgufQuant { bits: 8 },
            _ => Storage::Float,
        };
        tensors.push(TensorSize { elements, storage });
    }
    let get = |k: &str| ints.get(&format!("{arch}.{k}")).copied().unwrap_or(0);
    let heads = get("attention.head_count");
    let shape = if arch == "bert" || arch.ends_with("bert") {
        KvShape::default()
    } else {
        KvShape {
            layers: get("block_count"),
            kv_heads: match get("attention.head_count_kv") {
                0 => heads,
                n => n,
            },
            head_dim: match get("attention.key_length") {
                0 if heads > 0 => get("embedding_length") / heads,
                n => n,
            },
        }
    };
    Ok((tensors, shape))
}

fn read_u32(r: &mut impl Read) -> std::io::Result<u32> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b)?;
    Ok(u32::from_le_bytes(b))
}

fn read_u64(r: &mut impl Read) -> std::io::Result<u64> {
    let mut b = [0u8; 8];
    r.read_exact(&mut b)?;
    Ok(u64::from_le_bytes(b))
}

fn read_string(r: &mut impl Read) -> std::io::Result<String> {
    let n = read_u64(r)?;
    if n > 1 << 24 {
        return Err(invalid("GGUF string too long"));
    }
    let mut b = vec![0u8; n as usize];
    r.read_exact(&mut b)?;
    Ok(String::from_utf8_lossy(&b).into_owned())
}

/// Byte width of a scalar GGUF value type.
fn scalar_width(ty: u32) -> Option<i64> {
    Some(match ty {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4..=6 => 4,
        10..=12 => 8,
        _ => return None,
    })
}

fn read_int<R: Read + Seek>(r: &mut R, ty: u32) -> std::io::Result<Option<u64>> {
    let w = scalar_width(ty).ok_or_else(|| invalid(format!("GGUF value type {ty}")))?;
    let mut b = [0u8; 8];
    r.read_exact(&mut b[..w as usize])?;
    Ok(match ty {
        0 | 2 | 4 | 10 => Some(u64::from_le_bytes(b)),
        1 => Some(b[0] as i8 as i64 as u64),
        3 => Some(i16::from_le_bytes([b[0], b[1]]) as i64 as u64),
        5 => Some(i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64 as u64),
        11 => Some(i64::from_le_bytes(b) as u64),
        _ => None,
    })
}

fn skip_value<R: Read + Seek>(r: &mut BufReader<R>, ty: u32) -> std::io::Result<()> {
    match ty {
        8 => {
            let n = read_u64(r)?;
            r.seek_relative(n as i64)
        }
        9 => {
            let et = read_u32(r)?;
            let n = read_u64(r)?;
            for _ in 0..n {
                skip_value(r, et)?;
            }
            Ok(())
        }
        t => {
            let w = scalar_width(t).ok_or_else(|| invalid(format!("GGUF value type {t}")))?;
            r.seek_relative(w)
        }
    }
}

#[cfg(test)]
mod tests;
