//! What the command does without a server: help, completion scripts, usage errors and an
//! unreachable server. (Every command against a real server: tests/tests/cli.rs.)
#![allow(clippy::unwrap_used)]

use std::process::Command;

fn llamactl(args: &[&str]) -> std::process::Output {
    let home = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_llamactl")).args(args).env_clear().env("HOME", home.path()).output().unwrap()
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

#[test]
fn unreachable_server_exits_3_with_one_clear_line() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let out = llamactl(&["--server", &format!("http://127.0.0.1:{port}"), "instance", "list"]);
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        stderr,
        format!(
            "error: cannot list instances: cannot reach http://127.0.0.1:{port}: Connection refused (os error 111) \
             (is llamactl-server running? set --server or LLAMACTL_SERVER)\n"
        )
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["instance", "frobnicate"][..],
        &["instance", "show"],
        &["-o", "xml", "instance", "ls"],
        &["key", "show", "not-a-number"],
        &["key", "create", "k", "--all", "--instance", "a"],
        &["completion", "tcsh"],
        &["top", "--interval", "0"],
        &["activity", "--status", "ok"],
        &["inflight", "cancel", "first"],
    ] {
        let out = llamactl(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8(out.stderr).unwrap().starts_with("error: "), "{args:?}");
    }
}

/// Every command's help shows at least one example.
#[test]
fn every_command_has_an_example_in_its_help() {
    let commands: &[&[&str]] = &[
        &["instance", "create"],
        &["instance", "list"],
        &["instance", "show"],
        &["instance", "edit"],
        &["instance", "start"],
        &["instance", "stop"],
        &["instance", "restart"],
        &["instance", "delete"],
        &["instance", "logs"],
        &["instance", "events"],
        &["key", "create"],
        &["key", "list"],
        &["key", "show"],
        &["key", "delete"],
        &["models"],
        &["activity"],
        &["top"],
        &["inflight"],
        &["inflight", "list"],
        &["inflight", "cancel"],
        &["status"],
        &["completion"],
    ];
    for command in commands {
        let out = llamactl(&[*command, &["--help"][..]].concat());
        assert_eq!(out.status.code(), Some(0), "{command:?}");
        let help = stdout(&out);
        // An example is a line of its own: `Example: llamactl ...` or, under `Examples:`, indented.
        let example: Vec<&str> = ["llamactl"].iter().chain(command.iter()).copied().collect();
        let shown = help.lines().any(|line| {
            line.strip_prefix("Example: ")
                .or_else(|| line.strip_prefix("  "))
                .is_some_and(|l| l.split_whitespace().take(example.len()).eq(example.iter().copied()))
        });
        assert!(shown, "{command:?} has no example:\n{help}");
    }
    let top = stdout(&llamactl(&["--help"]));
    assert!(
        top.contains("Exit codes: 0 ok, 1 error from the server, 2 usage error, 3 cannot reach the server"),
        "{top}"
    );
}

#[test]
fn completion_scripts_are_printed_for_each_shell() {
    for (shell, marker) in [("bash", "complete -F"), ("zsh", "#compdef llamactl"), ("fish", "complete -c llamactl")] {
        let out = llamactl(&["completion", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let script = stdout(&out);
        assert!(script.contains(marker), "{shell}: {script}");
        assert!(script.contains("instance"), "{shell}");
    }
}

#[test]
fn a_closed_pipe_ends_the_program_quietly() {
    // Standard output is a pipe whose reading end is already closed, as in `llamactl ... | head`
    // once head has exited.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_llamactl"))
        .args(["completion", "bash"])
        .env_clear()
        .stdout(writer)
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
}
