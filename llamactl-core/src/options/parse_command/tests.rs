use std::collections::BTreeSet;

use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::InstanceOptions;
use crate::backend::{BackendsSettings, Listen, build_command};
use crate::options::{ExtraArgs, FlashAttention, GpuLayers};

const LLAMA: &str =
    "llama-server -m /models/q.gguf -c 4096 -ngl 99 --flash-attn on --lora a.gguf --lora b.gguf --port 8080 --no-webui";
const VLLM: &str = "vllm serve Qwen/Qwen2-0.5B --tensor-parallel-size 2 --enforce-eager --max-model-len 4096";
const MLX: &str = "mlx_lm.server --model mlx-community/X --port 8081 --trust-remote-code";

fn parse(backend: BackendType, command: &str) -> Value {
    Value::Object(parse_command(backend, command).unwrap())
}

fn err(backend: BackendType, command: &str) -> String {
    parse_command(backend, command).unwrap_err().to_string()
}

fn instance(backend: BackendType, options: Map<String, Value>) -> InstanceOptions {
    InstanceOptions::from_json_value(&json!({"backend_type": backend.as_str(), "backend_options": options})).unwrap()
}

fn text(value: Value) -> String {
    match value {
        Value::String(s) => s,
        Value::Array(mut items) if items.len() == 1 => text(items.remove(0)),
        other => other.to_string(),
    }
}

/// The `(flag, value)` pairs of an argument list, with aliases turned into long flags and
/// typed values into their canonical text; vLLM's positional model counts as `--model`.
fn pairs(backend: BackendType, words: &[String]) -> BTreeSet<(String, Option<String>)> {
    let spec = Spec::of(backend).unwrap();
    let long = |key: &str| spec.flags.iter().find(|f| f.key == key).unwrap();
    let mut out = BTreeSet::new();
    let mut i = spec.skip_program(words).unwrap();
    while let Some(word) = words.get(i) {
        i += 1;
        if !is_flag(word) {
            assert_eq!(backend, BackendType::Vllm, "positional {word}");
            out.insert(("--model".to_owned(), Some(word.clone())));
            continue;
        }
        let (name, inline) = match word.split_once('=') {
            Some((name, value)) if word.starts_with("--") => (name, Some(value.to_owned())),
            _ => (word.as_str(), None),
        };
        let mut value = || {
            inline.clone().or_else(|| {
                let next = words.get(i).filter(|next| !is_flag(next)).cloned();
                i += usize::from(next.is_some());
                next
            })
        };
        match spec.resolve(name) {
            Target::Typed { key, negated: true } => {
                out.insert((long(key).negation.unwrap().to_owned(), None));
            }
            Target::Typed { key, negated: false } => {
                let value = match spec.kind(key) {
                    Kind::Switch => None,
                    _ => value().map(|v| text(spec.typed_value(key, Value::from(v)).unwrap())),
                };
                out.insert((long(key).long.to_owned(), value));
            }
            Target::Extra(key) => {
                out.insert((flag_for_key(&key), value()));
            }
            Target::Raw => {
                out.insert((name.to_owned(), value()));
            }
        }
    }
    out
}

/// parse -> options -> build_command gives every (flag, value) pair of the input.
fn assert_round_trip(backend: BackendType, command: &str) {
    let options = instance(backend, parse_command(backend, command).unwrap());
    let listen = Listen {
        host: options.backend.host().unwrap_or("127.0.0.1").to_owned(),
        port: options.backend.pinned_port().unwrap_or(8000),
    };
    let built = build_command("t", &options, &BackendsSettings::default(), &listen).unwrap();
    let mut words = vec![built.program];
    words.extend(built.args);
    let input = pairs(backend, &tokenize(command).unwrap());
    let output = pairs(backend, &words);
    let missing: Vec<_> = input.difference(&output).collect();
    assert!(missing.is_empty(), "{command}: {missing:?} not in {words:?}");
}

#[test]
fn llama_cpp_example() {
    assert_eq!(
        parse(BackendType::LlamaCpp, LLAMA),
        json!({"model": "/models/q.gguf", "ctx_size": 4096, "gpu_layers": 99, "flash_attn": "on",
               "lora": ["a.gguf", "b.gguf"], "port": 8080, "no_webui": true})
    );
    let options = instance(BackendType::LlamaCpp, parse_command(BackendType::LlamaCpp, LLAMA).unwrap());
    let BackendOptions::LlamaCpp(llama) = &options.backend else { panic!("wrong backend") };
    assert_eq!(llama.gpu_layers, Some(GpuLayers::Count(99)));
    assert_eq!(llama.flash_attn, Some(FlashAttention::On));
    assert_eq!(options.backend.pinned_port(), Some(8080));
    assert_round_trip(BackendType::LlamaCpp, LLAMA);
}

