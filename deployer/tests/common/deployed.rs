//! A deployed env on this machine, for the commands that reach one (verify, reboot-test):
//! the real `terraform` on the test-only env (state in a local S3 server), a real sshd on
//! 127.0.0.1 standing in for the instance, and the real ingest (plain MQTT and MQTT over TLS
//! with a certificate for the env's MQTT domain) on the local TimescaleDB, its probe device
//! registered by `ingest migrate` as compose's ingest-migrate does at every deploy. There is
//! no Docker engine here: the host's `docker` runs the `psql` the deployer asks for directly,
//! and `curl` reaches the ingest's HTTP port (a free port instead of 8080). The cloud-init
//! marker is a file in the sshd's directory.

use std::path::Path;

use assert_cmd::Command;
use deployer::contract::STATE_BUCKET;

use super::ingest::{ensure_probe, pki, sql, Ingest, TestDb};
use super::moto::Moto;
use super::sshd::Sshd;

pub const DOMAIN: &str = "mqtt.fixture.example.test";
pub const PROBE_SECRET: &str = "fixture-probe-secret-never-printed-0123";
pub const OTHER_SECRET: &str = "rotated-probe-secret-never-printed-0123";

pub struct World {
    _moto: Moto,
    pub sshd: Sshd,
    pub repo: tempfile::TempDir,
    pub home: tempfile::TempDir,
    pub bin: std::path::PathBuf,
    pub db: TestDb,
    pub ingest: Ingest,
    pub moto_endpoint: String,
}

pub fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

impl World {
    pub fn new() -> Self {
        super::require_tool("terraform", "Terraform 1.11.4: /usr/local/bin/terraform");
        super::require_tool("psql", "apt-get install -y postgresql-client");
        let moto = Moto::start();
        moto.create_bucket(STATE_BUCKET);
        let moto_endpoint = moto.endpoint();

        // The instance's ingest and database.
        let bin = super::ingest::bin();
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
        super::copy_dir(
            &super::fixture("tf-env"),
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
        write(&sshd.path().join("cloud-init-finished"), "done\n");
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

    pub fn cmd(&self) -> Command {
        Command::from_std(self.std_cmd())
    }

    /// `deployer` set up for this env (keys, state endpoint, SSH to the sshd, the cloud-init
    /// marker), as a std command for tests that read its output while it runs.
    pub fn std_cmd(&self) -> std::process::Command {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_deployer"));
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
            .env("DEPLOYER_CLOUD_INIT_MARKER", self.marker())
            .arg(format!(
                "--backend-config=endpoints={{s3=\"{}\"}}",
                self.moto_endpoint
            ));
        c
    }

    /// The file standing in for cloud-init's marker on the instance (it exists: cloud-init
    /// has finished).
    pub fn marker(&self) -> std::path::PathBuf {
        self.sshd.path().join("cloud-init-finished")
    }

    /// The test CA's root (PEM), which signed the ingest's certificate.
    pub fn ca(&self) -> std::path::PathBuf {
        self.home.path().join("ca.pem")
    }

    /// Runs and returns (exit code, stdout, stderr); asserts no probe secret leaked.
    pub fn run(&self, args: &[&str]) -> (i32, String, String) {
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
    pub fn verify(&self, extra: &[&str]) -> (i32, String, String) {
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

    pub fn tfvars(&self) -> std::path::PathBuf {
        self.repo
            .path()
            .join("terraform/environments/fixture/terraform.tfvars")
    }

    pub fn probe_rows(&self) -> i64 {
        sql(
            &self.db.url,
            "SELECT count(*) FROM positions WHERE device_id = 'deployer-probe'",
        )[0][0]
            .parse()
            .unwrap()
    }
}
