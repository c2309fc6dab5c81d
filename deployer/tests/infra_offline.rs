//! Offline checks of the infrastructure code against the deployer contract
//! (`deployer::contract`): nothing here reaches a cloud, a provider registry or Docker.
//!
//! - `terraform/`: every .tf parses (hcl-rs); every environment declares the TF_VARS the
//!   deployer sets and the outputs it reads, wires the same modules, pins Terraform and its
//!   providers, uses the S3 backend with a lock file; no secret-looking literal anywhere.
//! - `compose/`: both compose files validate against the Compose specification schema
//!   (vendored in compose/schema/) after interpolation, use only the .env keys of the contract,
//!   and follow the rules (restart policies, health checks, pinned images, drain time).
//! - `compose/ingest.Dockerfile`, `compose/powersync/`, `credentials/*.example`.
//! - The tools (terraform fmt, shellcheck, caddy, cloud-init) through `scripts/check-infra
//!   --tools-only`; a missing tool fails with what to install.
//! - Each env's real backend block against a local S3 server (moto, `tests/common`): the state
//!   lands under the contract's key and a held lock file stops a second writer.
//!
//! One module per subject, in `tests/infra_offline/`: `tf`, `compose`, `dockerfile`,
//! `powersync`, `credentials`.
//!
//! Every check is a function from a directory to a list of findings, so that the broken-input
//! tests below can run it on a damaged copy and assert the finding names what is wrong.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use deployer::contract;

mod common;

/// Root of the repository (the deployer crate lives one level below it).
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("deployer/ has a parent")
        .to_path_buf()
}

/// Fails the test with every finding, one per line.
fn assert_clean(what: &str, findings: &[String]) {
    assert!(
        findings.is_empty(),
        "{what}: {} problem(s):\n  - {}",
        findings.len(),
        findings.join("\n  - ")
    );
}

/// Asserts that some finding mentions every one of `needles`.
fn assert_found(findings: &[String], needles: &[&str]) {
    assert!(
        findings
            .iter()
            .any(|f| needles.iter().all(|n| f.contains(n))),
        "expected a finding mentioning {needles:?}, got:\n  - {}",
        findings.join("\n  - ")
    );
}

/// Copies `src` into `dst` recursively (skipping .terraform caches).
fn copy_tree(src: &Path, dst: &Path) {
    fs::create_dir_all(dst).unwrap();
    for entry in fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == ".terraform" {
            continue;
        }
        let to = dst.join(&name);
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &to);
        } else {
            fs::copy(entry.path(), &to).unwrap();
        }
    }
}

/// A temp copy of the infrastructure parts of the repository.
fn scratch_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = repo_root();
    for sub in ["terraform", "compose", "credentials"] {
        copy_tree(&root.join(sub), &dir.path().join(sub));
    }
    fs::create_dir_all(dir.path().join("scripts")).unwrap();
    fs::copy(
        root.join("scripts/check-infra"),
        dir.path().join("scripts/check-infra"),
    )
    .unwrap();
    dir
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = fs::read_to_string(path).unwrap();
    assert!(
        text.contains(from),
        "{} does not contain {from:?}",
        path.display()
    );
    fs::write(path, text.replacen(from, to, 1)).unwrap();
}

#[path = "infra_offline/tf.rs"]
mod tf;

#[path = "infra_offline/compose.rs"]
mod compose;

#[path = "infra_offline/dockerfile.rs"]
mod dockerfile;

#[path = "infra_offline/powersync.rs"]
mod powersync;

#[path = "infra_offline/credentials.rs"]
mod credentials;

