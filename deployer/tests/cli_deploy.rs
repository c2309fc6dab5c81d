//! The `deployer` binary end to end on this machine: credentials encrypted with the
//! deployer's own SOPS/age code, the real `terraform` on the test-only env with its state in
//! a local S3 server (moto), and a real sshd on 127.0.0.1 standing in for the instance.
//! There is no Docker engine here: the host's `docker` is a stand-in script that records its
//! arguments and plays the parts of `compose ps/logs`, `pg_dump` and `pg_restore`.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use common::moto::Moto;
use common::sshd::Sshd;
use deployer::contract::STATE_BUCKET;

const DB_PASSWORD: &str = "fixture-db-password-1";
const AWS_SECRET: &str = "fixture-aws-secret-never-printed";
const OS_PASSWORD: &str = "fixture-os-password-never-printed";
const MQTT_SECRET: &str = "fixture-backend-mqtt-secret-never-printed";
const PROBE_SECRET: &str = "fixture-probe-device-secret-never-printed";

struct World {
    moto: Moto,
    sshd: Sshd,
    repo: tempfile::TempDir,
    home: tempfile::TempDir,
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

impl World {
    fn new() -> Self {
        common::require_tool("terraform", "Terraform 1.11.4: /usr/local/bin/terraform");
        let moto = Moto::start();
        moto.create_bucket(STATE_BUCKET);
        let sshd = Sshd::prepare().start();
        let log = sshd.path().join("docker.log");
        sshd.stub(
            "docker",
            &format!(
                "#!/bin/sh\necho \"$*\" >> {log}\ncase \"$*\" in\n\
                 *'compose ps'*) echo '{{\"Service\":\"ingest\",\"State\":\"running\",\"Health\":\"healthy\",\"ExitCode\":0}}';;\n\
                 *'compose logs'*) echo 'ingest-1  | hello from the ingest';;\n\
                 *pg_dump*) printf 'PGDMP-fixture-dump\\001\\002\\377';;\n\
                 *pg_restore*) cat > {restored};;\nesac\n",
                log = log.display(),
                restored = sshd.path().join("restored.bin").display()
            ),
        );
        let repo = tempfile::tempdir().unwrap();
        let home = tempfile::tempdir().unwrap();
        let r = repo.path();
        common::copy_dir(
            &common::fixture("tf-env"),
            &r.join("terraform/environments/fixture"),
        );
        std::fs::create_dir_all(r.join("terraform/environments/other")).unwrap();
        write(
            &r.join("compose/docker-compose.yml"),
            "name: accoreboot\nservices: {}\n",
        );
        write(&r.join("compose/Caddyfile"), "{$API_DOMAIN} {\n}\n");
        write(&r.join("compose/powersync/config.yaml"), "port: 8080\n");
        write(
            &r.join("compose/powersync/sync-rules.yaml"),
            "bucket_definitions: {}\n",
        );
        // Credentials: an age key of the test, files encrypted by the deployer's SOPS code.
        let keys = home.path().join("keys.txt");
        let public = deployer::secrets::init_key(&keys).unwrap();
        let common_plain = "OVH_ENDPOINT=ovh-eu\nOVH_APPLICATION_KEY=ak\nOVH_APPLICATION_SECRET=as-secret\n\
            OVH_CONSUMER_KEY=ck-secret\nCLOUDFLARE_API_TOKEN=cf-token-secret\nCLOUDFLARE_ZONE_ID=zone\n\
            SSH_PUBLIC_KEY=ssh-ed25519 AAAAfixture\nOPERATOR_CIDRS=203.0.113.7/32\n\
            ACME_EMAIL=ops@example.test\nBASE_DOMAIN=example.test\n";
        let env_plain = format!(
            "OVH_CLOUD_PROJECT_ID=proj0123\nOS_USERNAME=user-0\nOS_PASSWORD={OS_PASSWORD}\nOS_REGION_NAME=GRA9\n\
             AWS_ACCESS_KEY_ID=test-access\nAWS_SECRET_ACCESS_KEY={AWS_SECRET}\n\
             BACKEND_IMAGE=ghcr.io/acco/backend:1.2.3\nINGEST_IMAGE=ghcr.io/acco/ingest:4.5.6\n\
             BACKEND_MQTT_PASSWORD={MQTT_SECRET}\nTEST_DEVICE_PASSWORD={PROBE_SECRET}\n"
        );
        for (name, plain) in [("common", common_plain.to_owned()), ("fixture", env_plain)] {
            let enc =
                deployer::secrets::encrypt_dotenv(&plain, std::slice::from_ref(&public)).unwrap();
            write(&r.join(format!("credentials/{name}.enc.env")), &enc);
        }
        Self {
            moto,
            sshd,
            repo,
            home,
        }
    }

