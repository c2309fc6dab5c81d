//! The command line itself: every command of the brief exists, and usage mistakes exit 2.

use assert_cmd::Command;

fn deployer() -> Command {
    Command::cargo_bin("deployer").unwrap()
}

#[test]
fn every_command_exists() {
    let out = deployer().arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for cmd in [
        "bootstrap",
        "init",
        "plan",
        "apply",
        "destroy",
        "output",
        "deploy",
        "check",
        "stop",
        "start",
        "state",
        "ssh",
        "up",
        "down",
        "verify",
        "status",
        "logs",
        "db",
        "reboot-test",
        "secrets",
    ] {
        assert!(
            help.lines()
                .any(|l| l.trim_start().starts_with(&format!("{cmd} "))),
            "{cmd} missing from:\n{help}"
        );
    }
    for (group, subs) in [
        ("db", &["stop", "start"][..]),
        ("secrets", &["edit", "show", "init"][..]),
    ] {
        let out = deployer().args([group, "--help"]).output().unwrap();
        let help = String::from_utf8(out.stdout).unwrap();
        for s in subs {
            assert!(help.contains(&format!("  {s} ")), "{group} {s} in:\n{help}");
        }
    }
}

#[test]
fn usage_mistakes_exit_2() {
    for args in [
        &["deploy"][..],
        &["nope", "test"],
        &["reboot-test", "test", "--how", "unplug"],
        &["logs", "test"],
        &["--ssh-port", "notaport", "status", "test"],
        &["db", "pause", "preprod"],
    ] {
        let out = deployer().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!out.stderr.is_empty());
    }
}