fn run_check_infra(root: &Path) -> (bool, String) {
    let script = repo_root().join("scripts/check-infra");
    let out = Command::new("bash")
        .arg(&script)
        .args(["--tools-only", "--root"])
        .arg(root)
        .output()
        .expect("bash runs scripts/check-infra");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

// ------------------------------------------------------------------------------------------
// The real tree passes.

#[test]
fn terraform_follows_the_deployer_contract() {
    assert_clean("terraform/", &tf::check(&repo_root()));
}

#[test]
fn compose_bundle_validates_and_follows_the_rules() {
    let env = compose::sample_env();
    assert_clean(
        "compose/docker-compose.yml",
        &compose::check(&repo_root().join("compose/docker-compose.yml"), &env, true),
    );
}

#[test]
fn dev_compose_validates_and_follows_the_rules() {
    // The dev file is used without a .env: it must work with nothing set.
    let env = BTreeMap::new();
    assert_clean(
        "compose/docker-compose.dev.yml",
        &compose::check(
            &repo_root().join("compose/docker-compose.dev.yml"),
            &env,
            false,
        ),
    );
}

#[test]
fn ingest_dockerfile_follows_the_rules() {
    assert_clean(
        "compose/ingest.Dockerfile",
        &dockerfile::check(&repo_root().join("compose/ingest.Dockerfile")),
    );
}

#[test]
fn powersync_config_follows_the_rules() {
    let root = repo_root();
    assert_clean(
        "compose/powersync",
        &powersync::check(
            &root.join("compose/powersync"),
            &root.join("compose/docker-compose.yml"),
        ),
    );
}

#[test]
fn credential_templates_match_the_contract() {
    assert_clean("credentials/*.example", &credentials::check(&repo_root()));
}

#[test]
fn compose_bundle_files_exist() {
    for f in contract::COMPOSE_BUNDLE_FILES {
        assert!(
            repo_root().join("compose").join(f).is_file(),
            "compose/{f} (contract::COMPOSE_BUNDLE_FILES) is missing"
        );
    }
}

#[test]
fn cloud_init_writes_the_marker_last() {
    let template = fs::read_to_string(
        repo_root().join("terraform/modules/compute/files/cloud-init.yaml.tftpl"),
    )
    .unwrap();
    let last_cmd = template
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with("- "))
        .unwrap_or("");
    assert!(
        last_cmd.contains("touch ${marker}"),
        "the last runcmd must write the marker, found {last_cmd:?}"
    );
    let compute =
        fs::read_to_string(repo_root().join("terraform/modules/compute/variables.tf")).unwrap();
    assert!(
        compute.contains(contract::CLOUD_INIT_MARKER),
        "modules/compute must default boot_marker to {}",
        contract::CLOUD_INIT_MARKER
    );
    assert!(
        !template.contains("get.docker.com") && !template.contains("| sh"),
        "Docker is installed from its apt repository, never curl | sh"
    );
}

#[test]
fn tools_pass_check_infra() {
    let (ok, out) = run_check_infra(&repo_root());
    assert!(ok, "scripts/check-infra --tools-only failed:\n{out}");
    assert!(out.contains("all checks passed"), "{out}");
}

// ------------------------------------------------------------------------------------------
// Broken input is caught, and the finding names what is wrong.

#[test]
fn an_env_without_a_contract_output_fails_naming_it() {
    let dir = scratch_copy();
    let outputs = dir.path().join("terraform/environments/preprod/outputs.tf");
    let text = fs::read_to_string(&outputs).unwrap();
    let start = text.find("output \"db_host\"").unwrap();
    let end = start + text[start..].find("\n}\n").unwrap() + 3;
    fs::write(&outputs, format!("{}{}", &text[..start], &text[end..])).unwrap();
    let findings = tf::check(dir.path());
    assert_found(&findings, &["environments/preprod", "output \"db_host\""]);
}

#[test]
fn an_env_without_a_tf_var_fails_naming_it() {
    let dir = scratch_copy();
    let vars = dir.path().join("terraform/environments/prod/variables.tf");
    edit(&vars, "variable \"acme_email\"", "variable \"acme_mail\"");
    let findings = tf::check(dir.path());
    assert_found(&findings, &["environments/prod", "variable \"acme_email\""]);
}

#[test]
fn a_different_module_set_fails() {
    let dir = scratch_copy();
    let main = dir.path().join("terraform/environments/test/main.tf");
    edit(&main, "module \"dns\"", "module \"dns_records\"");
    assert_found(
        &tf::check(dir.path()),
        &["environments/test", "same modules"],
    );
}

