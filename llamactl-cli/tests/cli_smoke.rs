//! The CLI's exit codes and messages when the server cannot be reached or input is wrong.
#![allow(clippy::unwrap_used)]

use std::process::Command;

fn llamactl(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_llamactl")).args(args).env_remove("LLAMACTL_SERVER").output().unwrap()
}

#[test]
fn unreachable_server_exits_3_with_one_clear_line() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let out = llamactl(&["--server", &format!("http://127.0.0.1:{port}"), "instance", "list"]);
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.starts_with("error: cannot reach"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(llamactl(&["instance", "frobnicate"]).status.code(), Some(2));
}
