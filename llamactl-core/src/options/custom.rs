//! Options of a custom OpenAI-compatible server.

use super::flags::typed_flags;

typed_flags! {
    /// Any OpenAI-compatible server: the command and its arguments are given in full, with
    /// placeholders `{host}`, `{port}`, `{model}` and `{name}` filled in at start. Other keys are
    /// appended as flags after `args`.
    ///
    /// ```
    /// use llamactl_core::options::CustomOptions;
    /// let options = CustomOptions {
    ///     command: Some("/opt/server/bin/serve".into()),
    ///     args: Some(vec!["--listen".into(), "{host}:{port}".into(), "{model}".into()]),
    ///     model: Some("/models/x".into()),
    ///     health_path: Some("/healthz".into()),
    ///     ..Default::default()
    /// };
    /// assert_eq!(options.health_path.as_deref(), Some("/healthz"));
    /// ```
    pub struct CustomOptions {
        /// Executable to run. Required.
        command: String => "--command";
        /// Arguments, with `{host}`, `{port}`, `{model}` and `{name}` placeholders.
        args: Vec<String> => "--args";
        /// Value of the `{model}` placeholder.
        model: String => "--model";
        /// Value of the `{host}` placeholder (default: the manager's backend host).
        host: String => "--host";
        /// Value of the `{port}` placeholder. Set it to pin the port.
        port: u16 => "--port";
        /// Readiness endpoint, answering 200 when ready (default `/health`).
        health_path: String => "--health-path";
        /// Model name that requests must carry (default: requests pass unchanged).
        request_model: String => "--request-model";
    }
}