#[test]
fn an_unpinned_provider_or_version_fails() {
    let dir = scratch_copy();
    let versions = dir.path().join("terraform/environments/test/versions.tf");
    edit(&versions, "version = \"~> 3.4\"", "version = \">= 3.4\"");
    edit(
        &versions,
        "required_version = \">= 1.11.4, < 2.0.0\"",
        "required_version = \">= 1.11.0\"",
    );
    let findings = tf::check(dir.path());
    assert_found(&findings, &["environments/test", "openstack", "~>"]);
    assert_found(&findings, &["environments/test", "required_version"]);
}

#[test]
fn a_backend_without_lockfile_fails() {
    let dir = scratch_copy();
    let versions = dir.path().join("terraform/environments/prod/versions.tf");
    edit(&versions, "use_lockfile = true", "use_lockfile = false");
    edit(
        &versions,
        "key          = \"prod/terraform.tfstate\"",
        "key          = \"test/terraform.tfstate\"",
    );
    let findings = tf::check(dir.path());
    assert_found(&findings, &["environments/prod", "use_lockfile"]);
    assert_found(
        &findings,
        &["environments/prod", "key", "prod/terraform.tfstate"],
    );
}

#[test]
fn a_literal_secret_fails() {
    let dir = scratch_copy();
    let vars = dir.path().join("terraform/modules/managed_db/variables.tf");
    let mut text = fs::read_to_string(&vars).unwrap();
    text.push_str(
        "\nvariable \"admin_password\" {\n  type    = string\n  default = \"hunter2-but-longer\"\n}\n",
    );
    fs::write(&vars, text).unwrap();
    let main = dir.path().join("terraform/modules/dns/main.tf");
    edit(
        &main,
        "comment = ",
        "tags    = [\"Xk9fQ2mZ7vLp4Rt8Wn3Yb6Hc1Jd5Ke0A\"]\n  comment = ",
    );
    let findings = tf::check(dir.path());
    assert_found(&findings, &["managed_db/variables.tf", "admin_password"]);
    assert_found(&findings, &["dns/main.tf", "secret-looking"]);
}

#[test]
fn a_wrong_tfvars_env_name_fails() {
    let dir = scratch_copy();
    let tfvars = dir
        .path()
        .join("terraform/environments/preprod/terraform.tfvars");
    edit(
        &tfvars,
        "env_name            = \"preprod\"",
        "env_name            = \"test\"",
    );
    assert_found(
        &tf::check(dir.path()),
        &["preprod/terraform.tfvars", "env_name"],
    );
}

#[test]
fn compose_rule_breaks_are_caught() {
    let dir = scratch_copy();
    let file = dir.path().join("compose/docker-compose.yml");
    edit(&file, "stop_grace_period: 40s", "stop_grace_period: 10s");
    edit(
        &file,
        "image: caddy:2.10.2-alpine\n    restart: unless-stopped",
        "image: caddy:latest",
    );
    edit(&file, "\"127.0.0.1:8080:8080\"", "\"8080:8080\"");
    edit(
        &file,
        "${ACME_EMAIL:?ACME_EMAIL is required}",
        "${ACME_ADDRESS:?required}",
    );
    let findings = compose::check(&file, &compose::sample_env(), true);
    assert_found(
        &findings,
        &["ingest stop_grace_period", "INGEST_SHUTDOWN_DEADLINE"],
    );
    assert_found(&findings, &["caddy", "no restart policy"]);
    assert_found(&findings, &["caddy", "not pinned"]);
    assert_found(&findings, &["8080", "127.0.0.1"]);
    assert_found(&findings, &["ACME_ADDRESS", "COMPOSE_ENV_KEYS"]);
}

