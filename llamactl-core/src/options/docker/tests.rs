use super::run_args::{expand_home, parse_run_args};
use super::*;
use serde_json::json;

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn run_args(list: &[&str]) -> Result<DockerRunOptions, String> {
    parse_run_args(&args(list), Some("/home/me"))
}

fn run_err(list: &[&str]) -> String {
    run_args(list).unwrap_err()
}

fn from_json<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T, String> {
    serde_json::from_value(value).map_err(|e| e.to_string())
}

fn ids(list: &[&str]) -> GpuRequest {
    GpuRequest::Devices(list.iter().map(|s| (*s).to_owned()).collect())
}

// ---- ByteSize ----

#[test]
fn byte_size_parses_units_case_insensitively() {
    let cases: &[(&str, u64)] = &[
        ("1", 1),
        ("1048576", 1 << 20),
        ("100b", 100),
        ("100B", 100),
        ("64k", 64 << 10),
        ("64kb", 64 << 10),
        ("64KiB", 64 << 10),
        ("512m", 512 << 20),
        ("512MB", 512 << 20),
        ("512mib", 512 << 20),
        ("1g", 1 << 30),
        ("1G", 1 << 30),
        ("16gb", 16 << 30),
        ("2GiB", 2 << 30),
        ("1t", 1 << 40),
        ("1TB", 1 << 40),
        (" 8g ", 8 << 30),
        ("8 g", 8 << 30),
        ("1.5g", 3 << 29),
        ("0.5k", 512),
        ("1.50g", 3 << 29),
        ("2.0m", 2 << 20),
        ("0.25m", 256 << 10),
        ("18446744073709551615", u64::MAX),
        ("16777215t", 16_777_215 << 40),
    ];
    for (text, bytes) in cases {
        assert_eq!(ByteSize::parse(text), Ok(ByteSize(*bytes)), "{text}");
        assert_eq!(text.parse::<ByteSize>(), Ok(ByteSize(*bytes)), "{text}");
    }
}

#[test]
fn byte_size_refuses_bad_values_clearly() {
    let cases: &[(&str, &str)] = &[
        ("0", "greater than zero"),
        ("0g", "greater than zero"),
        ("0.0m", "greater than zero"),
        ("-1", "negative"),
        ("-1g", "negative"),
        ("", "not a size"),
        ("g", "not a size"),
        ("1x", "not a size"),
        ("1gg", "not a size"),
        ("1p", "not a size"),
        ("1.g", "not a size"),
        (".5g", "not a size"),
        ("1.2.3g", "not a size"),
        ("1,5g", "not a size"),
        ("0.1k", "not a whole number of bytes"),
        ("1.5", "not a whole number of bytes"),
        ("1.0000000000000000000000000000000000000000001g", "not a whole number of bytes"),
        ("18446744073709551616", "too large"),
        ("16777216t", "too large"),
        ("99999999999999999999999999999999999999999999", "too large"),
    ];
    for (text, expected) in cases {
        let err = ByteSize::parse(text).unwrap_err();
        assert!(err.contains(expected), "{text}: {err}");
        assert!(err.contains(&format!("{text:?}")), "the error quotes the value: {err}");
    }
}

#[test]
fn byte_size_serde() {
    assert_eq!(from_json::<ByteSize>(json!(1024)), Ok(ByteSize(1024)));
    assert_eq!(from_json::<ByteSize>(json!("1g")), Ok(ByteSize(1 << 30)));
    assert_eq!(serde_json::to_value(ByteSize(1 << 30)).unwrap(), json!(1_073_741_824));
    let back: ByteSize = serde_json::from_value(serde_json::to_value(ByteSize(12345)).unwrap()).unwrap();
    assert_eq!(back, ByteSize(12345));
    for (value, expected) in [
        (json!(0), "greater than zero"),
        (json!(-5), "negative"),
        (json!(1.5), "whole number of bytes"),
        (json!("1x"), "not a size"),
        (json!(true), "a number of bytes or a string with a unit"),
        (json!(null), "a number of bytes or a string with a unit"),
    ] {
        let err = from_json::<ByteSize>(value.clone()).unwrap_err();
        assert!(err.contains(expected), "{value}: {err}");
    }
}

