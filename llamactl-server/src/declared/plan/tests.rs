use std::path::PathBuf;

use serde_json::json;

use super::*;
use crate::declared::templates::resolve;

fn options(value: Value) -> InstanceOptions {
    InstanceOptions::from_json_value(&value).unwrap()
}

fn declared(file: &str, value: Value) -> Declared {
    let merged = resolve(&BTreeMap::new(), "x", &value).unwrap();
    let mut options = options(merged.value.clone());
    options.declared_in = Some(file.to_owned());
    Declared { file: PathBuf::from(file), spec: value, merged, options }
}

fn current(value: Value, declared_in: Option<&str>, running: bool) -> Current {
    let mut options = options(value);
    options.declared_in = declared_in.map(str::to_owned);
    Current { options: Some(options), declared_in: declared_in.map(str::to_owned), running }
}

fn name(n: &str) -> InstanceName {
    n.parse().unwrap()
}

fn llama(ctx: u32) -> Value {
    json!({"backend_type": "llama_cpp", "backend_options": {"model": "/m.gguf", "ctx_size": ctx}})
}

#[test]
fn each_declared_instance_gets_its_action() {
    let mut described = llama(512);
    described["description"] = json!("the small one");
    let now = BTreeMap::from([
        (name("ctx"), current(llama(512), Some("/c.yaml"), true)),
        (name("desc"), current(llama(512), Some("/c.yaml"), true)),
        (name("same"), current(llama(512), Some("/c.yaml"), true)),
        (name("stopped"), current(llama(512), Some("/c.yaml"), false)),
        (name("gone"), current(llama(512), Some("/old.yaml"), true)),
        (name("mine"), current(llama(512), None, true)),
    ]);
    let wanted = BTreeMap::from([
        (name("ctx"), declared("/c.yaml", llama(1024))),
        (name("desc"), declared("/c.yaml", described)),
        (name("same"), declared("/c.yaml", llama(512))),
        (name("stopped"), declared("/c.yaml", llama(2048))),
        (name("new"), declared("/c.yaml", llama(512))),
    ]);
    let plan = plan_instances(&now, &wanted).unwrap();
    let actions: Vec<(&str, Action)> = plan.iter().map(|p| (p.name.as_str(), p.action)).collect();
    assert_eq!(
        actions,
        [
            ("ctx", Action::UpdateRestart),
            ("desc", Action::UpdateNoRestart),
            ("gone", Action::Delete),
            ("new", Action::Create),
            ("same", Action::Unchanged),
            ("stopped", Action::UpdateNoRestart),
        ],
        "the API's instance `mine` is not in the plan"
    );
    assert_eq!(plan[0].changes, ["backend_options.ctx_size"]);
    assert_eq!(plan[1].changes, ["description"]);
    assert_eq!(plan[2].file, "/old.yaml");
}

#[test]
fn a_declared_name_taken_by_an_api_instance_fails_the_plan() {
    let now = BTreeMap::from([(name("mine"), current(llama(512), None, false))]);
    let wanted = BTreeMap::from([(name("mine"), declared("/c.yaml", llama(512)))]);
    let error = plan_instances(&now, &wanted).unwrap_err();
    assert_eq!(error, PlanError::TakenByApi { name: "mine".into(), file: "/c.yaml".into() });
    assert!(error.to_string().contains("created over the API"));
}

#[test]
fn a_setting_is_live_exactly_where_the_reload_takes_it() {
    let old = Config::default();
    let mut new = Config::default();
    new.server.host = "0.0.0.0".into();
    new.config.watch = true;
    new.instances.definitions_dir = Some("/d".into());
    new.instances.port_range = [7000, 7100];
    new.backends.llama_cpp.command = Some("/opt/llama-server".into());
    new.backends.llama_cpp.docker.image = Some("mine".into());
    new.auth.management_keys = vec!["k".into()];
    new.templates.insert("t".into(), json!({"group": "g"}));
    let plan = plan_settings(&old, &new);
    let effects: Vec<(&str, Effect)> = plan.iter().map(|p| (p.key.as_str(), p.effect)).collect();
    assert_eq!(
        effects,
        [
            ("auth.management_keys", Effect::NeedsServerRestart),
            ("backends.llama-cpp.command", Effect::AppliedLive),
            ("backends.llama-cpp.docker.image", Effect::NeedsServerRestart),
            ("config.watch", Effect::AppliedLive),
            ("instances.definitions_dir", Effect::AppliedLive),
            ("instances.port_range", Effect::AppliedLive),
            ("server.host", Effect::NeedsServerRestart),
        ],
        "templates are planned through the instances that extend them"
    );
}

#[test]
fn changed_paths_go_down_objects_and_take_lists_whole() {
    let a = json!({"a": {"b": 1, "c": [1, 2]}, "d": 1});
    let b = json!({"a": {"b": 1, "c": [1, 3], "e": true}});
    assert_eq!(changed_paths(&a, &b), ["a.c", "a.e", "d"]);
    assert!(changed_paths(&a, &a).is_empty());
}