#[test]
fn compose_schema_violations_are_caught() {
    let dir = scratch_copy();
    let file = dir.path().join("compose/docker-compose.yml");
    edit(
        &file,
        "    restart: unless-stopped\n    # Same uid",
        "    restart: unless-stopped\n    restart_policy_typo: yes\n    # Same uid",
    );
    edit(&file, "replicas: ${BACKEND_REPLICAS:-2}", "replicas: many");
    let findings = compose::check(&file, &compose::sample_env(), true);
    assert_found(&findings, &["compose schema", "restart_policy_typo"]);
    assert_found(&findings, &["compose schema", "replicas"]);
}

#[test]
fn compose_account_wiring_breaks_are_caught() {
    let dir = scratch_copy();
    let file = dir.path().join("compose/docker-compose.yml");
    edit(
        &file,
        "      MQTT_PASSWORD: ${BACKEND_MQTT_PASSWORD:?BACKEND_MQTT_PASSWORD is required}\n",
        "",
    );
    edit(
        &file,
        "INGEST_SERVICE_ACCOUNT: ${BACKEND_MQTT_USERNAME:?BACKEND_MQTT_USERNAME is required}",
        "INGEST_SERVICE_ACCOUNT: backend-old",
    );
    edit(
        &file,
        "INGEST_POWERSYNC_ROLE: ${POWERSYNC_DB_USER:?POWERSYNC_DB_USER is required}",
        "INGEST_POWERSYNC_ROLE: app",
    );
    edit(
        &file,
        "INGEST_SERVICE_ACCOUNT_SECRET: ${BACKEND_MQTT_PASSWORD:?BACKEND_MQTT_PASSWORD is required}",
        "INGEST_SERVICE_ACCOUNT_SECRET: hunter2-hunter2-hunter2-hunter2",
    );
    edit(
        &file,
        "      INGEST_WAL_DIR: /var/lib/ingest/wal\n",
        "      INGEST_WAL_DIR: /var/lib/ingest/wal\n      INGEST_ALLOW_ANONYMOUS: \"yes\"\n",
    );
    edit(
        &file,
        "      ingest-migrate:\n        condition: service_completed_successfully\n\n  # One-shot",
        "\n  # One-shot",
    );
    let findings = compose::check(&file, &compose::sample_env(), true);
    assert_found(&findings, &["backend has no MQTT_PASSWORD", "anonymous"]);
    assert_found(
        &findings,
        &["MQTT_USERNAME", "INGEST_SERVICE_ACCOUNT", "differ"],
    );
    assert_found(
        &findings,
        &["INGEST_SERVICE_ACCOUNT_SECRET", "never a literal"],
    );
    assert_found(
        &findings,
        &["INGEST_POWERSYNC_ROLE=\"app\"", "\"powersync\""],
    );
    assert_found(&findings, &["INGEST_ALLOW_ANONYMOUS=yes"]);
    assert_found(&findings, &["backend must depend on ingest-migrate"]);

    // Without the grant at all.
    edit(&file, "      INGEST_POWERSYNC_ROLE: app\n", "");
    let findings = compose::check(&file, &compose::sample_env(), true);
    assert_found(&findings, &["no INGEST_POWERSYNC_ROLE"]);
}

#[test]
fn compose_probe_device_wiring_breaks_are_caught() {
    let dir = scratch_copy();
    let file = dir.path().join("compose/docker-compose.yml");
    edit(
        &file,
        "INGEST_PROBE_DEVICE_SECRET: ${TEST_DEVICE_PASSWORD:?TEST_DEVICE_PASSWORD is required}",
        "INGEST_PROBE_DEVICE_SECRET: hunter2-hunter2-hunter2-hunter2",
    );
    edit(
        &file,
        "INGEST_PROBE_DEVICE: ${TEST_DEVICE_ID:?TEST_DEVICE_ID is required}",
        "INGEST_PROBE_DEVICE: ${BACKEND_MQTT_USERNAME:?required}",
    );
    let findings = compose::check(&file, &compose::sample_env(), true);
    assert_found(
        &findings,
        &[
            "INGEST_PROBE_DEVICE_SECRET must be ${TEST_DEVICE_PASSWORD",
            "never a literal",
        ],
    );
    assert_found(&findings, &["INGEST_PROBE_DEVICE must be ${TEST_DEVICE_ID"]);
    assert_found(
        &findings,
        &["probe device and the service account are both \"backend\""],
    );

    // Without the probe device at all.
    edit(
        &file,
        "      INGEST_PROBE_DEVICE: ${BACKEND_MQTT_USERNAME:?required}\n",
        "",
    );
    let findings = compose::check(&file, &compose::sample_env(), true);
    assert_found(
        &findings,
        &[
            "ingest-migrate has no INGEST_PROBE_DEVICE:",
            "deployer verify",
        ],
    );
}

