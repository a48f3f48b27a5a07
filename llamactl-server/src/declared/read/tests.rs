use std::fs;

use serde_json::json;

use super::*;

fn no_env(_: &str) -> Option<String> {
    None
}

fn config_of(yaml: &str) -> (tempfile::TempDir, PathBuf, Config) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("llamactl.yaml");
    fs::write(&path, yaml).unwrap();
    let config = crate::config::load(Some(&path)).unwrap().config;
    (dir, path, config)
}

fn read(config: &Config) -> Result<BTreeMap<InstanceName, Declared>, DeclarationError> {
    let origin = config.origin.as_ref().map(|o| (o.path.as_path(), o.text.as_str()));
    read_declarations(config, origin, &no_env)
}

const TWO: &str = "\
templates:
  small:
    backend_type: llama_cpp
    backend_options:
      ctx_size: 512
      threads: 1
instances:
  definitions:
    a:
      extends: [small]
      description: first
      backend_options:
        model: /a.gguf
    b:
      backend_type: mlx_lm
      backend_options:
        model: /b
";

#[test]
fn definitions_are_merged_checked_and_marked_with_their_file() {
    let (_dir, path, config) = config_of(TWO);
    let declared = read(&config).unwrap();
    assert_eq!(declared.len(), 2);
    let a = &declared[&"a".parse::<InstanceName>().unwrap()];
    assert_eq!(a.file, path);
    assert_eq!(a.options.declared_in.as_deref(), Some(path.to_str().unwrap()));
    assert_eq!(a.options.description.as_deref(), Some("first"));
    assert_eq!(a.options.extends, ["small"]);
    assert_eq!(
        a.options.to_json_value()["backend_options"],
        json!({"model": "/a.gguf", "ctx_size": 512, "threads": 1})
    );
    assert_eq!(a.merged.origins["backend_options.ctx_size"], "small");
}

#[test]
fn a_bad_value_names_the_file_line_and_key() {
    let (_dir, path, config) = config_of(&TWO.replace("model: /b", "model: /b\n        port: many"));
    let error = read(&config).unwrap_err();
    assert_eq!(error.file.as_deref(), Some(path.as_path()));
    assert_eq!(error.key, "instances.definitions.b.backend_options.port");
    assert_eq!(error.line, Some(18), "{error}");
    let text = error.to_string();
    assert!(
        text.starts_with(&format!("{}:18: instances.definitions.b.backend_options.port: ", path.display())),
        "{text}"
    );
}

#[test]
fn a_bad_value_from_a_template_is_reported_at_the_template() {
    let (_dir, _path, config) = config_of(&TWO.replace("threads: 1", "threads: lots"));
    let error = read(&config).unwrap_err();
    assert_eq!(error.key, "templates.small.backend_options.threads");
    assert_eq!(error.line, Some(6));
    assert!(error.message.contains("from template small, extended by a"), "{error}");
}

#[test]
fn an_unknown_option_and_a_template_cycle_are_refused_by_name() {
    let (_dir, _path, config) = config_of(&TWO.replace("description: first", "descripton: first"));
    let error = read(&config).unwrap_err();
    assert_eq!(error.key, "instances.definitions.a.descripton");
    assert!(error.message.contains("did you mean \"description\""), "{error}");
    let cyclic = TWO
        .replace("    backend_type: llama_cpp\n", "    backend_type: llama_cpp\n    extends: [loop]\n")
        .replace("templates:\n", "templates:\n  loop:\n    extends: [small]\n");
    let (_dir, _path, config) = config_of(&cyclic);
    let error = read(&config).unwrap_err();
    assert_eq!(error.key, "instances.definitions.a.extends");
    assert!(error.message.contains("a -> small -> loop -> small"), "{error}");
}

#[test]
fn a_folder_of_files_adds_instances_and_a_name_declared_twice_is_refused() {
    let (dir, _path, mut config) = config_of(TWO);
    let folder = dir.path().join("defs");
    fs::create_dir(&folder).unwrap();
    fs::write(folder.join("c.yaml"), "c:\n  backend_type: vllm\n  backend_options:\n    model: m\n").unwrap();
    fs::write(folder.join("notes.txt"), "not yaml: [").unwrap();
    config.instances.definitions_dir = Some(folder.clone());
    let declared = read(&config).unwrap();
    assert_eq!(declared.keys().map(|k| k.as_str()).collect::<Vec<_>>(), ["a", "b", "c"]);
    assert_eq!(declared[&"c".parse::<InstanceName>().unwrap()].file, folder.join("c.yaml"));

    fs::write(folder.join("d.yaml"), "a:\n  backend_type: vllm\n  backend_options:\n    model: m\n").unwrap();
    let error = read(&config).unwrap_err();
    assert!(error.to_string().contains("is declared twice"), "{error}");
    assert_eq!(error.file, Some(folder.join("d.yaml")));

    fs::write(folder.join("d.yaml"), "a: [broken\n").unwrap();
    let error = read(&config).unwrap_err();
    assert_eq!(error.file, Some(folder.join("d.yaml")));
    assert!(error.message.starts_with("invalid YAML"), "{error}");
    assert!(error.line.is_some(), "{error}");
}

#[test]
fn declared_in_cannot_be_written_in_a_file() {
    let (_dir, _path, config) = config_of(&TWO.replace("description: first", "declared_in: /elsewhere"));
    let error = read(&config).unwrap_err();
    assert_eq!(error.key, "instances.definitions.a.declared_in");
}
