use serde_json::json;

use super::*;

fn templates(pairs: &[(&str, Value)]) -> BTreeMap<String, Value> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
}

#[test]
fn later_templates_and_the_instance_win_objects_merge_lists_replace() {
    let t = templates(&[
        (
            "a",
            json!({"backend_type": "llama_cpp", "backend_options": {"ctx_size": 1, "threads": 1}, "nodes": ["x", "y"], "environment": {"A": "a"}}),
        ),
        ("b", json!({"backend_options": {"ctx_size": 2}, "nodes": ["z"], "environment": {"B": "b"}})),
    ]);
    let spec = json!({"extends": ["a", "b"], "backend_options": {"threads": 3}, "environment": {"A": "own"}});
    let merged = resolve(&t, "i", &spec).unwrap();
    assert_eq!(
        merged.value,
        json!({
            "backend_type": "llama_cpp",
            "backend_options": {"ctx_size": 2, "threads": 3},
            "nodes": ["z"],
            "environment": {"A": "own", "B": "b"},
            "extends": ["a", "b"],
        })
    );
    let origin = |p: &str| merged.origins[p].as_str();
    assert_eq!(origin("backend_type"), "a");
    assert_eq!(origin("backend_options.ctx_size"), "b");
    assert_eq!(origin("backend_options.threads"), OWN);
    assert_eq!(origin("nodes"), "b", "a list is one value, replaced whole");
    assert_eq!(origin("environment.A"), OWN);
    assert_eq!(origin("environment.B"), "b");
    assert!(!merged.origins.contains_key("extends"));
}

#[test]
fn templates_extend_templates_deepest_first_and_one_name_is_a_list_of_one() {
    let t = templates(&[
        ("root", json!({"backend_type": "vllm", "idle_timeout": 5, "max_restarts": 1})),
        ("mid", json!({"extends": "root", "idle_timeout": 10})),
    ]);
    let merged = resolve(&t, "i", &json!({"extends": "mid", "max_restarts": 4})).unwrap();
    assert_eq!(merged.value["idle_timeout"], 10);
    assert_eq!(merged.value["max_restarts"], 4);
    assert_eq!(merged.value["backend_type"], "vllm");
    assert_eq!(merged.origins["backend_type"], "root");
    assert_eq!(merged.origins["idle_timeout"], "mid");
    assert_eq!(merged.value["extends"], "mid", "extends is kept as the instance wrote it");
}

#[test]
fn a_scalar_over_an_object_forgets_the_objects_origins() {
    let t = templates(&[("a", json!({"docker": {"image": "x", "volumes": ["/m:/m"]}}))]);
    let merged = resolve(&t, "i", &json!({"extends": ["a"], "docker": null})).unwrap();
    assert_eq!(merged.value["docker"], Value::Null);
    assert_eq!(merged.origins.keys().collect::<Vec<_>>(), ["docker"]);
    assert_eq!(merged.origins["docker"], OWN);
}

#[test]
fn a_cycle_is_refused_naming_the_chain() {
    let t = templates(&[
        ("a", json!({"extends": ["b"]})),
        ("b", json!({"extends": ["c"]})),
        ("c", json!({"extends": ["a"]})),
    ]);
    let error = resolve(&t, "inst", &json!({"extends": ["a"]})).unwrap_err();
    assert_eq!(error, TemplateError::Cycle { chain: "inst -> a -> b -> c -> a".into() });
    assert_eq!(error.to_string(), "extends: the templates form a cycle: inst -> a -> b -> c -> a");
    let selfish = templates(&[("a", json!({"extends": "a"}))]);
    assert!(matches!(resolve(&selfish, "i", &json!({"extends": "a"})), Err(TemplateError::Cycle { .. })));
}

#[test]
fn an_unknown_template_is_refused_naming_the_chain() {
    let t = templates(&[("a", json!({"extends": ["gone"]}))]);
    let error = resolve(&t, "inst", &json!({"extends": ["a"]})).unwrap_err();
    assert_eq!(error.to_string(), "extends: unknown template `gone` (inst -> a -> gone)");
}

#[test]
fn a_diamond_is_not_a_cycle() {
    let t = templates(&[
        ("base", json!({"backend_type": "vllm"})),
        ("l", json!({"extends": "base", "group": "l"})),
        ("r", json!({"extends": "base", "group": "r"})),
    ]);
    let merged = resolve(&t, "i", &json!({"extends": ["l", "r"]})).unwrap();
    assert_eq!(merged.value["group"], "r");
}

#[test]
fn bad_shapes_name_where() {
    let t = templates(&[("a", json!(["not", "a", "mapping"]))]);
    let error = resolve(&t, "i", &json!({"extends": ["a"]})).unwrap_err();
    assert_eq!(error.to_string(), "templates.a: expected a mapping of options");
    let error = resolve(&t, "i", &json!({"extends": 3})).unwrap_err();
    assert_eq!(error.to_string(), "extends: expected a list of template names");
}

#[test]
fn no_extends_is_the_spec_itself() {
    let spec = json!({"backend_type": "vllm", "backend_options": {"model": "m"}});
    let merged = resolve(&BTreeMap::new(), "i", &spec).unwrap();
    assert_eq!(merged.value, spec);
    assert!(merged.origins.values().all(|o| o == OWN));
}

#[test]
fn origins_of_stored_options_credit_values_equal_to_the_templates() {
    let t =
        templates(&[("a", json!({"backend_type": "llama_cpp", "backend_options": {"ctx_size": 4096, "threads": 2}}))]);
    let stored = json!({"extends": ["a"], "backend_type": "llama_cpp", "backend_options": {"ctx_size": 8192, "threads": 2, "model": "/m.gguf"}});
    let origins = origins_of_merged(&t, "i", &stored);
    assert_eq!(origins["backend_type"], "a");
    assert_eq!(origins["backend_options.threads"], "a");
    assert_eq!(origins["backend_options.ctx_size"], OWN);
    assert_eq!(origins["backend_options.model"], OWN);
    assert!(!origins.contains_key("extends"));
}
