//! `deployer verify` end to end on this machine: the real `terraform` on the test-only env
//! (state in a local S3 server), a real sshd on 127.0.0.1 standing in for the instance, and
//! the real ingest (plain MQTT and MQTT over TLS with a certificate for the env's MQTT domain)
//! on the local TimescaleDB, its probe device registered by `ingest migrate` as compose's
//! ingest-migrate does at every deploy. There is no Docker engine here: the host's `docker`
//! runs the `psql` the deployer asks for directly, and `curl` reaches the ingest's HTTP port
//! (a free port instead of 8080). DNS has no record for the fixture's domains, so the HTTPS
//! checks fail and verify exits 1; the MQTT checks are what this test is about.

mod common;

use std::path::Path;

use assert_cmd::Command;
use common::ingest::{ensure_probe, pki, sql, Ingest, TestDb};
use common::moto::Moto;
use common::sshd::Sshd;
use deployer::contract::STATE_BUCKET;

const DOMAIN: &str = "mqtt.fixture.example.test";
const PROBE_SECRET: &str = "fixture-probe-secret-never-printed-0123";
const OTHER_SECRET: &str = "rotated-probe-secret-never-printed-0123";

struct World {
    _moto: Moto,
    sshd: Sshd,
    repo: tempfile::TempDir,
    home: tempfile::TempDir,
    bin: std::path::PathBuf,
    db: TestDb,
    ingest: Ingest,
    moto_endpoint: String,
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

impl World {
    fn new() -> Self {
        common::require_tool("terraform", "Terraform 1.11.4: /usr/local/bin/terraform");
        common::require_tool("psql", "apt-get install -y postgresql-client");
        let moto = Moto::start();
        moto.create_bucket(STATE_BUCKET);
        let moto_endpoint = moto.endpoint();

        // The instance's ingest and database.
        let bin = common::ingest::bin();
        let db = TestDb::create();
        ensure_probe(&bin, &db.url, "deployer-probe", PROBE_SECRET);
        let (ca, cert, key) = pki("verify", &[DOMAIN]);
        let ingest = Ingest::start(&bin, &db.url, &cert, &key);

        // The instance: `docker run ... sh -c 'psql ...'` runs the psql part here, and curl
        // reaches the ingest's HTTP port where the host would have 8080.
        let sshd = Sshd::prepare().start();
        sshd.stub(
            "docker",
            "#!/bin/sh\ncase \"$1\" in\n  run) while [ \"$#\" -gt 0 ] && [ \"$1\" != sh ]; do shift; done; exec \"$@\";;\nesac\n\
             echo \"unexpected: docker $*\" >&2\nexit 1\n",
        );
        sshd.stub(
            "curl",
            &format!(
                "#!/bin/sh\nfor a in \"$@\"; do\n  case \"$a\" in\n    http://127.0.0.1:8080/*) set -- \"$@\" \"http://127.0.0.1:{}/${{a#http://127.0.0.1:8080/}}\";;\n    *) set -- \"$@\" \"$a\";;\n  esac\n  shift\ndone\nexec /usr/bin/curl \"$@\"\n",
                ingest.http
            ),
        );
        write(
            &sshd.remote_dir().join(".env"),
            &format!("DATABASE_URL='{}'\n", db.url),
        );
        write(&sshd.remote_dir().join("db-ca.pem"), "unused here\n");

        let repo = tempfile::tempdir().unwrap();
        let home = tempfile::tempdir().unwrap();
        let r = repo.path();
        common::copy_dir(
            &common::fixture("tf-env"),
            &r.join("terraform/environments/fixture"),
        );
        write(&home.path().join("ca.pem"), &ca);
        let keys = home.path().join("keys.txt");
        let public = deployer::secrets::init_key(&keys).unwrap();
        let common_plain = "OVH_ENDPOINT=ovh-eu\nOVH_APPLICATION_KEY=ak\nOVH_APPLICATION_SECRET=as-secret\n\
            OVH_CONSUMER_KEY=ck-secret\nCLOUDFLARE_API_TOKEN=cf-token-secret\nCLOUDFLARE_ZONE_ID=zone\n\
            SSH_PUBLIC_KEY=ssh-ed25519 AAAAfixture\nOPERATOR_CIDRS=203.0.113.7/32\n\
            ACME_EMAIL=ops@example.test\nBASE_DOMAIN=example.test\n";
        let env_plain = format!(
            "OVH_CLOUD_PROJECT_ID=proj0123\nOS_USERNAME=user-0\nOS_PASSWORD=os-secret\nOS_REGION_NAME=GRA9\n\
             AWS_ACCESS_KEY_ID=test-access\nAWS_SECRET_ACCESS_KEY=aws-secret\n\
             BACKEND_IMAGE=ghcr.io/acco/backend:1.2.3\n\
             BACKEND_MQTT_PASSWORD=fixture-backend-mqtt-secret-0123456789\n\
             TEST_DEVICE_PASSWORD={PROBE_SECRET}\n"
        );
        for (name, plain) in [("common", common_plain.to_owned()), ("fixture", env_plain)] {
            let enc =
                deployer::secrets::encrypt_dotenv(&plain, std::slice::from_ref(&public)).unwrap();
            write(&r.join(format!("credentials/{name}.enc.env")), &enc);
        }
        let w = Self {
            _moto: moto,
            sshd,
            repo,
            home,
            bin,
            db,
            ingest,
            moto_endpoint,
        };
        for step in ["init", "apply"] {
            let (code, out, err) = w.run(&[step, "fixture"]);
            assert_eq!(code, 0, "{step}:\n{out}\n{err}");
        }
        w
    }