#[test]
fn compose_open_files_limit_breaks_are_caught() {
    let dir = scratch_copy();
    let file = dir.path().join("compose/docker-compose.yml");
    // The limit the ingest had before the front gate (one descriptor per connection).
    edit(&file, "soft: 400000", "soft: 262144");
    let findings = compose::check(&file, &compose::sample_env(), true);
    assert_found(
        &findings,
        &[
            "nofile limit (soft 262144, hard 400000)",
            "300256",
            "3 x INGEST_MAX_CONNECTIONS 100000",
        ],
    );
    // More connections allowed than the limit covers.
    edit(&file, "soft: 262144", "soft: 400000");
    edit(
        &file,
        "INGEST_MAX_CONNECTIONS: \"100000\"",
        "INGEST_MAX_CONNECTIONS: \"200000\"",
    );
    let findings = compose::check(&file, &compose::sample_env(), true);
    assert_found(&findings, &["600256", "INGEST_MAX_CONNECTIONS 200000"]);
    edit(
        &file,
        "INGEST_MAX_CONNECTIONS: \"200000\"",
        "INGEST_MAX_CONNECTIONS: \"lots\"",
    );
    let findings = compose::check(&file, &compose::sample_env(), true);
    assert_found(
        &findings,
        &["INGEST_MAX_CONNECTIONS \"lots\" is not a number"],
    );
    // No limit at all in production.
    edit(
        &file,
        "    ulimits:\n      nofile:\n        soft: 400000\n        hard: 400000\n",
        "",
    );
    let findings = compose::check(&file, &compose::sample_env(), true);
    assert_found(&findings, &["the ingest has no ulimits: nofile"]);
}

