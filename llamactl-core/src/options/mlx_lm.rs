//! Options of `mlx_lm.server`.

use super::flags::typed_flags;

typed_flags! {
    /// Typed options of `mlx_lm.server` (Apple MLX; a CPU build runs elsewhere). Any other key
    /// is kept in [`extra`](Self::extra).
    ///
    /// ```
    /// use llamactl_core::options::MlxLmOptions;
    /// let options = MlxLmOptions { model: Some("/models/tiny-hf".into()), ..Default::default() };
    /// assert!(options.extra.is_empty());
    /// ```
    pub struct MlxLmOptions {
        /// Model folder or Hugging Face repository. Required.
        model: String => "--model";
        /// Address to listen on (default: the manager's backend host, 127.0.0.1).
        host: String => "--host";
        /// Port to listen on. Set it to pin the port; leave it out to have one allocated at start.
        port: u16 => "--port";
        /// LoRA adapter folder.
        adapter_path: String => "--adapter-path";
        /// Draft model for speculative decoding.
        draft_model: String => "--draft-model";
        /// Tokens the draft model proposes per step.
        num_draft_tokens: u32 => "--num-draft-tokens";
        /// Trust remote code in the tokenizer.
        trust_remote_code: bool => "--trust-remote-code";
        /// Custom chat template.
        chat_template: String => "--chat-template";
        /// Use the tokenizer's default chat template.
        use_default_chat_template: bool => "--use-default-chat-template";
        /// Log level (DEBUG, INFO, WARNING, ERROR, CRITICAL).
        log_level: String => "--log-level";
        /// Default sampling temperature.
        temp: f64 => "--temp";
        /// Default top-p.
        top_p: f64 => "--top-p";
        /// Default top-k.
        top_k: u32 => "--top-k";
        /// Default min-p.
        min_p: f64 => "--min-p";
        /// Default maximum tokens per response.
        max_tokens: u32 => "--max-tokens";
    }
}