    fn cmd(&self) -> Command {
        let mut c = Command::cargo_bin("deployer").unwrap();
        c.env_clear()
            .env("PATH", std::env::var("PATH").unwrap())
            .env("HOME", self.home.path())
            .env("XDG_CONFIG_HOME", self.home.path().join("config"))
            .env("SOPS_AGE_KEY_FILE", self.home.path().join("keys.txt"))
            .env("DEPLOYER_REPO", self.repo.path())
            .env("DEPLOYER_KNOWN_HOSTS", self.home.path().join("known_hosts"))
            .env("DEPLOYER_SSH_PORT", self.sshd.port.to_string())
            .env("DEPLOYER_SSH_IDENTITY", self.sshd.identity())
            .env("DEPLOYER_REMOTE_DIR", self.sshd.remote_dir())
            .arg(format!(
                "--backend-config=endpoints={{s3=\"{}\"}}",
                self.moto_endpoint
            ));
        c
    }

    /// Runs and returns (exit code, stdout, stderr); asserts no probe secret leaked.
    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = self.cmd().args(args).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        for secret in [PROBE_SECRET, OTHER_SECRET] {
            assert!(
                !stdout.contains(secret) && !stderr.contains(secret),
                "the probe secret leaked by {args:?}:\n{stdout}\n{stderr}"
            );
        }
        (out.status.code().unwrap_or(-1), stdout, stderr)
    }

    /// `deployer verify fixture` dialling the local ingest, trusting the test CA.
    fn verify(&self, extra: &[&str]) -> (i32, String, String) {
        let tls = format!("127.0.0.1:{}", self.ingest.mqtts);
        let plain = format!("127.0.0.1:{}", self.ingest.mqtt);
        let ca = self.home.path().join("ca.pem");
        let key = self.sshd.host_key();
        let mut args = vec![
            "verify",
            "fixture",
            "--host-key",
            &key,
            "--mqtts-address",
            &tls,
            "--mqtt-address",
            &plain,
            "--mqtt-ca",
            ca.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    fn tfvars(&self) -> std::path::PathBuf {
        self.repo
            .path()
            .join("terraform/environments/fixture/terraform.tfvars")
    }

    fn probe_rows(&self) -> i64 {
        sql(
            &self.db.url,
            "SELECT count(*) FROM positions WHERE device_id = 'deployer-probe'",
        )[0][0]
            .parse()
            .unwrap()
    }
}

/// The line of one check in verify's report.
fn line<'a>(out: &'a str, check: &str) -> &'a str {
    out.lines()
        .find(|l| l.contains(check))
        .unwrap_or_else(|| panic!("no {check:?} line in:\n{out}"))
}

