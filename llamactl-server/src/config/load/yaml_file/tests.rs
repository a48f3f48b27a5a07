use std::path::PathBuf;

use crate::config::Config;
use crate::config::load::ConfigError;
use crate::config::load::test_support::load_file;

#[test]
fn syntax_errors_and_non_mappings_name_the_file() {
    for text in ["server: [unclosed\n", "- a\n- b\n", "just text\n", "a: 1\na: 2\n"] {
        let (_dir, path, result) = load_file(text, &[]);
        let err = result.unwrap_err();
        assert!(matches!(err, ConfigError::Yaml { .. }), "{text}: {err:?}");
        assert!(err.to_string().contains(&path.display().to_string()), "{err}");
    }
}

#[test]
fn empty_file_and_empty_values_mean_defaults() {
    for text in ["", "# only a comment\n", "server:\nbackends:\n  llama-cpp:\n    command:\n"] {
        let (_dir, path, result) = load_file(text, &[]);
        let config = result.unwrap().config;
        let origin = config.origin.clone().expect("the file is the origin");
        assert_eq!((origin.path, origin.text.as_str()), (path, text));
        assert_eq!(Config { origin: None, ..config }, Config::default(), "{text:?}");
    }
}

#[test]
fn older_go_keys_that_matter_give_warnings() {
    let text = "instances:\n  auto_create_dirs: false\n  configs_dir: /a\n  instances_dir: /b\nauth:\n  inference_keys: [sk-1]\n";
    let (_dir, _path, result) = load_file(text, &[("LLAMACTL_INFERENCE_KEYS", "sk-2")]);
    let loaded = result.unwrap();
    assert_eq!(loaded.config.instances.instances_dir, Some(PathBuf::from("/b")));
    let warnings = loaded.warnings.join("\n");
    for word in ["auto_create_dirs", "configs_dir", "auth.inference_keys", "LLAMACTL_INFERENCE_KEYS"] {
        assert!(warnings.contains(word), "{word}: {warnings}");
    }
}

#[test]
fn yaml_anchors_and_merge_keys() {
    let text = "backends:\n  llama-cpp: &base\n    args: [--a]\n    environment: {X: '1'}\n  vllm:\n    <<: *base\n    command: vllm\n";
    let (_dir, _path, result) = load_file(text, &[]);
    let c = result.unwrap().config;
    assert_eq!(c.backends.vllm.args, ["--a"]);
    assert_eq!(c.backends.vllm.command.as_deref(), Some("vllm"));
    assert_eq!(c.backends.vllm.environment, c.backends.llama_cpp.environment);
}