#[test]
fn vllm_example() {
    assert_eq!(
        parse(BackendType::Vllm, VLLM),
        json!({"model": "Qwen/Qwen2-0.5B", "tensor_parallel_size": 2, "enforce_eager": true, "max_model_len": 4096})
    );
    assert_round_trip(BackendType::Vllm, VLLM);
}

#[test]
fn mlx_example() {
    assert_eq!(
        parse(BackendType::MlxLm, MLX),
        json!({"model": "mlx-community/X", "port": 8081, "trust_remote_code": true})
    );
    assert_round_trip(BackendType::MlxLm, MLX);
}

#[test]
fn more_round_trips() {
    for (backend, command) in [
        (BackendType::LlamaCpp, "-hf u/m:Q4 -np 4 -fa auto -ctk q8_0 -ngld 10 --no-jinja --temp 0.7 --seed -1"),
        (BackendType::LlamaCpp, "-m m.gguf --host 0.0.0.0 --port 9000 --top-k=40 -xyz 3 --chat-template 'a b'"),
        (BackendType::LlamaCpp, "-m m.gguf -nocb --override-kv a=int:1 --override-kv b=str:x --no-mmap"),
        (BackendType::Vllm, "serve /m -tp 2 --no-enable-prefix-caching --gpu-memory-utilization 0.9 --foo bar"),
        (BackendType::MlxLm, "--model m --temp 0.5 --max-tokens 100 --log-level DEBUG --pipeline"),
    ] {
        assert_round_trip(backend, command);
    }
}

#[test]
fn flag_equals_value() {
    assert_eq!(
        parse(BackendType::LlamaCpp, "--model=/m.gguf --ctx-size=4096 --top-k=40 --gpu-layers=auto --jinja=false"),
        json!({"model": "/m.gguf", "ctx_size": 4096, "top_k": 40, "gpu_layers": "auto", "jinja": false})
    );
    // A value starting with a dash can be given this way.
    assert_eq!(parse(BackendType::LlamaCpp, "--alias=-x"), json!({"alias": "-x"}));
}

#[test]
fn multi_line_with_backslashes() {
    let command = "llama-server \\\n  -m /models/q.gguf \\\r\n  -c 4096 \\\n  --jinja \\\n";
    assert_eq!(
        parse(BackendType::LlamaCpp, command),
        json!({"model": "/models/q.gguf", "ctx_size": 4096, "jinja": true})
    );
    // Lines without backslashes and comments are fine too.
    assert_eq!(parse(BackendType::LlamaCpp, "llama-server # server\n -c 1 \\"), json!({"ctx_size": 1}));
}

#[test]
fn full_path_and_other_program_forms() {
    let expected = json!({"model": "/m.gguf", "ctx_size": 1024});
    for command in [
        "/opt/llama.cpp/build/bin/llama-server -m /m.gguf -c 1024",
        "./llama-server -m /m.gguf -c 1024",
        "$ llama-server -m /m.gguf -c 1024",
    ] {
        assert_eq!(parse(BackendType::LlamaCpp, command), expected, "{command}");
    }
    for command in [
        "/usr/bin/python3 -m mlx_lm.server --model m",
        "python -m mlx_lm server --model m",
        "~/.venv/bin/mlx_lm.server --model m",
    ] {
        assert_eq!(parse(BackendType::MlxLm, command), json!({"model": "m"}), "{command}");
    }
    for command in [
        "/home/u/.venv/bin/vllm serve Qwen/X",
        "vllm serve --model Qwen/X",
        "python3 -m vllm.entrypoints.openai.api_server --model Qwen/X",
    ] {
        assert_eq!(parse(BackendType::Vllm, command), json!({"model": "Qwen/X"}), "{command}");
    }
}

#[test]
fn arguments_only() {
    assert_eq!(parse(BackendType::LlamaCpp, "-m x.gguf -c 1024"), json!({"model": "x.gguf", "ctx_size": 1024}));
    assert_eq!(parse(BackendType::Vllm, "Qwen/X --dtype half"), json!({"model": "Qwen/X", "dtype": "half"}));
    assert_eq!(parse(BackendType::Vllm, "serve Qwen/X"), json!({"model": "Qwen/X"}));
    assert_eq!(parse(BackendType::MlxLm, "--model m --port 0"), json!({"model": "m", "port": 0}));
}

