//! Options of llama.cpp's `llama-server`.

use super::flags::typed_flags;
use super::{FlashAttention, GpuLayers};

typed_flags! {
    /// Typed options of llama.cpp's `llama-server`. Keys and short aliases are those of the Go
    /// llamactl (`c` = `ctx_size`, `ngl` = `gpu_layers`, `m` = `model`, `hf` = `hf_repo`,
    /// `fa` = `flash_attn`, ...); any other key is kept in [`extra`](Self::extra).
    ///
    /// ```
    /// use llamactl_core::options::{GpuLayers, LlamaCppOptions};
    ///
    /// let options = LlamaCppOptions {
    ///     model: Some("/models/tiny.gguf".into()),
    ///     gpu_layers: Some(GpuLayers::Count(0)),
    ///     ..Default::default()
    /// };
    /// assert_eq!(options.model.as_deref(), Some("/models/tiny.gguf"));
    /// ```
    pub struct LlamaCppOptions {
        /// Path of the GGUF model file.
        model: String => "--model", aliases = ["m"];
        /// Hugging Face repository to download the model from (`<user>/<model>[:quant]`).
        hf_repo: String => "--hf-repo", aliases = ["hf", "hfr"];
        /// File within `hf_repo`.
        hf_file: String => "--hf-file", aliases = ["hff"];
        /// Model name the server reports and accepts.
        alias: String => "--alias", aliases = ["a"];
        /// Address to listen on (default: the manager's backend host, 127.0.0.1).
        host: String => "--host";
        /// Port to listen on. Set it to pin the port; leave it out to have one allocated at start.
        port: u16 => "--port";
        /// Context size in tokens (0 = from the model).
        ctx_size: u32 => "--ctx-size", aliases = ["c"];
        /// Layers to offload to the GPU; `0` keeps everything on the CPU.
        gpu_layers: GpuLayers => "--gpu-layers", aliases = ["ngl", "n_gpu_layers", "n-gpu-layers"];
        /// Generation threads.
        threads: i32 => "--threads", aliases = ["t"];
        /// Batch-processing threads.
        threads_batch: i32 => "--threads-batch", aliases = ["tb"];
        /// Logical batch size.
        batch_size: u32 => "--batch-size", aliases = ["b"];
        /// Physical batch size.
        ubatch_size: u32 => "--ubatch-size", aliases = ["ub"];
        /// Number of server slots (concurrent sequences).
        parallel: i32 => "--parallel", aliases = ["np"];
        /// Flash attention: on, off or auto.
        flash_attn: FlashAttention => "--flash-attn", aliases = ["fa"];
        /// Continuous batching (`false` writes `--no-cont-batching`).
        cont_batching: bool => "--cont-batching", aliases = ["cb"], negation = "--no-cont-batching";
        /// Jinja chat templates (`false` writes `--no-jinja`).
        jinja: bool => "--jinja", negation = "--no-jinja";
        /// Custom chat template.
        chat_template: String => "--chat-template";
        /// Serve embeddings only.
        embedding: bool => "--embedding", aliases = ["embeddings"];
        /// Serve the reranking endpoint.
        reranking: bool => "--reranking", aliases = ["rerank"];
        /// KV cache type for K.
        cache_type_k: String => "--cache-type-k", aliases = ["ctk"];
        /// KV cache type for V.
        cache_type_v: String => "--cache-type-v", aliases = ["ctv"];
        /// Tokens to predict per request by default.
        predict: i32 => "--n-predict", aliases = ["n", "n-predict", "n_predict"];
        /// Sampling temperature default.
        temp: f64 => "--temp", aliases = ["temperature"];
        /// Sampling seed (-1 = random).
        seed: i64 => "--seed", aliases = ["s"];
        /// Multimodal projector file.
        mmproj: String => "--mmproj", aliases = ["mm"];
        /// LoRA adapters, one `--lora` per element.
        lora: Vec<String> => "--lora";
        /// Log everything.
        verbose: bool => "--verbose", aliases = ["v", "log-verbose"];
    }
}

