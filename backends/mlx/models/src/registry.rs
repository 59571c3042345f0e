//! Architecture registry: one line per architecture string (GGUF `general.architecture` or the
//! first entry of Hugging Face `config.json` `architectures`, or its `model_type`).

/// Model families this crate implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// [`crate::llama::Llama`].
    Llama,
    /// [`crate::bert::Bert`]: an encoder serving embeddings only.
    Bert,
    /// [`crate::nomic_bert::NomicBert`]: an encoder serving embeddings only.
    NomicBert,
    /// [`crate::gemma3::Gemma3`] (text decoder; images are not supported).
    Gemma3,
    /// [`crate::phi3::Phi3`].
    Phi3,
    /// [`crate::qwen3_moe::Qwen3Moe`].
    Qwen3Moe,
}

impl Family {
    /// Whether the family only embeds (cannot generate text).
    pub fn is_embedding(self) -> bool {
        matches!(self, Family::Bert | Family::NomicBert)
    }
}

/// `(architecture string, family)`.
pub const ARCHITECTURES: &[(&str, Family)] = &[
    ("llama", Family::Llama),                  // GGUF, HF model_type
    ("LlamaForCausalLM", Family::Llama),       // HF
    ("mistral", Family::Llama),                // HF model_type (no sliding window support yet)
    ("MistralForCausalLM", Family::Llama),     // HF
    ("qwen2", Family::Llama),                  // GGUF, HF model_type (q/k/v bias from weights)
    ("Qwen2ForCausalLM", Family::Llama),       // HF
    ("qwen3", Family::Llama),                  // GGUF, HF model_type (per-head q/k RMSNorm)
    ("Qwen3ForCausalLM", Family::Llama),       // HF
    ("bert", Family::Bert),                    // HF model_type
    ("BertModel", Family::Bert),               // HF (sentence-transformers)
    ("nomic-bert", Family::NomicBert),         // GGUF
    ("nomic_bert", Family::NomicBert),         // HF model_type
    ("NomicBertModel", Family::NomicBert),     // HF
    ("gemma3", Family::Gemma3),                // GGUF; HF wrapper model_type (text only)
    ("gemma3_text", Family::Gemma3),           // HF model_type
    ("Gemma3ForCausalLM", Family::Gemma3),     // HF
    ("phi3", Family::Phi3),                    // GGUF, HF model_type
    ("Phi3ForCausalLM", Family::Phi3),         // HF
    ("qwen3moe", Family::Qwen3Moe),            // GGUF
    ("qwen3_moe", Family::Qwen3Moe),           // HF model_type
    ("Qwen3MoeForCausalLM", Family::Qwen3Moe), // HF
];

/// The family implementing `architecture`, if any.
pub fn family(architecture: &str) -> Option<Family> {
    ARCHITECTURES
        .iter()
        .find(|(a, _)| *a == architecture)
        .map(|(_, f)| *f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llama_is_registered_under_gguf_and_hf_names() {
        assert_eq!(family("llama"), Some(Family::Llama));
        assert_eq!(family("LlamaForCausalLM"), Some(Family::Llama));
        assert_eq!(family("gpt2"), None);
    }

    #[test]
    fn qwen2_and_qwen3_are_dense_llama_family_under_gguf_and_hf_names() {
        for a in ["qwen2", "Qwen2ForCausalLM", "qwen3", "Qwen3ForCausalLM"] {
            assert_eq!(family(a), Some(Family::Llama), "{a}");
        }
    }

    #[test]
    fn bert_is_registered_as_an_embedding_family() {
        assert_eq!(family("BertModel"), Some(Family::Bert));
        assert_eq!(family("bert"), Some(Family::Bert));
        assert!(Family::Bert.is_embedding());
        assert!(!Family::Llama.is_embedding());
    }

    #[test]
    fn nomic_bert_is_registered_under_gguf_and_hf_names_as_an_embedding_family() {
        for a in ["nomic-bert", "nomic_bert", "NomicBertModel"] {
            assert_eq!(family(a), Some(Family::NomicBert), "{a}");
        }
        assert!(Family::NomicBert.is_embedding());
    }

    #[test]
    fn gemma3_phi3_and_qwen3_moe_are_registered_under_gguf_and_hf_names() {
        for a in ["gemma3", "gemma3_text", "Gemma3ForCausalLM"] {
            assert_eq!(family(a), Some(Family::Gemma3), "{a}");
        }
        for a in ["phi3", "Phi3ForCausalLM"] {
            assert_eq!(family(a), Some(Family::Phi3), "{a}");
        }
        for a in ["qwen3moe", "qwen3_moe", "Qwen3MoeForCausalLM"] {
            assert_eq!(family(a), Some(Family::Qwen3Moe), "{a}");
        }
    }
}