#[test]
fn interpolation_follows_compose() {
    let env: BTreeMap<String, String> = [("A", "1"), ("EMPTY", "")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let cases = [
        ("${A}", "1"),
        ("x$A-y", "x1-y"),
        ("${B:-d}", "d"),
        ("${EMPTY:-d}", "d"),
        ("${EMPTY-d}", ""),
        ("${A:+set}", "set"),
        ("${B:+set}", ""),
        ("$${A}", "${A}"),
        ("${A:?must be set}/x", "1/x"),
    ];
    for (input, want) in cases {
        let (got, missing) = compose::interpolate(input, &env);
        assert_eq!(got, want, "{input}");
        assert!(missing.is_empty(), "{input}: {missing:?}");
    }
    let (_, missing) = compose::interpolate("${B:?required} ${C}", &env);
    assert_eq!(missing, ["B", "C"]);
}

#[test]
fn dockerfile_rule_breaks_are_caught() {
    let dir = scratch_copy();
    let file = dir.path().join("compose/ingest.Dockerfile");
    edit(&file, "USER ingest:ingest", "USER root");
    edit(
        &file,
        "FROM debian:bookworm-slim AS runtime",
        "FROM debian AS runtime",
    );
    edit(
        &file,
        "HEALTHCHECK --interval",
        "# health check removed --interval",
    );
    edit(
        &file,
        "    CMD [\"/usr/local/bin/ingest\", \"healthcheck\"]\n",
        "",
    );
    let findings = dockerfile::check(&file);
    assert_found(&findings, &["USER", "root"]);
    assert_found(&findings, &["\"debian\"", "not pinned"]);
    assert_found(&findings, &["no HEALTHCHECK"]);
}

#[test]
fn powersync_rule_breaks_are_caught() {
    let dir = scratch_copy();
    let ps = dir.path().join("compose/powersync");
    edit(
        &ps.join("config.yaml"),
        "uri: !env PS_STORAGE_URI",
        "uri: !env STORAGE_URI",
    );
    edit(
        &ps.join("sync-rules.yaml"),
        "SELECT device_id AS id,",
        "SELECT",
    );
    let findings = powersync::check(&ps, &dir.path().join("compose/docker-compose.yml"));
    assert_found(&findings, &["STORAGE_URI", "PS_*"]);
    assert_found(&findings, &["no id column"]);
}

#[test]
fn credential_template_drift_is_caught() {
    let dir = scratch_copy();
    let file = dir.path().join("credentials/env.enc.env.example");
    edit(&file, "OS_PASSWORD=\n", "OS_PASS=\n");
    let findings = credentials::check(dir.path());
    assert_found(&findings, &["env.enc.env.example", "misses OS_PASSWORD"]);
    assert_found(&findings, &["OS_PASS ", "not in the contract"]);
}

#[test]
fn check_infra_catches_bad_cloud_init_and_formatting() {
    let dir = scratch_copy();
    let tpl = dir
        .path()
        .join("terraform/modules/compute/files/cloud-init.yaml.tftpl");
    edit(
        &tpl,
        "package_update: true",
        "package_update: \"sometimes\"",
    );
    let tf = dir.path().join("terraform/modules/dns/variables.tf");
    edit(
        &tf,
        "  type        = number\n  default     = 300",
        "  type = number\n  default     = 300",
    );
    let script = dir
        .path()
        .join("terraform/modules/compute/files/mount-data.sh");
    edit(&script, "volume_id=\"$1\"", "volume_id=$1\necho $volume_id");
    let (ok, out) = run_check_infra(dir.path());
    assert!(!ok, "check-infra passed on broken input:\n{out}");
    assert!(out.contains("FAIL: cloud-init schema"), "{out}");
    assert!(out.contains("FAIL: terraform fmt"), "{out}");
    assert!(out.contains("FAIL: shellcheck"), "{out}");
}

// ------------------------------------------------------------------------------------------
// The real backend blocks against a real S3 server (moto): state and lock file land where the
// contract says, and a held lock stops a second writer.

/// A root with the env's terraform block (backend included, providers left out so that
/// nothing is downloaded) and one builtin resource.
fn backend_probe_root(env: &str) -> tempfile::TempDir {
    let versions = repo_root().join(format!(
        "{}/{env}/versions.tf",
        contract::TF_ENVIRONMENTS_DIR
    ));
    let body = hcl::parse(&fs::read_to_string(versions).unwrap()).unwrap();
    let tf = body
        .blocks()
        .find(|b| b.identifier() == "terraform")
        .expect("terraform block");
    let mut kept = hcl::Body::builder();
    for a in tf.body().attributes() {
        kept = kept.add_attribute(a.clone());
    }
    for b in tf.body().blocks().filter(|b| b.identifier() == "backend") {
        kept = kept.add_block(b.clone());
    }
    let terraform = hcl::Block::builder("terraform")
        .add_structures(kept.build().into_inner())
        .build();
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{}\nresource \"terraform_data\" \"probe\" {{\n  input = \"{env}\"\n}}\n",
        hcl::to_string(&hcl::Body::builder().add_block(terraform).build()).unwrap()
    );
    fs::write(dir.path().join("main.tf"), text).unwrap();
    dir
}