#[test]
fn verify_publishes_as_the_registered_probe_over_tls_and_where_open_plain() {
    let w = World::new();

    // An env that keeps plain MQTT closed (no tfvars: the variable's default, false).
    let (code, out, err) = w.verify(&[]);
    assert_eq!(code, 1, "HTTPS cannot pass without DNS:\n{out}\n{err}");
    assert!(line(&out, "HTTPS api").starts_with("FAIL"), "{out}");
    assert!(line(&out, "ingest ready").starts_with("ok"), "{out}\n{err}");
    let tls = line(&out, "MQTT/TLS to database");
    assert!(
        tls.starts_with("ok")
            && tls.contains("3 points acknowledged")
            && tls.contains("as deployer-probe and found in the database"),
        "{out}\n{err}"
    );
    assert!(
        !out.contains("MQTT plain"),
        "plain MQTT is closed here:\n{out}"
    );
    assert_eq!(w.probe_rows(), 3);

    // The test env opens plain MQTT: verify checks it too.
    write(&w.tfvars(), "allow_plain_mqtt = true\n");
    let (code, out, err) = w.verify(&[]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        line(&out, "MQTT/TLS to database").starts_with("ok"),
        "{out}\n{err}"
    );
    assert!(
        line(&out, "MQTT plain to database").starts_with("ok"),
        "{out}\n{err}"
    );
    assert_eq!(w.probe_rows(), 9);
}

#[test]
fn verify_says_what_to_do_when_the_probe_is_refused_or_misconfigured() {
    let w = World::new();
    write(&w.tfvars(), "allow_plain_mqtt = false\n");

    // The registered secret differs from the env's TEST_DEVICE_PASSWORD (e.g. the credentials
    // were edited and not deployed yet).
    ensure_probe(&w.bin, &w.db.url, "deployer-probe", OTHER_SECRET);
    let (code, out, err) = w.verify(&[]);
    assert_eq!(code, 1, "{out}\n{err}");
    let tls = line(&out, "MQTT/TLS to database");
    assert!(
        tls.starts_with("FAIL")
            && tls.contains("refused the probe device \"deployer-probe\"")
            && tls.contains("not registered or its secret differs")
            && tls.contains("run `deployer deploy <env>` again"),
        "{out}"
    );
    assert_eq!(w.probe_rows(), 0);

    // Trusting only the public web roots: the test CA's certificate is refused.
    ensure_probe(&w.bin, &w.db.url, "deployer-probe", PROBE_SECRET);
    let key = w.sshd.host_key();
    let tls_addr = format!("127.0.0.1:{}", w.ingest.mqtts);
    let (code, out, err) = w.run(&[
        "verify",
        "fixture",
        "--host-key",
        &key,
        "--mqtts-address",
        &tls_addr,
    ]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        line(&out, "MQTT/TLS to database").contains("not signed by a publicly trusted CA"),
        "{out}"
    );

    // Broken inputs are usage errors, refused before any check.
    let missing = w.home.path().join("no-such-ca.pem");
    let (code, _, err) = w.run(&[
        "verify",
        "fixture",
        "--host-key",
        &key,
        "--mqtt-ca",
        missing.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--mqtt-ca") && err.contains("no-such-ca.pem"),
        "{err}"
    );
    write(&w.tfvars(), "allow_plain_mqtt = \"sometimes\"\n");
    let (code, _, err) = w.verify(&[]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("terraform.tfvars") && err.contains("allow_plain_mqtt must be true or false"),
        "{err}"
    );
}
