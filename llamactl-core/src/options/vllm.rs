//! Options of `vllm serve`.

use super::flags::typed_flags;

typed_flags! {
    /// Typed options of `vllm serve`. The model is written as the positional argument after
    /// `serve`, never as `--model`. Any other key is kept in [`extra`](Self::extra).
    ///
    /// ```
    /// use llamactl_core::options::VllmOptions;
    /// let options = VllmOptions {
    ///     model: Some("Qwen/Qwen2-0.5B".into()),
    ///     enforce_eager: Some(true),
    ///     ..Default::default()
    /// };
    /// assert_eq!(options.enforce_eager, Some(true));
    /// ```
    pub struct VllmOptions {
        /// Model folder or Hugging Face repository. Required; positional on the command line.
        model: String => "--model";
        /// Address to listen on (default: the manager's backend host, 127.0.0.1).
        host: String => "--host";
        /// Port to listen on. Set it to pin the port; leave it out to have one allocated at start.
        port: u16 => "--port";
        /// Model name the server accepts in requests (default: the model argument).
        served_model_name: String => "--served-model-name";
        /// Tokenizer folder or repository.
        tokenizer: String => "--tokenizer";
        /// Weight data type (auto, float16, bfloat16, float32).
        dtype: String => "--dtype";
        /// Maximum context length.
        max_model_len: u32 => "--max-model-len";
        /// Fraction of GPU memory to use, in (0, 1].
        gpu_memory_utilization: f64 => "--gpu-memory-utilization";
        /// Tensor-parallel GPUs.
        tensor_parallel_size: u32 => "--tensor-parallel-size", aliases = ["tp"];
        /// Pipeline-parallel stages.
        pipeline_parallel_size: u32 => "--pipeline-parallel-size", aliases = ["pp"];
        /// Maximum concurrent sequences.
        max_num_seqs: u32 => "--max-num-seqs";
        /// Quantization method.
        quantization: String => "--quantization", aliases = ["q"];
        /// KV cache data type.
        kv_cache_dtype: String => "--kv-cache-dtype";
        /// Disable CUDA graphs (`false` writes `--no-enforce-eager`).
        enforce_eager: bool => "--enforce-eager", negation = "--no-enforce-eager";
        /// Trust remote code in model repositories.
        trust_remote_code: bool => "--trust-remote-code", negation = "--no-trust-remote-code";
        /// Prefix caching (`false` writes `--no-enable-prefix-caching`).
        enable_prefix_caching: bool => "--enable-prefix-caching", negation = "--no-enable-prefix-caching";
        /// Random seed.
        seed: i64 => "--seed";
        /// Where to download weights.
        download_dir: String => "--download-dir";
        /// Custom chat template.
        chat_template: String => "--chat-template";
    }
}