#[test]
fn byte_size_display_uses_the_largest_exact_unit() {
    assert_eq!(ByteSize(1 << 30).to_string(), "1g");
    assert_eq!(ByteSize(3 << 29).to_string(), "1536m");
    assert_eq!(ByteSize(64 << 10).to_string(), "64k");
    assert_eq!(ByteSize(2 << 40).to_string(), "2t");
    assert_eq!(ByteSize(1000).to_string(), "1000");
    for size in [ByteSize(1 << 30), ByteSize(3 << 29), ByteSize(1000), ByteSize(u64::MAX)] {
        assert_eq!(ByteSize::parse(&size.to_string()), Ok(size));
    }
}

// ---- GpuRequest ----

#[test]
fn gpu_request_parses_docker_syntax() {
    assert_eq!(GpuRequest::parse("all"), Ok(GpuRequest::All));
    assert_eq!(GpuRequest::parse("ALL"), Ok(GpuRequest::All));
    assert_eq!(GpuRequest::parse("\"all\""), Ok(GpuRequest::All));
    assert_eq!(GpuRequest::parse("count=all"), Ok(GpuRequest::All));
    assert_eq!(GpuRequest::parse("2"), Ok(GpuRequest::Count(2)));
    assert_eq!(GpuRequest::parse("count=3"), Ok(GpuRequest::Count(3)));
    assert_eq!(GpuRequest::parse("device=0"), Ok(ids(&["0"])));
    assert_eq!(GpuRequest::parse("device=0,2"), Ok(ids(&["0", "2"])));
    assert_eq!(GpuRequest::parse("\"device=0,2\""), Ok(ids(&["0", "2"])));
    assert_eq!(GpuRequest::parse("'device=0, 2'"), Ok(ids(&["0", "2"])));
    assert_eq!(GpuRequest::parse("device=GPU-3a23c669-1f69"), Ok(ids(&["GPU-3a23c669-1f69"])));
    assert_eq!("all".parse::<GpuRequest>(), Ok(GpuRequest::All));
}

#[test]
fn gpu_request_refuses_bad_syntax() {
    for (text, expected) in [
        ("", "expected \"all\", a number of GPUs, or a list of device ids"),
        ("some", "expected \"all\", a number of GPUs, or a list of device ids"),
        ("driver=nvidia", "is not a GPU request"),
        ("all,capabilities=utility", "is not a GPU request"),
        ("-1", "is not a GPU request"),
        ("0", "at least 1"),
        ("99999999999", "too many GPUs"),
        ("device=", "empty device id"),
        ("device=0,,1", "empty device id"),
    ] {
        let err = GpuRequest::parse(text).unwrap_err();
        assert!(err.contains(expected), "{text}: {err}");
    }
}

#[test]
fn gpu_request_serde_round_trips() {
    for (value, request) in [
        (json!("all"), GpuRequest::All),
        (json!(2), GpuRequest::Count(2)),
        (json!(["0", "2"]), ids(&["0", "2"])),
        (json!(["GPU-abc"]), ids(&["GPU-abc"])),
    ] {
        assert_eq!(from_json::<GpuRequest>(value.clone()), Ok(request.clone()), "{value}");
        assert_eq!(serde_json::to_value(&request).unwrap(), value);
    }
    // Other accepted spellings, written back in the canonical form.
    assert_eq!(from_json::<GpuRequest>(json!("device=0,2")), Ok(ids(&["0", "2"])));
    assert_eq!(serde_json::to_value(ids(&["0", "2"])).unwrap(), json!(["0", "2"]));
    assert_eq!(from_json::<GpuRequest>(json!([0, 2])), Ok(ids(&["0", "2"])));
    assert_eq!(from_json::<GpuRequest>(json!("3")), Ok(GpuRequest::Count(3)));
}