    fn known_hosts(&self) -> PathBuf {
        self.home.path().join("known_hosts.fixture")
    }

    fn cmd(&self) -> Command {
        let mut c = Command::cargo_bin("deployer").unwrap();
        c.env_clear()
            .env("PATH", std::env::var("PATH").unwrap())
            .env("HOME", self.home.path())
            .env("XDG_CONFIG_HOME", self.home.path().join("config"))
            .env("SOPS_AGE_KEY_FILE", self.home.path().join("keys.txt"))
            .env("DEPLOYER_REPO", self.repo.path())
            .env("DEPLOYER_KNOWN_HOSTS", self.known_hosts())
            .env("DEPLOYER_SSH_PORT", self.sshd.port.to_string())
            .env("DEPLOYER_SSH_IDENTITY", self.sshd.identity())
            .env("DEPLOYER_REMOTE_DIR", self.sshd.remote_dir())
            .env(
                "DEPLOYER_CLOUD_INIT_MARKER",
                self.sshd.path().join("marker"),
            )
            .env("DEPLOYER_SSH_TRIES", "3")
            .env("DEPLOYER_SSH_INTERVAL", "0.2")
            .env("DEPLOYER_MARKER_TRIES", "3")
            .env("DEPLOYER_MARKER_INTERVAL", "0.2")
            .env("DEPLOYER_S3_ENDPOINT", self.moto.endpoint())
            .arg(format!(
                "--backend-config=endpoints={{s3=\"{}\"}}",
                self.moto.endpoint()
            ));
        c
    }

    /// Runs and returns (exit code, stdout, stderr); asserts no secret leaked.
    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = self.cmd().args(args).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let asked_for_a_value = args.contains(&"db_password") || args.contains(&"--name");
        for secret in [
            AWS_SECRET,
            OS_PASSWORD,
            MQTT_SECRET,
            PROBE_SECRET,
            "cf-token-secret",
            "ck-secret",
        ] {
            assert!(
                !stdout.contains(secret) && !stderr.contains(secret),
                "{secret} leaked by {args:?}:\n{stdout}\n{stderr}"
            );
        }
        if !asked_for_a_value {
            assert!(
                !stdout.contains(DB_PASSWORD) && !stderr.contains(DB_PASSWORD),
                "db password leaked by {args:?}:\n{stdout}\n{stderr}"
            );
        }
        (out.status.code().unwrap_or(-1), stdout, stderr)
    }

    fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.run(args);
        assert_eq!(code, 0, "{args:?} failed:\n{out}\n{err}");
        out
    }

    fn docker_log(&self) -> String {
        std::fs::read_to_string(self.sshd.path().join("docker.log")).unwrap_or_default()
    }
}

