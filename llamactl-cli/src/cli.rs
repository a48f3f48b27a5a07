//! The command line: every command and flag, with an example in each `--help`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Manage llamactl instances and keys.
///
/// The server is --server, else $LLAMACTL_SERVER, else `server:` in ~/.config/llamactl/cli.yaml,
/// else http://127.0.0.1:8080; the key likewise (--api-key, $LLAMACTL_API_KEY, `api_key:`).
///
/// Exit codes: 0 ok, 1 error from the server, 2 usage error, 3 cannot reach the server,
/// 4 not found.
#[derive(Debug, Parser)]
#[command(name = "llamactl", version, about, long_about)]
pub struct Cli {
    /// Server URL.
    #[arg(long, global = true, env = "LLAMACTL_SERVER")]
    pub server: Option<String>,
    /// API key (a management key for everything but `models`).
    #[arg(long, global = true, env = "LLAMACTL_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// PEM file of certificate authorities to trust for an https:// server (besides the
    /// system's), e.g. for a self-signed certificate.
    #[arg(long, global = true, env = "LLAMACTL_CA_CERT", value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// Output format.
    #[arg(short, long, global = true, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    /// No colours (also when NO_COLOR is set or the output is not a terminal).
    #[arg(long, global = true)]
    pub no_color: bool,
    /// Print only what scripts need: names or ids for lists, the status for `instance show`, the
    /// secret for `key create`, nothing for actions.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Configuration file of the command line.
    #[arg(long, global = true, env = "LLAMACTL_CLI_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// A table for people.
    Table,
    /// The API's JSON, as the server sent it.
    Json,
    /// The same as YAML.
    Yaml,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Work with instances.
    #[command(subcommand, visible_alias = "instances", visible_alias = "i")]
    Instance(InstanceCommand),
    /// Work with inference API keys.
    #[command(subcommand, visible_alias = "keys")]
    Key(KeyCommand),
    /// List the models the OpenAI-compatible endpoint offers.
    ///
    /// Example: llamactl models
    Models,
    /// List the latest proxied requests; with -f, follow new ones.
    ///
    /// The newest is at the bottom, where followed ones are added. Columns: when (ago, and the exact time), instance, model, key, HTTP status, outcome,
    /// duration, time to the first byte, tokens in and out, generation speed. With -o json the
    /// API's page; with -f one JSON record per line, new ones as they end.
    ///
    /// Examples:
    ///   llamactl activity
    ///   llamactl activity --instance qwen --status 500 -n 20
    ///   llamactl activity -f --key ci -o json
    #[command(verbatim_doc_comment)]
    Activity(ActivityFlags),
    /// Watch the instances live: requests in flight and queued, rates, memory.
    ///
    /// A table of each instance's status, requests in flight and waiting for it to start,
    /// requests and generated tokens per second, and memory, redrawn until Ctrl-C. Rates are over the last interval. Printed once when the output is not a terminal, with
    /// --once, or with -o json or yaml (the rows as JSON or YAML).
    ///
    /// Examples:
    ///   llamactl top
    ///   llamactl top --interval 5
    ///   llamactl top --once -o json
    #[command(verbatim_doc_comment)]
    Top {
        /// Seconds between refreshes, and the window of the rates.
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=3600))]
        interval: u64,
        /// Print the table once and exit.
        #[arg(long)]
        once: bool,
    },
    /// List the requests in flight, or cancel one.
    ///
    /// Requests being received, waiting for their instance to start (queued, with their
    /// place), forwarded or streamed.
    ///
    /// Examples:
    ///   llamactl inflight
    ///   llamactl inflight cancel 42
    #[command(verbatim_doc_comment)]
    Inflight {
        #[command(subcommand)]
        command: Option<InflightCommand>,
    },
    /// Reload the server's configuration file, or see what a reload would do.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Show the server's version, instance counts by status and limits.
    ///
    /// Example: llamactl status
    Status,
    /// Print a shell completion script.
    ///
    /// Example: llamactl completion bash > /etc/bash_completion.d/llamactl
    Completion {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// Options of an instance, from flags, a file or a pasted command line.
#[derive(Debug, Clone, Args)]
pub struct OptionFlags {
    /// Backend: llama_cpp, mlx_lm, vllm or custom.
    #[arg(long, short = 'b')]
    pub backend: Option<String>,
    /// Model path or repository (backend_options.model).
    #[arg(long, short = 'm')]
    pub model: Option<String>,
    /// An option as key=value; instance options (auto_restart, idle_timeout, group, ...) by
    /// name, anything else goes to backend_options. Values are JSON where they parse (4096,
    /// true, ["a"]), text otherwise. Repeatable.
    #[arg(long = "option", short = 'O', value_name = "KEY=VALUE")]
    pub options: Vec<String>,
    /// An environment variable for the backend as KEY=VALUE. Repeatable.
    #[arg(long = "env", short = 'e', value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// A command line to import, e.g. "llama-server -m model.gguf -c 4096".
    #[arg(long)]
    pub from_command: Option<String>,
    /// Options from a JSON or YAML file (flags are applied on top).
    #[arg(long = "file", short = 'f')]
    pub file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum InstanceCommand {
    /// Create an instance (stopped).
    ///
    /// Examples:
    ///   llamactl instance create qwen --backend llama_cpp --model /models/qwen.gguf -O ctx_size=4096 -O idle_timeout=10
    ///   llamactl instance create qwen --from-command "llama-server -m /models/qwen.gguf -c 4096 -ngl 99"
    ///   llamactl instance create qwen -f qwen.yaml
    #[command(verbatim_doc_comment)]
    Create {
        /// Instance name: 1-50 of a-z A-Z 0-9 . _ -
        name: String,
        #[command(flatten)]
        options: OptionFlags,
        /// Start it right away (and wait until it is ready).
        #[arg(long)]
        start: bool,
    },
    /// List instances.
    ///
    /// Example: llamactl instance list -o json
    #[command(visible_alias = "ls")]
    List,
    /// Show one instance.
    ///
    /// Example: llamactl instance show qwen
    Show {
        /// Instance name.
        name: String,
        /// Also say where each option came from: a template it extends, or the instance.
        #[arg(long)]
        effective: bool,
    },
    /// Replace an instance's options (a running instance restarts with them).
    ///
    /// Without flags the options open as YAML in $VISUAL or $EDITOR (vi on a terminal). Flags
    /// change the current options; with -f the file's options replace them first.
    ///
    /// Examples:
    ///   llamactl instance edit qwen
    ///   llamactl instance edit qwen -O ctx_size=8192
    ///   llamactl instance edit qwen -f qwen.json
    #[command(verbatim_doc_comment)]
    Edit {
        /// Instance name.
        name: String,
        #[command(flatten)]
        options: OptionFlags,
    },
    /// Start an instance.
    ///
    /// Example: llamactl instance start qwen --wait
    Start {
        /// Instance name.
        name: String,
        #[command(flatten)]
        wait: WaitFlags,
    },
    /// Stop an instance.
    ///
    /// Example: llamactl instance stop qwen
    Stop {
        /// Instance name.
        name: String,
    },
    /// Restart an instance.
    ///
    /// Example: llamactl instance restart qwen --wait
    Restart {
        /// Instance name.
        name: String,
        #[command(flatten)]
        wait: WaitFlags,
    },
    /// Delete an instance (stopping it first).
    ///
    /// Example: llamactl instance delete qwen
    #[command(visible_alias = "rm")]
    Delete {
        /// Instance name.
        name: String,
    },
    /// Print an instance's log (text: -o does not apply).
    ///
    /// Examples:
    ///   llamactl instance logs qwen -n 50
    ///   llamactl instance logs qwen -f
    #[command(verbatim_doc_comment)]
    Logs {
        /// Instance name.
        name: String,
        /// Lines from the end.
        #[arg(short = 'n', long, default_value_t = 100)]
        lines: i64,
        /// Keep printing new lines until Ctrl-C.
        #[arg(short, long)]
        follow: bool,
    },
    /// Show an instance's status transitions with their reasons.
    ///
    /// Example: llamactl instance events qwen -n 20
    Events {
        /// Instance name.
        name: String,
        /// The most recent N.
        #[arg(short = 'n', long, default_value_t = 50)]
        limit: u32,
    },
    /// List a llama.cpp router instance's models: status, why, requests in flight, pinning.
    ///
    /// Example: llamactl instance models router
    Models {
        /// Instance name.
        name: String,
    },
    /// Load a model of a router instance (starting the instance if it is stopped; the least
    /// recently used idle model makes room under its models_max).
    ///
    /// Example: llamactl instance load router org/model:Q4_K_M
    Load {
        /// Instance name.
        name: String,
        /// Model id or alias.
        model: String,
    },
    /// Unload a model of a router instance (refused while requests to it are in flight).
    ///
    /// Example: llamactl instance unload router alpha
    Unload {
        /// Instance name.
        name: String,
        /// Model id or alias.
        model: String,
    },
}

/// Waiting for readiness.
#[derive(Debug, Clone, Args)]
pub struct WaitFlags {
    /// Wait until it is ready (or failed), showing its status.
    #[arg(long, short = 'w')]
    pub wait: bool,
    /// Longest wait, seconds.
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create an inference key; it is shown this once.
    ///
    /// Examples:
    ///   llamactl key create ci --all
    ///   llamactl key create app --instance qwen:infer,start --instance small:infer --expires 30d
    #[command(verbatim_doc_comment)]
    Create {
        /// A name for people.
        name: String,
        /// Every instance, with every right.
        #[arg(long, conflicts_with = "instances")]
        all: bool,
        #[arg(
            long = "instance",
            value_name = "INSTANCE[:RIGHTS]",
            help = "An instance and the key's rights on it, among infer, start, evict, all (default: infer). \
                    Repeatable."
        )]
        instances: Vec<String>,
        /// Expiry: a duration from now (90m, 12h, 30d, 4w), a date (2026-12-31) or an RFC 3339 time.
        #[arg(long)]
        expires: Option<String>,
    },
    /// List keys (never their secrets).
    ///
    /// Example: llamactl key list
    #[command(visible_alias = "ls")]
    List,
    /// Show a key and its rights.
    ///
    /// Example: llamactl key show 3
    Show {
        /// Key id.
        id: i64,
    },
    /// Delete a key.
    ///
    /// Example: llamactl key delete 3
    #[command(visible_alias = "rm")]
    Delete {
        /// Key id.
        id: i64,
    },
}