#[test]
fn gpu_request_serde_errors_say_what_is_expected() {
    for (value, expected) in [
        (json!(true), "expected \"all\", a number of GPUs, or a list of device ids"),
        (json!({"count": 1}), "expected \"all\", a number of GPUs, or a list of device ids"),
        (json!(null), "expected \"all\", a number of GPUs, or a list of device ids"),
        (json!("most"), "expected \"all\", a number of GPUs, or a list of device ids"),
        (json!(1.5), "expected \"all\", a number of GPUs, or a list of device ids"),
        (json!(0), "at least 1"),
        (json!(-1), "must not be negative"),
        (json!(5_000_000_000u64), "too many GPUs"),
        (json!([]), "list of device ids is empty"),
        (json!([""]), "not a device id"),
        (json!(["0,1"]), "not a device id"),
        (json!([true]), "a device id"),
    ] {
        let err = from_json::<GpuRequest>(value.clone()).unwrap_err();
        assert!(err.contains(expected), "{value}: {err}");
    }
}

// ---- DockerNetwork ----

#[test]
fn docker_network_serde() {
    assert_eq!(from_json::<DockerNetwork>(json!("bridge")), Ok(DockerNetwork::Bridge));
    assert_eq!(from_json::<DockerNetwork>(json!("host")), Ok(DockerNetwork::Host));
    assert_eq!(serde_json::to_value(DockerNetwork::Host).unwrap(), json!("host"));
    assert_eq!(serde_json::to_value(DockerNetwork::Bridge).unwrap(), json!("bridge"));
    assert_eq!(DockerNetwork::Host.to_string(), "host");
    assert_eq!(DockerNetwork::Bridge.as_str(), "bridge");
    let err = from_json::<DockerNetwork>(json!("overlay")).unwrap_err();
    assert!(err.contains("overlay") && err.contains("bridge") && err.contains("host"), "{err}");
    assert!(from_json::<DockerNetwork>(json!("Host")).is_err());
}

// ---- DockerRunOptions serde ----

fn full_options() -> DockerRunOptions {
    DockerRunOptions {
        image: Some("ghcr.io/ggml-org/llama.cpp:server-cuda".into()),
        entrypoint: Some(vec!["/app/llama-server".into()]),
        network: Some(DockerNetwork::Bridge),
        volumes: vec!["/models:/models:ro".into(), "hf-cache:/root/.cache/huggingface".into()],
        gpus: Some(ids(&["0", "2"])),
        shm_size: Some(ByteSize(1 << 30)),
        memory: Some(ByteSize(16 << 30)),
        environment: BTreeMap::from([("HF_HOME".into(), "/root/.cache/huggingface".into())]),
    }
}

#[test]
fn run_options_round_trip() {
    let options = full_options();
    let value = serde_json::to_value(&options).unwrap();
    assert_eq!(
        value,
        json!({
            "image": "ghcr.io/ggml-org/llama.cpp:server-cuda",
            "entrypoint": ["/app/llama-server"],
            "network": "bridge",
            "volumes": ["/models:/models:ro", "hf-cache:/root/.cache/huggingface"],
            "gpus": ["0", "2"],
            "shm_size": 1_073_741_824u64,
            "memory": 17_179_869_184u64,
            "environment": {"HF_HOME": "/root/.cache/huggingface"},
        })
    );
    options.validate().unwrap();
    assert_eq!(from_json::<DockerRunOptions>(value), Ok(options));
}

#[test]
fn run_options_empty_serializes_to_an_empty_object() {
    assert_eq!(serde_json::to_value(DockerRunOptions::default()).unwrap(), json!({}));
    assert_eq!(from_json::<DockerRunOptions>(json!({})), Ok(DockerRunOptions::default()));
}

#[test]
fn run_options_read_human_sizes_and_gpu_forms() {
    let options: DockerRunOptions =
        from_json(json!({"gpus": "device=1", "shm_size": "512m", "memory": "8g", "network": "host"})).unwrap();
    assert_eq!(options.gpus, Some(ids(&["1"])));
    assert_eq!(options.shm_size, Some(ByteSize(512 << 20)));
    assert_eq!(options.memory, Some(ByteSize(8 << 30)));
    assert_eq!(options.network, Some(DockerNetwork::Host));
}

#[test]
fn run_options_refuse_unknown_fields_naming_them() {
    let err = from_json::<DockerRunOptions>(json!({"image": "x", "privileged": true})).unwrap_err();
    assert!(err.contains("unknown field `privileged`"), "{err}");
    let err = from_json::<DockerRunOptions>(json!({"args": ["run"]})).unwrap_err();
    assert!(err.contains("`args`"), "{err}");
}

