//! The Terraform runner against the real `terraform` binary and a real S3 server (moto):
//! init with the S3 backend and lock file, apply, output parsing, the lock held by someone
//! else, the database toggle, destroy. The env is the test-only fixture (builtin resources).

mod common;

use common::moto::Moto;
use deployer::contract::{state_key, STATE_BUCKET, TF_OUTPUTS};
use deployer::credentials::Creds;
use deployer::progress::Step;
use deployer::redact::Redactor;
use deployer::terraform::Terraform;

fn creds() -> Creds {
    let mut pairs: Vec<(String, String)> = deployer::contract::COMMON_CREDENTIALS
        .iter()
        .chain(deployer::contract::ENV_CREDENTIALS)
        .map(|n| (n.to_string(), format!("fake-{n}")))
        .collect();
    for (k, v) in pairs.iter_mut() {
        match k.as_str() {
            "OPERATOR_CIDRS" => *v = "203.0.113.7/32,198.51.100.0/24".into(),
            "AWS_ACCESS_KEY_ID" => *v = "test-access".into(),
            "AWS_SECRET_ACCESS_KEY" => *v = "test-secret-key-value".into(),
            "BASE_DOMAIN" => *v = "example.test".into(),
            _ => {}
        }
    }
    Creds::from_pairs(pairs)
}

fn terraform(dir: &std::path::Path, moto: &Moto, extra: &[&str]) -> Terraform {
    common::require_tool("terraform", "Terraform 1.11.4: /usr/local/bin/terraform");
    let c = creds();
    let redactor = Redactor::new(c.values());
    Terraform::new(dir, c.terraform_env("fixture").unwrap(), redactor)
        .with_backend_config(&[
            format!("endpoints={{s3=\"{}\"}}", moto.endpoint()),
            "key=fixture/terraform.tfstate".into(),
        ])
        .with_args(extra.iter().map(|s| s.to_string()))
}

#[test]
fn init_apply_output_destroy_against_s3() {
    let moto = Moto::start();
    moto.create_bucket(STATE_BUCKET);
    let tmp = tempfile::tempdir().unwrap();
    common::copy_dir(&common::fixture("tf-env"), tmp.path());

    let tf = terraform(tmp.path(), &moto, &[]);
    let step = Step::start("version");
    let v = tf.check_version(&step).unwrap();
    assert!(v >= semver::Version::new(1, 11, 4));
    step.done();

    let step = Step::start("init");
    tf.init(&step).unwrap();
    let step2 = Step::start("apply");
    tf.apply(&step2).unwrap();
    step.done();
    step2.done();
    assert!(
        moto.keys(STATE_BUCKET).contains(&state_key("fixture")),
        "state written to S3: {:?}",
        moto.keys(STATE_BUCKET)
    );
    // The lock file is gone once apply is over.
    assert!(!moto
        .keys(STATE_BUCKET)
        .iter()
        .any(|k| k.ends_with(".tflock")));

    let step = Step::start("output");
    let raw = tf.output_json(&step).unwrap();
    for name in TF_OUTPUTS {
        assert!(raw.contains(&format!("\"{name}\"")), "{name} in {raw}");
    }
    let out = tf.outputs(&step).unwrap();
    step.done();
    assert_eq!(out.public_ipv4, "127.0.0.1");
    assert_eq!(out.api_domain, "api.fixture.example.test");
    let db = out.database.as_ref().expect("database on by default");
    assert_eq!(db.port, 20184);
    // TF_VAR_operator_cidrs went through as a JSON list of two.
    assert_eq!(db.password, "fixture-db-password-2");

    // Database off: db_* outputs become null and parse as "no database".
    let off = terraform(tmp.path(), &moto, &["-var", "database_enabled=false"]);
    let step = Step::start("db off");
    off.apply(&step).unwrap();
    assert!(off.outputs(&step).unwrap().database.is_none());
    step.done();

    let step = Step::start("destroy");
    tf.destroy(&step).unwrap();
    step.done();
    let state = moto.get(STATE_BUCKET, &state_key("fixture"));
    let state: serde_json::Value = serde_json::from_str(&state).unwrap();
    assert_eq!(state["resources"].as_array().unwrap().len(), 0, "{state}");
}

#[test]
fn a_held_lock_stops_apply_with_a_clear_error() {
    let moto = Moto::start();
    moto.create_bucket(STATE_BUCKET);
    let tmp = tempfile::tempdir().unwrap();
    common::copy_dir(&common::fixture("tf-env"), tmp.path());
    let tf = terraform(tmp.path(), &moto, &["-lock-timeout=0s"]);
    let step = Step::start("init");
    tf.init(&step).unwrap();
    step.done();
    // Someone else's apply holds the S3 lock file.
    let lock = format!("{}.tflock", state_key("fixture"));
    moto.put(
        STATE_BUCKET,
        &lock,
        r#"{"ID":"3f1b2a6e-1111-2222-3333-444455556666","Operation":"OperationTypeApply","Info":"","Who":"someone@else","Version":"1.11.4","Created":"2026-01-01T00:00:00Z","Path":"accoreboot-tfstate/fixture/terraform.tfstate"}"#,
    );
    let step = Step::start("apply while locked");
    let err = tf.apply(&step).unwrap_err().to_string();
    drop(step);
    assert!(err.contains("terraform apply failed"), "{err}");
    assert!(err.to_lowercase().contains("lock"), "{err}");
    assert!(err.contains("Next:"), "{err}");
    assert!(!err.contains("test-secret-key-value"), "{err}");
    moto.delete(STATE_BUCKET, &lock);
    let step = Step::start("apply after unlock");
    tf.apply(&step).unwrap();
    step.done();
}

#[test]
fn missing_bucket_fails_init_with_next_step() {
    let moto = Moto::start();
    let tmp = tempfile::tempdir().unwrap();
    common::copy_dir(&common::fixture("tf-env"), tmp.path());
    let tf = terraform(tmp.path(), &moto, &[]);
    let step = Step::start("init without bucket");
    let err = tf.init(&step).unwrap_err().to_string();
    drop(step);
    assert!(err.contains("terraform init failed"), "{err}");
    assert!(err.contains("bootstrap"), "{err}");
}

#[test]
fn malformed_outputs_are_refused() {
    // A root whose outputs break the contract: one missing, one of the wrong type.
    let moto = Moto::start();
    moto.create_bucket(STATE_BUCKET);
    let tmp = tempfile::tempdir().unwrap();
    common::copy_dir(&common::fixture("tf-env"), tmp.path());
    let main = std::fs::read_to_string(tmp.path().join("main.tf")).unwrap();
    let main = main
        .replace("output \"ssh_user\" { value = var.fixture_ssh_user }\n", "")
        .replace(
            "output \"db_port\" { value = local.db ? 20184 : null }",
            "output \"db_port\" { value = local.db ? [1] : null }",
        );
    std::fs::write(tmp.path().join("main.tf"), main).unwrap();
    let tf = terraform(tmp.path(), &moto, &[]);
    let step = Step::start("apply broken root");
    tf.init(&step).unwrap();
    tf.apply(&step).unwrap();
    let err = tf.outputs(&step).unwrap_err().to_string();
    drop(step);
    assert!(err.contains("ssh_user"), "{err}");
}