#[test]
fn negations() {
    assert_eq!(parse(BackendType::LlamaCpp, "-m m --no-jinja"), json!({"model": "m", "jinja": false}));
    assert_eq!(parse(BackendType::LlamaCpp, "-m m -nocb"), json!({"model": "m", "cont_batching": false}));
    assert_eq!(parse(BackendType::Vllm, "m --no-enforce-eager"), json!({"model": "m", "enforce_eager": false}));
    assert_eq!(err(BackendType::LlamaCpp, "--no-jinja=1"), "flag --no-jinja takes no value, got '1'");
    assert_eq!(
        err(BackendType::LlamaCpp, "--jinja --no-jinja"),
        "--no-jinja conflicts with the earlier --jinja (both set jinja)"
    );
    // The same value twice is no conflict.
    assert_eq!(parse(BackendType::LlamaCpp, "-c 8 --ctx-size 8"), json!({"ctx_size": 8}));
}

#[test]
fn repeated_flags_become_lists() {
    assert_eq!(parse(BackendType::LlamaCpp, "--lora a --lora b"), json!({"lora": ["a", "b"]}));
    assert_eq!(parse(BackendType::LlamaCpp, "--lora=a"), json!({"lora": ["a"]}));
    assert_eq!(
        parse(BackendType::LlamaCpp, "--override-kv a=int:1 -ts 3 --override-kv b=str:x -ts 1"),
        json!({"override_kv": ["a=int:1", "b=str:x"], "tensor_split": [3, 1]})
    );
    assert_eq!(parse(BackendType::LlamaCpp, "--no-mmap --no-mmap"), json!({"no_mmap": true}));
    assert_eq!(err(BackendType::LlamaCpp, "--foo --foo 1"), "flag --foo is given both as a switch and with a value");
}

#[test]
fn unknown_switch_followed_by_a_flag() {
    assert_eq!(
        parse(BackendType::LlamaCpp, "--no-mmap -c 4096 --metrics"),
        json!({"no_mmap": true, "ctx_size": 4096, "metrics": true})
    );
    assert_eq!(
        parse(BackendType::Vllm, "m --disable-log-requests --max-num-seqs 8"),
        json!({"model": "m", "disable_log_requests": true, "max_num_seqs": 8})
    );
}

#[test]
fn negative_numbers() {
    assert_eq!(
        parse(BackendType::LlamaCpp, "--seed -1 -ngl -1 --foo -5 --bar -0.5"),
        json!({"seed": -1, "gpu_layers": -1, "foo": -5, "bar": -0.5})
    );
}

#[test]
fn untyped_values() {
    assert_eq!(
        parse(BackendType::LlamaCpp, "--a1 0.5 --a2 1e5 --a3 007 --a4 true --a5 x,y --a6 nan"),
        json!({"a1": 0.5, "a2": "1e5", "a3": "007", "a4": "true", "a5": "x,y", "a6": "nan"})
    );
    // A key cannot reproduce these flags exactly: they are kept verbatim.
    assert_eq!(
        parse(BackendType::LlamaCpp, "-xyz 3 --q --a_b=1 --extra-args z --ctx_size 5"),
        json!({"extra_args": ["-xyz", "3", "--q", "--a_b=1", "--extra-args", "z", "--ctx_size", "5"]})
    );
}

#[test]
fn typed_values() {
    assert_eq!(
        parse(BackendType::LlamaCpp, "--gpu-layers auto -fa -t 8 --temp 0.8 --alias 123"),
        json!({"gpu_layers": "auto", "flash_attn": "on", "threads": 8, "temp": 0.8, "alias": "123"})
    );
    assert_eq!(parse(BackendType::LlamaCpp, "-fa off"), json!({"flash_attn": "off"}));
    assert_eq!(parse(BackendType::LlamaCpp, "-dev CUDA0 -lv 3"), json!({"device": "CUDA0", "verbosity": 3}));
}