#[test]
fn run_options_wrong_types_are_refused() {
    let err = from_json::<DockerRunOptions>(json!({"gpus": true})).unwrap_err();
    assert!(err.contains("a number of GPUs"), "{err}");
    let err = from_json::<DockerRunOptions>(json!({"shm_size": "lots"})).unwrap_err();
    assert!(err.contains("\"lots\""), "{err}");
    let err = from_json::<DockerRunOptions>(json!({"volumes": "/a:/b"})).unwrap_err();
    assert!(err.contains("sequence"), "{err}");
}

// ---- overlay ----

#[test]
fn overlay_top_scalars_win_where_set() {
    let base = full_options();
    assert_eq!(base.overlay(&DockerRunOptions::default()), base);
    assert_eq!(DockerRunOptions::default().overlay(&base), base);
    let top = DockerRunOptions {
        image: Some("vllm/vllm-openai:latest".into()),
        network: Some(DockerNetwork::Host),
        gpus: Some(GpuRequest::All),
        memory: Some(ByteSize(32 << 30)),
        ..Default::default()
    };
    let merged = base.overlay(&top);
    assert_eq!(merged.image.as_deref(), Some("vllm/vllm-openai:latest"));
    assert_eq!(merged.network, Some(DockerNetwork::Host));
    assert_eq!(merged.gpus, Some(GpuRequest::All));
    assert_eq!(merged.memory, Some(ByteSize(32 << 30)));
    assert_eq!(merged.entrypoint, base.entrypoint, "unset in top: kept");
    assert_eq!(merged.shm_size, base.shm_size);
    let top = DockerRunOptions { entrypoint: Some(vec!["python3".into(), "-m".into()]), ..Default::default() };
    assert_eq!(base.overlay(&top).entrypoint, top.entrypoint, "lists are replaced whole");
}

#[test]
fn overlay_merges_environment_top_winning() {
    let base = DockerRunOptions {
        environment: BTreeMap::from([("A".into(), "1".into()), ("B".into(), "base".into())]),
        ..Default::default()
    };
    let top = DockerRunOptions {
        environment: BTreeMap::from([("B".into(), "top".into()), ("C".into(), "3".into())]),
        ..Default::default()
    };
    assert_eq!(
        base.overlay(&top).environment,
        BTreeMap::from([("A".into(), "1".into()), ("B".into(), "top".into()), ("C".into(), "3".into())])
    );
}

#[test]
fn overlay_volumes_base_then_top_replacing_same_target() {
    let base = DockerRunOptions {
        volumes: vec!["/models:/models:ro".into(), "/cache:/root/.cache".into(), "/data:/data/".into()],
        ..Default::default()
    };
    let top = DockerRunOptions {
        volumes: vec!["/other:/extra".into(), "/fast/models:/models".into(), "vol:/data".into()],
        ..Default::default()
    };
    assert_eq!(
        base.overlay(&top).volumes,
        ["/cache:/root/.cache", "/other:/extra", "/fast/models:/models", "vol:/data"]
    );
    let top = DockerRunOptions { volumes: vec!["/x:/y".into()], ..Default::default() };
    assert_eq!(base.overlay(&top).volumes, ["/models:/models:ro", "/cache:/root/.cache", "/data:/data/", "/x:/y"]);
}

// ---- validate ----

fn invalid(options: DockerRunOptions) -> (String, String) {
    options.validate().unwrap_err()
}

#[test]
fn validate_accepts_good_options() {
    full_options().validate().unwrap();
    DockerRunOptions::default().validate().unwrap();
    DockerRunOptions {
        volumes: vec!["/a:/a".into(), "/b:/b:rw".into(), "my_vol.1:/c:ro".into(), "/:/host:ro".into()],
        gpus: Some(GpuRequest::Count(1)),
        memory: Some(ByteSize(6 << 20)),
        shm_size: Some(ByteSize(1)),
        ..Default::default()
    }
    .validate()
    .unwrap();
}