#[test]
fn init_apply_output_deploy_check_ssh_logs_db_stop_start() {
    let w = World::new();
    w.ok(&["init", "fixture"]);
    w.ok(&["apply", "fixture"]);
    let out = w.ok(&["output", "fixture"]);
    assert!(out.contains("public_ipv4 = 127.0.0.1"), "{out}");
    assert!(out.contains("db_password = (sensitive"), "{out}");
    assert_eq!(
        w.ok(&["output", "fixture", "db_password"]).trim(),
        DB_PASSWORD
    );
    // --verbose shows the commands, never the values in their environment.
    let (code, _, err) = w.run(&["--verbose", "output", "fixture"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("$ ") && err.contains("TF_VAR_project_id=*** "),
        "{err}"
    );
    assert!(err.contains("AWS_SECRET_ACCESS_KEY=***"), "{err}");
    let shown = w.ok(&["secrets", "show", "fixture"]);
    assert!(
        shown.contains("OS_PASSWORD=***") && shown.contains("BASE_DOMAIN=***"),
        "{shown}"
    );

    // No pinned key yet and no console to read it from: the deployer refuses to guess.
    std::fs::write(w.sshd.path().join("marker"), "").unwrap();
    let (code, _, err) = w.run(&["deploy", "fixture", "--host-key", "ssh-ed25519 bogus"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not an SSH public host key"), "{err}");

    let host_key = w.sshd.host_key();
    w.ok(&["deploy", "fixture", "--host-key", &host_key]);
    let remote = w.sshd.remote_dir();
    for f in [
        "docker-compose.yml",
        "Caddyfile",
        "powersync/config.yaml",
        "powersync/sync-rules.yaml",
        "db-ca.pem",
    ] {
        assert!(remote.join(f).is_file(), "{f} uploaded");
    }
    let env = std::fs::read_to_string(remote.join(".env")).unwrap();
    assert_eq!(
        std::fs::metadata(remote.join(".env"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    assert!(env.contains(&format!("DATABASE_URL='postgresql://app:{DB_PASSWORD}@db.fixture.internal:20184/accoreboot?sslmode=verify-full&sslrootcert=/run/secrets/db-ca.pem'")), "{env}");
    assert!(
        env.contains("INGEST_IMAGE='ghcr.io/acco/ingest:4.5.6'"),
        "{env}"
    );
    assert!(
        env.contains("API_DOMAIN='api.fixture.example.test'"),
        "{env}"
    );
    // The backend's service account, the probe device and PowerSync's database user, for
    // ingest-migrate.
    for line in [
        format!("BACKEND_MQTT_PASSWORD='{MQTT_SECRET}'"),
        "BACKEND_MQTT_USERNAME='backend'".to_owned(),
        format!("TEST_DEVICE_PASSWORD='{PROBE_SECRET}'"),
        "TEST_DEVICE_ID='deployer-probe'".to_owned(),
        "POWERSYNC_DB_USER='powersync'".to_owned(),
    ] {
        assert!(env.lines().any(|l| l == line), "{line} in {env}");
    }
    assert!(!env.contains("ADMIN_TOKEN"), "{env}");
    assert!(
        w.docker_log()
            .contains("compose up -d --remove-orphans --pull always"),
        "{}",
        w.docker_log()
    );
    assert!(deployer::remote::known_hosts::is_pinned(
        &w.known_hosts(),
        "127.0.0.1",
        w.sshd.port
    ));

    // check: nothing to change, then one file changed on the host.
    let out = w.ok(&["check", "fixture"]);
    assert!(out.contains("0 file(s) would change"), "{out}");
    std::fs::write(remote.join("Caddyfile"), "edited on the host\n").unwrap();
    std::fs::write(
        remote.join(".env"),
        "DATABASE_URL='old'\nENV_NAME='fixture'\n",
    )
    .unwrap();
    let out = w.ok(&["check", "fixture"]);
    assert!(out.contains("changed  Caddyfile"), "{out}");
    assert!(
        out.contains("changed  .env") && out.contains("DATABASE_URL"),
        "{out}"
    );
    assert!(out.contains("2 file(s) would change"), "{out}");
    assert!(out.contains("ingest running"), "{out}");

    // ssh and logs.
    assert_eq!(
        w.ok(&["ssh", "fixture", "--", "echo", "hello world"])
            .trim(),
        "hello world"
    );
    assert!(w
        .ok(&["logs", "fixture", "ingest"])
        .contains("hello from the ingest"));
    let (code, _, err) = w.run(&["logs", "fixture", "ingest;reboot"]);
    assert_eq!(code, 2, "{err}");

    // db stop: dump over SSH to S3, then the database is destroyed by Terraform.
    w.ok(&["db", "stop", "fixture", "--yes"]);
    let keys = w.moto.keys(STATE_BUCKET);
    let dump = keys
        .iter()
        .find(|k| k.starts_with("fixture/db-dumps/") && k.ends_with(".dump"))
        .unwrap_or_else(|| panic!("dump uploaded: {keys:?}"));
    assert!(w.docker_log().contains("compose stop backend powersync"));
    let out = w.ok(&["output", "fixture"]);
    assert!(out.contains("db_host = null"), "{out}");
    let (code, _, err) = w.run(&["deploy", "fixture"]);
    assert_eq!(code, 1);
    assert!(err.contains("db start"), "{err}");

    // db start: recreate, restore the dump through pg_restore's stdin, redeploy.
    w.ok(&["db", "start", "fixture", "--yes"]);
    let restored = std::fs::read(w.sshd.path().join("restored.bin")).unwrap();
    assert_eq!(
        restored, b"PGDMP-fixture-dump\x01\x02\xff",
        "dump {dump} restored byte for byte"
    );
    assert!(w
        .ok(&["output", "fixture"])
        .contains("db_host = db.fixture.internal"));

    // db stop is refused for prod whatever the env looks like.
    let (code, _, err) = w.run(&["db", "stop", "prod", "--yes"]);
    assert_eq!(code, 2, "{err}");

    // down: destroy + local leftovers (.terraform/), the shared --known-hosts file kept.
    w.ok(&["down", "fixture", "--yes"]);
    assert!(!w
        .repo
        .path()
        .join("terraform/environments/fixture/.terraform")
        .exists());
    assert!(w.known_hosts().exists());
    let state = w.moto.get(STATE_BUCKET, "fixture/terraform.tfstate");
    assert!(state.contains("\"resources\": []"), "{state}");
}

#[test]
fn bad_input_is_refused_with_usage_errors() {
    let w = World::new();
    let (code, _, err) = w.run(&["plan", "staging"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("unknown environment \"staging\"") && err.contains("fixture, other"),
        "{err}"
    );
    let (code, _, err) = w.run(&["plan", "../etc"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, _) = w.run(&["frobnicate", "fixture"]);
    assert_eq!(code, 2);
    let (code, _, _) = w.run(&["deploy"]);
    assert_eq!(code, 2);
    let (code, _, err) = w.run(&["destroy", "fixture"]);
    assert_eq!(code, 2, "no terminal, no --yes: {err}");
    // An env without credentials file.
    let (code, _, err) = w.run(&["init", "other"]);
    assert_eq!(code, 1);
    assert!(err.contains("other"), "{err}");
    // Outside a checkout.
    let mut c = w.cmd();
    c.env("DEPLOYER_REPO", w.home.path());
    let out = c.args(["plan", "fixture"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--repo"));
}

#[test]
fn unreachable_instance_fails_deploy_after_the_configured_tries() {
    let w = World::new();
    w.ok(&["init", "fixture"]);
    w.ok(&["apply", "fixture"]);
    let dead_port = common::free_port();
    let mut c = w.cmd();
    c.env("DEPLOYER_SSH_PORT", dead_port.to_string());
    let out = c
        .args([
            "deploy",
            "fixture",
            "--ssh-tries",
            "2",
            "--host-key",
            &w.sshd.host_key(),
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("did not answer after 2 tries"), "{err}");
    assert!(err.contains("OPERATOR_CIDRS"), "next step named: {err}");
}

#[test]
fn secrets_init_edit_show() {
    let w = World::new();
    // init: a new key file, its public key on stdout; a second init refuses to overwrite.
    let keys = w.home.path().join("new-keys.txt");
    let public = w.ok(&["secrets", "init", "--keys-file", keys.to_str().unwrap()]);
    assert!(public.trim().starts_with("age1"), "{public}");
    let (code, _, err) = w.run(&["secrets", "init", "--keys-file", keys.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");

    // edit: $EDITOR appends a name; the file is re-encrypted for .sops.yaml's recipient.
    let test_public = {
        let text = std::fs::read_to_string(w.home.path().join("keys.txt")).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix("# public key: "))
            .unwrap()
            .to_owned()
    };
    write(
        &w.repo.path().join(".sops.yaml"),
        &format!("creation_rules:\n  - path_regex: ^credentials/[a-z0-9-]+\\.enc\\.env$\n    age: {test_public}\n"),
    );
    let editor = w.home.path().join("editor.sh");
    write(
        &editor,
        "#!/bin/sh\necho 'POWERSYNC_JWKS_URI=added-by-editor' >> \"$1\"\n",
    );
    std::fs::set_permissions(&editor, std::fs::Permissions::from_mode(0o755)).unwrap();
    let before =
        std::fs::read_to_string(w.repo.path().join("credentials/fixture.enc.env")).unwrap();
    let out = w
        .cmd()
        .env("EDITOR", &editor)
        .args(["secrets", "edit", "fixture"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = std::fs::read_to_string(w.repo.path().join("credentials/fixture.enc.env")).unwrap();
    assert_ne!(before, after);
    assert!(!after.contains("added-by-editor"), "encrypted on disk");
    let shown = w.ok(&["secrets", "show", "fixture"]);
    assert!(shown.contains("POWERSYNC_JWKS_URI=***"), "{shown}");
    assert!(!shown.contains("added-by-editor"), "{shown}");
    assert_eq!(
        w.ok(&["secrets", "show", "fixture", "--name", "POWERSYNC_JWKS_URI"])
            .trim(),
        "added-by-editor"
    );
    let (code, _, _) = w.run(&["secrets", "show", "fixture", "--name", "NOPE"]);
    assert_eq!(code, 2);
}