#[test]
fn quoted_values() {
    assert_eq!(
        parse(BackendType::LlamaCpp, r#"--chat-template "a b" --alias 'x y' --system-prompt "say \"hi\"""#),
        json!({"chat_template": "a b", "alias": "x y", "system_prompt": "say \"hi\""})
    );
}

#[test]
fn errors() {
    assert_eq!(parse_command(BackendType::LlamaCpp, "  \n "), Err(ParseCommandError::Empty));
    assert_eq!(parse_command(BackendType::LlamaCpp, "# nothing"), Err(ParseCommandError::Empty));
    assert_eq!(err(BackendType::LlamaCpp, "-m 'x.gguf"), "unterminated ' quote starting at line 1, column 4");
    assert_eq!(
        err(BackendType::LlamaCpp, "-m x \\\n --alias \"it's"),
        "unterminated \" quote starting at line 2, column 10"
    );
    assert_eq!(err(BackendType::LlamaCpp, "-m x -c"), "flag -c needs a value");
    assert_eq!(err(BackendType::LlamaCpp, "--ctx-size --port 1"), "flag --ctx-size needs a value (found flag --port)");
    assert_eq!(err(BackendType::LlamaCpp, "-m x foo"), "llama-server takes no positional argument: 'foo'");
    assert_eq!(err(BackendType::MlxLm, "--model m extra"), "mlx_lm.server takes no positional argument: 'extra'");
    assert!(err(BackendType::Custom, "server --x").contains("custom backends take a command and args directly"));
    assert_eq!(
        err(BackendType::LlamaCpp, "-c big"),
        "flag -c: invalid value 'big': expected an integer in the range of u32, got string \"big\""
    );
    assert_eq!(
        err(BackendType::Vllm, "a b"),
        "positional argument b conflicts with the earlier positional argument a (both set model)"
    );
    assert!(err(BackendType::Vllm, "vllm serve --model a b").contains("both set model"));
    assert_eq!(
        err(BackendType::LlamaCpp, "CUDA_VISIBLE_DEVICES=0 llama-server -m x"),
        "'CUDA_VISIBLE_DEVICES=0' sets an environment variable, which is not a backend option; put it in the instance's environment"
    );
    assert_eq!(
        err(BackendType::LlamaCpp, "vllm serve m"),
        "expected a llama-server command line or only its arguments, got program 'vllm'"
    );
    assert_eq!(err(BackendType::Vllm, "--port 70000").split(':').next(), Some("flag --port"));
    assert!(matches!(
        parse_command(BackendType::LlamaCpp, &format!("--foo a{}b", '\0')),
        Err(ParseCommandError::Options(_))
    ));
}

#[test]
fn only_the_program() {
    assert_eq!(parse(BackendType::LlamaCpp, "llama-server"), json!({}));
    assert_eq!(parse(BackendType::Vllm, "vllm serve"), json!({}));
}

fn llama_options() -> impl Strategy<Value = LlamaCppOptions> {
    let gpu_layers = prop_oneof![(-1i32..200).prop_map(GpuLayers::Count), Just(GpuLayers::Auto), Just(GpuLayers::All)];
    let flash = prop_oneof![Just(FlashAttention::On), Just(FlashAttention::Off), Just(FlashAttention::Auto)];
    (
        "/models/[a-z]{1,8}\\.gguf",
        proptest::option::of(any::<u32>()),
        proptest::option::of(gpu_layers),
        proptest::option::of(flash),
        (proptest::option::of(any::<bool>()), proptest::option::of(any::<bool>())),
        proptest::option::of(any::<i64>()),
        proptest::option::of(0.0f64..2.0),
        proptest::option::of("[a-z0-9 {}%#'\"]{1,20}"),
        proptest::collection::vec("[a-z]{1,5}\\.gguf", 0..3),
        (proptest::option::of(1u32..100), any::<bool>()),
    )
        .prop_map(
            |(
                model,
                ctx_size,
                gpu_layers,
                flash_attn,
                (jinja, cont_batching),
                seed,
                temp,
                chat_template,
                lora,
                extra,
            )| {
                let mut pairs = Vec::new();
                if let Some(top_k) = extra.0 {
                    pairs.push(("top_k", json!(top_k)));
                }
                if extra.1 {
                    pairs.push(("no_webui", json!(true)));
                }
                LlamaCppOptions {
                    model: Some(model),
                    ctx_size,
                    gpu_layers,
                    flash_attn,
                    jinja,
                    cont_batching,
                    seed,
                    temp,
                    chat_template,
                    lora: (!lora.is_empty()).then_some(lora),
                    extra: ExtraArgs::from_pairs(pairs).unwrap(),
                    ..Default::default()
                }
            },
        )
}

proptest! {
    #[test]
    fn built_arguments_parse_back_to_the_same_options(llama in llama_options()) {
        let options = InstanceOptions::new(BackendOptions::LlamaCpp(llama));
        let listen = Listen { host: "127.0.0.1".into(), port: 8000 };
        let args = build_command("t", &options, &BackendsSettings::default(), &listen).unwrap().args;
        // The manager writes --host and --port itself.
        prop_assert_eq!(&args[..4], &["--host", "127.0.0.1", "--port", "8000"]);
        let command = shell_words::join(&args[4..]);
        let parsed = parse_command(BackendType::LlamaCpp, &command).unwrap();
        let reparsed = instance(BackendType::LlamaCpp, parsed);
        prop_assert_eq!(reparsed.backend, options.backend);
    }
}