#[test]
fn validate_names_the_field() {
    let o = |f: fn(&mut DockerRunOptions)| {
        let mut options = full_options();
        f(&mut options);
        invalid(options)
    };
    let cases: Vec<((String, String), &str, &str)> = vec![
        (o(|x| x.image = Some(String::new())), "docker.image", "must not be empty"),
        (o(|x| x.image = Some("  ".into())), "docker.image", "must not be empty"),
        (o(|x| x.image = Some("a b".into())), "docker.image", "whitespace"),
        (o(|x| x.entrypoint = Some(vec![])), "docker.entrypoint", "empty list"),
        (o(|x| x.entrypoint = Some(vec!["a".into(), "b\0".into()])), "docker.entrypoint[1]", "NUL"),
        (o(|x| x.gpus = Some(GpuRequest::Count(0))), "docker.gpus", "at least 1"),
        (o(|x| x.gpus = Some(GpuRequest::Devices(vec![]))), "docker.gpus", "empty"),
        (o(|x| x.shm_size = Some(ByteSize(0))), "docker.shm_size", "greater than zero"),
        (o(|x| x.memory = Some(ByteSize(0))), "docker.memory", "minimum"),
        (o(|x| x.memory = Some(ByteSize(4 << 20))), "docker.memory", "4m is below Docker's minimum"),
        (o(|x| _ = x.environment.insert(String::new(), "v".into())), "docker.environment", "non-empty"),
        (o(|x| _ = x.environment.insert("A=B".into(), "v".into())), "docker.environment", "\"A=B\""),
        (o(|x| _ = x.environment.insert("A".into(), "\0".into())), "docker.environment", "NUL"),
    ];
    for ((field, message), expected_field, expected_message) in cases {
        assert_eq!(field, expected_field, "{message}");
        assert!(message.contains(expected_message), "{field}: {message}");
    }
}

#[test]
fn validate_checks_volume_syntax() {
    let cases: &[(&str, &str)] = &[
        ("", "must be SOURCE:TARGET"),
        ("/models", "must be SOURCE:TARGET"),
        ("/a:/b:ro:z", "too many ':'"),
        (":/b", "source must not be empty"),
        ("/a:", "target must not be empty"),
        ("/a:b", "must be an absolute path in the container"),
        ("/a:/b:z", "mode \"z\" is not supported"),
        ("/a:/b:", "mode \"\" is not supported"),
        ("/a:/b:RO", "mode \"RO\""),
        ("~/models:/models", "'~' is not expanded"),
        ("./models:/models", "absolute host path or a volume name"),
        ("models/x:/models", "absolute host path or a volume name"),
        ("m:/models", "absolute host path or a volume name"),
        ("-vol:/models", "absolute host path or a volume name"),
    ];
    for (volume, expected) in cases {
        let options = DockerRunOptions { volumes: vec!["/ok:/ok".into(), (*volume).into()], ..Default::default() };
        let (field, message) = invalid(options);
        assert_eq!(field, "docker.volumes[1]", "{volume}");
        assert!(message.contains(expected), "{volume}: {message}");
    }
}

#[test]
fn validate_refuses_two_mounts_on_one_target() {
    let options = DockerRunOptions {
        volumes: vec!["/a:/data".into(), "/b:/other".into(), "/c:/data/:ro".into()],
        ..Default::default()
    };
    assert_eq!(
        invalid(options),
        ("docker.volumes[2]".into(), "target /data is already mounted by docker.volumes[0]".into())
    );
}

// ---- from_run_args ----

#[test]
fn go_default_style_args() {
    let options = run_args(&[
        "run",
        "--rm",
        "--network",
        "host",
        "--gpus",
        "all",
        "-v",
        "~/.cache/llama.cpp:/root/.cache/llama.cpp",
        "--shm-size",
        "1g",
    ])
    .unwrap();
    assert_eq!(
        options,
        DockerRunOptions {
            network: Some(DockerNetwork::Host),
            gpus: Some(GpuRequest::All),
            volumes: vec!["/home/me/.cache/llama.cpp:/root/.cache/llama.cpp".into()],
            shm_size: Some(ByteSize(1 << 30)),
            ..Default::default()
        }
    );
    options.validate().unwrap();
    // The Go llamactl's vLLM default.
    let options = run_args(&[
        "run",
        "--rm",
        "--network",
        "host",
        "--gpus",
        "all",
        "--shm-size",
        "1g",
        "-v",
        "~/.cache/huggingface:/root/.cache/huggingface",
    ])
    .unwrap();
    assert_eq!(options.volumes, ["/home/me/.cache/huggingface:/root/.cache/huggingface"]);
}