/// Which request records `llamactl activity` shows.
#[derive(Debug, Clone, Args)]
pub struct ActivityFlags {
    /// Keep printing requests as they end, until Ctrl-C.
    #[arg(short, long)]
    pub follow: bool,
    /// Only requests for this instance.
    #[arg(long)]
    pub instance: Option<String>,
    /// Only requests with this key: its name, or its id.
    #[arg(long)]
    pub key: Option<String>,
    /// Only requests answered with this HTTP status (200, 404, 503, ...).
    #[arg(long)]
    pub status: Option<u16>,
    /// How many of the latest requests to show first.
    #[arg(short = 'n', long, default_value_t = 50)]
    pub limit: u32,
}

#[derive(Debug, Subcommand)]
pub enum InflightCommand {
    /// List the requests in flight (the default).
    ///
    /// Example: llamactl inflight list -o json
    #[command(visible_alias = "ls")]
    List,
    /// Cancel a request in flight: its client gets no more of the answer.
    ///
    /// Example: llamactl inflight cancel 42
    Cancel {
        /// Request id (see: llamactl inflight).
        id: i64,
    },
}

/// `llamactl config ...`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Show what reloading the configuration file would do, changing nothing.
    ///
    /// Per declared instance: create, update (restart), update (no restart), delete or
    /// unchanged, with the options that change; per changed global setting: applied live or
    /// needs a server restart. An invalid file is reported with its file, line and key.
    ///
    /// Example: llamactl config plan
    Plan,
    /// Reload the configuration file now (as SIGHUP does) and show what was done.
    ///
    /// Example: llamactl config reload
    Reload,
    /// Show the last reload (the server's start counts) and how it went.
    ///
    /// Example: llamactl config last
    Last,
}