fn terraform_in(dir: &Path, moto: &common::moto::Moto, args: &[&str]) -> (bool, String) {
    let mut cmd = Command::new("terraform");
    cmd.current_dir(dir)
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("TF_IN_AUTOMATION", "1")
        .env("CHECKPOINT_DISABLE", "1")
        .env_remove("TF_CLI_CONFIG_FILE");
    if args.first() == Some(&"init") {
        cmd.arg(format!(
            "-backend-config=endpoints={{s3=\"{}\"}}",
            moto.endpoint()
        ))
        .arg("-backend-config=use_path_style=true");
    }
    let out = cmd.output().expect("terraform runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn every_env_backend_writes_state_and_honours_the_lock_file() {
    common::require_tool("terraform", "Terraform 1.11.4: /usr/local/bin/terraform");
    let moto = common::moto::Moto::start();
    moto.create_bucket(contract::STATE_BUCKET);
    for env in contract::ENVIRONMENTS {
        let dir = backend_probe_root(env);
        let (ok, out) = terraform_in(dir.path(), &moto, &["init", "-input=false", "-no-color"]);
        assert!(
            ok,
            "{env}: terraform init with the real backend block failed:\n{out}"
        );
        let (ok, out) = terraform_in(
            dir.path(),
            &moto,
            &["apply", "-input=false", "-auto-approve", "-no-color"],
        );
        assert!(ok, "{env}: terraform apply failed:\n{out}");
        let key = contract::state_key(env);
        let keys = moto.keys(contract::STATE_BUCKET);
        assert!(
            keys.contains(&key),
            "{env}: no {key} in the bucket: {keys:?}"
        );
        assert!(
            moto.get(contract::STATE_BUCKET, &key)
                .contains("terraform_data"),
            "{env}: the state does not hold the probe resource"
        );

        // Someone else holds the lock: a second apply must refuse to write.
        let lock = format!("{key}.tflock");
        moto.put(
            contract::STATE_BUCKET,
            &lock,
            r#"{"ID":"held-by-test","Operation":"OperationTypeApply","Who":"someone@else"}"#,
        );
        let (ok, out) = terraform_in(
            dir.path(),
            &moto,
            &[
                "apply",
                "-input=false",
                "-auto-approve",
                "-no-color",
                "-lock-timeout=1s",
            ],
        );
        assert!(
            !ok,
            "{env}: apply succeeded while the lock file was held:\n{out}"
        );
        assert!(
            out.contains("Error acquiring the state lock") && out.contains("held-by-test"),
            "{env}: failed, but not because of the held lock:\n{out}"
        );
        moto.delete(contract::STATE_BUCKET, &lock);
    }
}

#[test]
fn a_missing_tool_fails_saying_what_to_install() {
    // A PATH with every program of this machine except caddy.
    let bin = tempfile::tempdir().unwrap();
    for dir in ["/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"] {
        let Ok(entries) = fs::read_dir(dir) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            let link = bin.path().join(&name);
            if name != "caddy" && !link.exists() {
                std::os::unix::fs::symlink(e.path(), link).unwrap();
            }
        }
    }
    let out = Command::new(bin.path().join("bash"))
        .arg(repo_root().join("scripts/check-infra"))
        .args(["--tools-only", "--root"])
        .arg(repo_root())
        .env("PATH", bin.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "check-infra passed without caddy");
    assert!(
        text.contains("FAIL: caddy is not installed: install the Debian package caddy"),
        "{text}"
    );
}

#[test]
fn broken_module_wiring_is_caught() {
    let dir = scratch_copy();
    let main = dir.path().join("terraform/environments/preprod/main.tf");
    edit(
        &main,
        "  allow_plain_mqtt    = var.allow_plain_mqtt\n",
        "  allow_plain_mqt     = var.allow_plain_mqtt\n",
    );
    edit(&main, "  allowed_cidr = module.network.cidr\n", "");
    let outputs = dir.path().join("terraform/environments/preprod/outputs.tf");
    edit(
        &outputs,
        "module.compute.public_ipv4",
        "module.compute.public_ip",
    );
    edit(
        &outputs,
        "value       = var.region",
        "value       = var.regoin",
    );
    let findings = tf::check(dir.path());
    assert_found(&findings, &["preprod", "passes allow_plain_mqt"]);
    assert_found(&findings, &["preprod", "required input allowed_cidr"]);
    assert_found(&findings, &["preprod", "module.compute.public_ip,"]);
    assert_found(&findings, &["preprod", "var.regoin"]);
}