#[test]
fn empty_args_and_bare_run_give_defaults() {
    assert_eq!(run_args(&[]), Ok(DockerRunOptions::default()));
    assert_eq!(run_args(&["run"]), Ok(DockerRunOptions::default()));
    assert_eq!(run_args(&["--rm", "-d", "--detach", "-i", "-t", "-it", "-ti", "--init"]), Ok(Default::default()));
    assert_eq!(run_args(&["--rm=true", "--init=false"]), Ok(Default::default()));
    assert!(run_err(&["--rm=yes"]).contains("not true or false"));
}

#[test]
fn each_flag_in_both_forms() {
    let cases: Vec<(Vec<&str>, Vec<&str>, DockerRunOptions)> = vec![
        (
            vec!["--network", "host"],
            vec!["--network=host"],
            DockerRunOptions { network: Some(DockerNetwork::Host), ..Default::default() },
        ),
        (
            vec!["--net", "bridge"],
            vec!["--net=bridge"],
            DockerRunOptions { network: Some(DockerNetwork::Bridge), ..Default::default() },
        ),
        (
            vec!["--gpus", "2"],
            vec!["--gpus=2"],
            DockerRunOptions { gpus: Some(GpuRequest::Count(2)), ..Default::default() },
        ),
        (
            vec!["--gpus", "\"device=0,1\""],
            vec!["--gpus=device=0,1"],
            DockerRunOptions { gpus: Some(ids(&["0", "1"])), ..Default::default() },
        ),
        (
            vec!["-v", "/m:/models:ro"],
            vec!["-v=/m:/models:ro"],
            DockerRunOptions { volumes: vec!["/m:/models:ro".into()], ..Default::default() },
        ),
        (
            vec!["--volume", "vol:/data"],
            vec!["--volume=vol:/data"],
            DockerRunOptions { volumes: vec!["vol:/data".into()], ..Default::default() },
        ),
        (
            vec!["--shm-size", "512m"],
            vec!["--shm-size=512m"],
            DockerRunOptions { shm_size: Some(ByteSize(512 << 20)), ..Default::default() },
        ),
        (vec!["-m", "8g"], vec!["-m=8g"], DockerRunOptions { memory: Some(ByteSize(8 << 30)), ..Default::default() }),
        (
            vec!["--memory", "8g"],
            vec!["--memory=8g"],
            DockerRunOptions { memory: Some(ByteSize(8 << 30)), ..Default::default() },
        ),
        (
            vec!["-e", "A=b=c"],
            vec!["-e=A=b=c"],
            DockerRunOptions { environment: BTreeMap::from([("A".into(), "b=c".into())]), ..Default::default() },
        ),
        (
            vec!["--env", "EMPTY="],
            vec!["--env=EMPTY="],
            DockerRunOptions { environment: BTreeMap::from([("EMPTY".into(), String::new())]), ..Default::default() },
        ),
        (
            vec!["--entrypoint", "/app/llama-server"],
            vec!["--entrypoint=/app/llama-server"],
            DockerRunOptions { entrypoint: Some(vec!["/app/llama-server".into()]), ..Default::default() },
        ),
    ];
    for (spaced, joined, expected) in cases {
        assert_eq!(run_args(&spaced).as_ref(), Ok(&expected), "{spaced:?}");
        assert_eq!(run_args(&joined).as_ref(), Ok(&expected), "{joined:?}");
        let mut with_run = vec!["run"];
        with_run.extend(&spaced);
        assert_eq!(run_args(&with_run), Ok(expected), "{with_run:?}");
    }
}

#[test]
fn repeated_flags_accumulate_or_last_wins() {
    let options = run_args(&[
        "-v",
        "/a:/a",
        "-v",
        "/b:/b",
        "-e",
        "A=1",
        "-e",
        "B=2",
        "-e",
        "A=3",
        "--network",
        "host",
        "--net",
        "bridge",
    ])
    .unwrap();
    assert_eq!(options.volumes, ["/a:/a", "/b:/b"]);
    assert_eq!(options.environment, BTreeMap::from([("A".into(), "3".into()), ("B".into(), "2".into())]));
    assert_eq!(options.network, Some(DockerNetwork::Bridge));
}

