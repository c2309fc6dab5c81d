//! `.sops.yaml` creation rules (recipients and crypt rule for a path) and `load_env`.

mod secrets_support;

use std::path::Path;

use deployer::secrets::{self, CryptRule, SecretsError};
use secrets_support::*;

const R0: &str = "age1yt3tfqlfrwdwx0z0ynwplcr6qxcxfaqycuprpmy89nr83ltx74tqdpszlw";
const R1: &str = "age1tmaae3ld5vpevmsh5yacsauzx8jetg300mpvc4ugp5zr5l6ssq9sla97ep";

fn config(dir: &Path, yaml: &str) -> std::path::PathBuf {
    let p = dir.join(".sops.yaml");
    std::fs::write(&p, yaml).unwrap();
    p
}

#[test]
fn vector_rules_pick_recipients_by_path() {
    let gen = vectors().join("generated");
    let cfg = gen.join(".sops.yaml");
    assert_eq!(
        secrets::recipients_for(&cfg, &gen.join("credentials/test.enc.env")).unwrap(),
        [R0, R1]
    );
    assert_eq!(
        secrets::recipients_for(&cfg, &gen.join("credentials/common.enc.env")).unwrap(),
        [R0]
    );
    let rule = secrets::creation_rule_for(&cfg, &gen.join("credentials/maconly.enc.env")).unwrap();
    assert!(rule.policy.mac_only_encrypted);
    assert!(
        matches!(&rule.policy.rule, CryptRule::EncryptedRegex(r) if r.as_str() == "^(TF_VAR_|AWS_SECRET_)")
    );
    let err = secrets::recipients_for(&cfg, &gen.join("other/x.env")).unwrap_err();
    assert!(matches!(err, SecretsError::NoCreationRule { .. }), "{err}");
    let err = secrets::recipients_for(
        &gen.join("shamir.sops.yaml"),
        &gen.join("credentials/test.enc.env"),
    )
    .unwrap_err();
    assert!(matches!(err, SecretsError::ShamirKeyGroups { .. }), "{err}");
}

#[test]
fn relative_paths_lists_single_key_group_and_catch_all() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        &format!(
            "creation_rules:\n  - path_regex: ^prod/\n    age:\n      - {R1}\n  - path_regex: ^grouped/\n    key_groups:\n      - age: [{R0}, {R1}]\n  - age: '{R0}, '\n"
        ),
    );
    assert_eq!(
        secrets::recipients_for(&cfg, &dir.path().join("prod/a.enc.env")).unwrap(),
        [R1]
    );
    assert_eq!(
        secrets::recipients_for(&cfg, &dir.path().join("grouped/a.enc.env")).unwrap(),
        [R0, R1]
    );
    assert_eq!(
        secrets::recipients_for(&cfg, &dir.path().join("x/prod/a.enc.env")).unwrap(),
        [R0]
    );
}

/// Says whether an error is the expected variant.
type ErrorCheck = fn(&SecretsError) -> bool;

#[test]
fn bad_configs_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.enc.env");
    let cases: [(&str, ErrorCheck); 6] = [
        ("creation_rules: [", |e| {
            matches!(e, SecretsError::SopsConfig { .. })
        }),
        ("stores: {}\n", |e| {
            matches!(e, SecretsError::SopsConfig { .. })
        }),
        (
            "creation_rules:\n  - pgp: FBC7B9E2A4F9289AC0C1D4843D16CEE4A27381B4\n",
            |e| matches!(e, SecretsError::NoAgeInRule { .. }),
        ),
        ("creation_rules:\n  - path_regex: '('\n    age: x\n", |e| {
            matches!(e, SecretsError::SopsConfig { .. })
        }),
        ("creation_rules:\n  - age: age1pq1qqqqqq\n", |e| {
            matches!(e, SecretsError::PostQuantumAge { .. })
        }),
        ("creation_rules:\n  - age: age1yubikey1qqqqqq\n", |e| {
            matches!(e, SecretsError::PluginAge { .. })
        }),
    ];
    for (yaml, check) in cases {
        let cfg = config(dir.path(), yaml);
        let err = secrets::recipients_for(&cfg, &file).unwrap_err();
        assert!(check(&err), "{yaml}: {err}");
    }
    let err = secrets::recipients_for(&dir.path().join("missing.yaml"), &file).unwrap_err();
    assert!(matches!(err, SecretsError::Read { .. }));
}

#[test]
fn load_env_env_wins_and_missing_env_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let r = [R0.to_owned()];
    std::fs::write(
        dir.path().join("common.enc.env"),
        secrets::encrypt_dotenv("SHARED=1\nOVERRIDE=common\n", &r).unwrap(),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("prod.enc.env"),
        secrets::encrypt_dotenv("OVERRIDE=prod\nONLY_PROD=x\n", &r).unwrap(),
    )
    .unwrap();
    let s = secrets::load_env(dir.path(), "prod", &one_id(0)).unwrap();
    assert_eq!(
        s.names().collect::<Vec<_>>(),
        ["SHARED", "OVERRIDE", "ONLY_PROD"]
    );
    assert_eq!(s.get("OVERRIDE"), Some("prod"));

    let err = secrets::load_env(dir.path(), "staging", &one_id(0)).unwrap_err();
    assert!(matches!(err, SecretsError::MissingEnvFile { .. }));
    assert!(err.to_string().contains("staging.enc.env"), "{err}");
    let err = secrets::load_env(dir.path(), "../prod", &one_id(0)).unwrap_err();
    assert!(matches!(err, SecretsError::InvalidEnvName { .. }));

    // Without a common file the env file alone is used.
    std::fs::remove_file(dir.path().join("common.enc.env")).unwrap();
    let s = secrets::load_env(dir.path(), "prod", &one_id(0)).unwrap();
    assert_eq!(s.len(), 2);
    // A bad common file is not silently skipped.
    std::fs::write(dir.path().join("common.enc.env"), "A=1\n").unwrap();
    let err = secrets::load_env(dir.path(), "prod", &one_id(0)).unwrap_err();
    assert!(matches!(err, SecretsError::NotEncrypted { .. }));
}