/// Short or alternative keys of `llama-server` flags that have no typed field, mapped to their
/// canonical key, so that Go-era definitions using them still produce the right flag.
pub(crate) const EXTRA_ALIASES: &[(&str, &str)] = &[
    ("C", "cpu_mask"),
    ("Cr", "cpu_range"),
    ("Cb", "cpu_mask_batch"),
    ("Crb", "cpu_range_batch"),
    ("e", "escape"),
    ("dkvc", "dump_kv_cache"),
    ("nkvo", "no_kv_offload"),
    ("dt", "defrag_thold"),
    ("dev", "device"),
    ("ot", "override_tensor"),
    ("sm", "split_mode"),
    ("ts", "tensor_split"),
    ("mg", "main_gpu"),
    ("mu", "model_url"),
    ("hfd", "hf_repo_draft"),
    ("hfrd", "hf_repo_draft"),
    ("hfv", "hf_repo_v"),
    ("hfrv", "hf_repo_v"),
    ("hffv", "hf_file_v"),
    ("hft", "hf_token"),
    ("lv", "verbosity"),
    ("log-verbosity", "verbosity"),
    ("l", "logit_bias"),
    ("j", "json_schema"),
    ("jf", "json_schema_file"),
    ("sp", "special"),
    ("nocb", "no_cont_batching"),
    ("to", "timeout"),
    ("sps", "slot_prompt_similarity"),
    ("draft", "draft_max"),
    ("draft-n", "draft_max"),
    ("draft-n-min", "draft_min"),
    ("cd", "ctx_size_draft"),
    ("devd", "device_draft"),
    ("ngld", "gpu_layers_draft"),
    ("n-gpu-layers-draft", "gpu_layers_draft"),
    ("md", "model_draft"),
    ("ctkd", "cache_type_k_draft"),
    ("ctvd", "cache_type_v_draft"),
    ("mv", "model_vocoder"),
];

/// Keys of a router's flags that llamactl sets itself, because it schedules the router's models:
/// the router must neither evict nor load on its own (see [`LlamaCppOptions::is_router`]).
pub(crate) const ROUTER_SCHEDULING_KEYS: &[&str] = &["models_max", "models_autoload", "no_models_autoload"];

impl LlamaCppOptions {
    /// Whether these options start `llama-server` as a router: no model of its own (`model`,
    /// `hf_repo` or `model_url`), so it serves the models it finds (`models_dir`,
    /// `models_preset`, the instance's `preset_ini`, its cache), each in a child process.
    ///
    /// ```
    /// use llamactl_core::options::LlamaCppOptions;
    /// let router = LlamaCppOptions::default();
    /// assert!(router.is_router());
    /// let single = LlamaCppOptions { model: Some("/m.gguf".into()), ..Default::default() };
    /// assert!(!single.is_router());
    /// ```
    pub fn is_router(&self) -> bool {
        self.model.is_none() && self.hf_repo.is_none() && self.extra.get("model_url").is_none()
    }

    /// The most models a router holds at once (`models_max`; llama-server's default is 4, zero
    /// means no limit). llamactl enforces it, evicting by its own rules, and runs the router
    /// with no limit of its own.
    ///
    /// ```
    /// use llamactl_core::options::{ExtraArgs, LlamaCppOptions};
    /// let mut options = LlamaCppOptions::default();
    /// assert_eq!(options.models_max(), Some(4));
    /// options.extra = ExtraArgs::from_pairs([("models_max", serde_json::json!(0))])?;
    /// assert_eq!(options.models_max(), None);
    /// # Ok::<(), llamactl_core::OptionsError>(())
    /// ```
    pub fn models_max(&self) -> Option<usize> {
        let value = self.extra.get("models_max").or_else(|| self.extra.get("models-max"));
        let max = match value {
            None => 4,
            Some(v) => v.as_u64().or_else(|| v.as_str().and_then(|s| s.trim().parse().ok())).unwrap_or(4),
        };
        (max > 0).then(|| usize::try_from(max).unwrap_or(usize::MAX))
    }
}