#[test]
fn home_expansion() {
    assert_eq!(expand_home("~/x:/y", Some("/home/me")), "/home/me/x:/y");
    assert_eq!(expand_home("~/x:/y", Some("/home/me/")), "/home/me/x:/y");
    assert_eq!(expand_home("~:/y", Some("/root")), "/root:/y");
    assert_eq!(expand_home("~bob/x:/y", Some("/root")), "~bob/x:/y");
    assert_eq!(expand_home("/a/~/x:/y", Some("/root")), "/a/~/x:/y");
    assert_eq!(expand_home("~/x:/y", None), "~/x:/y");
    let err = parse_run_args(&args(&["-v", "~/x:/y"]), None).unwrap_err();
    assert!(err.contains("'~' is not expanded"), "{err}");
    assert!(err.contains("-v \"~/x:/y\""), "{err}");
}

#[test]
fn from_run_args_reads_home_from_the_environment() {
    // Whatever HOME is here, the public function agrees with the explicit one.
    let home = std::env::var("HOME").ok().filter(|h| !h.is_empty());
    let list = args(&["-v", "/a:/a"]);
    assert_eq!(DockerRunOptions::from_run_args(&list), parse_run_args(&list, home.as_deref()));
}

#[test]
fn refusals_name_the_argument() {
    let cases: &[(&[&str], &str)] = &[
        (&["--network", "none"], "--network \"none\" is not supported (use host or bridge)"),
        (&["--net=my-net"], "--net \"my-net\" is not supported"),
        (&["--network", "container:x"], "\"container:x\""),
        (&["--network"], "--network: missing value"),
        (&["--gpus"], "--gpus: missing value"),
        (&["--gpus", "some"], "--gpus: \"some\" is not a GPU request"),
        (&["--gpus", "0"], "--gpus: 0 GPUs"),
        (&["-v"], "-v: missing value"),
        (&["-v", "/models"], "-v \"/models\": \"/models\" must be SOURCE:TARGET"),
        (&["--volume=/a:b"], "--volume \"/a:b\""),
        (&["-v", "/a:/b:z"], "mode \"z\""),
        (&["--shm-size", "big"], "--shm-size: \"big\" is not a size"),
        (&["--shm-size=0"], "--shm-size: \"0\": a size must be greater than zero"),
        (&["-m", "1.1"], "-m: \"1.1\" is not a whole number of bytes"),
        (&["--memory"], "--memory: missing value"),
        (&["-e", "HOME"], "-e \"HOME\": give the value as KEY=VALUE"),
        (&["--env=PATH"], "--env \"PATH\": give the value as KEY=VALUE"),
        (&["-e", "=x"], "the variable name is empty"),
        (&["--entrypoint="], "--entrypoint: must not be empty"),
        (&["--ipc", "host"], "--ipc is not supported"),
        (&["--ipc=host"], "--ipc is not supported"),
        (&["--name", "x"], "--name is not supported: llamactl names its containers itself"),
        (&["--name=x"], "--name is not supported"),
        (&["--privileged"], "unsupported docker run argument \"--privileged\" (supported: --rm"),
        (&["-p", "8080:8080"], "unsupported docker run argument \"-p\""),
        (&["--cpus=2"], "unsupported docker run argument \"--cpus=2\""),
        (&["-vfoo"], "unsupported docker run argument \"-vfoo\""),
        (&["ghcr.io/ggml-org/llama.cpp:server"], "unexpected argument \"ghcr.io/ggml-org/llama.cpp:server\""),
        (&["--rm", "run"], "unexpected argument \"run\""),
    ];
    for (list, expected) in cases {
        let err = run_err(list);
        assert!(err.contains(expected), "{list:?}: {err}");
    }
    let err = run_err(&["--privileged"]);
    for flag in ["--network", "--gpus", "-v/--volume", "--shm-size", "-m/--memory", "-e/--env"] {
        assert!(err.contains(flag), "the list of supported arguments names {flag}: {err}");
    }
    assert!(run_err(&["image"]).contains("supported: "), "positional arguments list them too");
}
