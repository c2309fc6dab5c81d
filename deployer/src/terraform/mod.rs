//! Running the real `terraform` binary on one root (an environment or the bootstrap):
//! version check, `init` with the S3 backend, `plan`, `apply`, `destroy`, `output -json`.
//! Every call is non-interactive (`-input=false`, `TF_IN_AUTOMATION=1`) and streams its
//! output to the step's spinner; a failure carries the lines that explain it.

pub mod outputs;
pub mod version;

use std::path::{Path, PathBuf};

pub use outputs::{DatabaseOutputs, OutputsError, TfOutputs};

use crate::process::{Cmd, CmdError};
use crate::progress::Step;
use crate::redact::Redactor;

#[derive(Debug, thiserror::Error)]
pub enum TfError {
    #[error("terraform {action} failed in {dir}: {source}\nNext: {hint}")]
    Command {
        action: &'static str,
        dir: PathBuf,
        hint: &'static str,
        #[source]
        source: Box<CmdError>,
    },
    #[error(transparent)]
    Version(#[from] version::VersionError),
    #[error(transparent)]
    Outputs(#[from] OutputsError),
}

/// One Terraform root and the environment its commands run with.
#[derive(Debug, Clone)]
pub struct Terraform {
    bin: String,
    dir: PathBuf,
    /// Provider credentials and `TF_VAR_*` (values never printed).
    env: Vec<(String, String)>,
    /// `-backend-config` overrides for `init` (tests point the S3 backend at a local server).
    backend_config: Vec<String>,
    /// Extra arguments for plan/apply/destroy (`-var ...`, `-state=...`).
    extra_args: Vec<String>,
    redactor: Redactor,
}

impl Terraform {
    pub fn new(dir: impl AsRef<Path>, env: Vec<(String, String)>, redactor: Redactor) -> Self {
        Self {
            bin: std::env::var("DEPLOYER_TERRAFORM").unwrap_or_else(|_| "terraform".into()),
            dir: dir.as_ref().to_path_buf(),
            env,
            backend_config: Vec::new(),
            extra_args: Vec::new(),
            redactor,
        }
    }

    pub fn with_backend_config(mut self, overrides: &[String]) -> Self {
        self.backend_config = overrides.to_vec();
        self
    }

    pub fn with_args(mut self, args: impl IntoIterator<Item = String>) -> Self {
        self.extra_args.extend(args);
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn cmd(&self) -> Cmd {
        Cmd::new(&self.bin)
            .arg(format!("-chdir={}", self.dir.display()))
            .env_remove("TF_PLUGIN_CACHE_DIR")
            .env("TF_IN_AUTOMATION", "1")
            .env("TF_INPUT", "0")
            .envs(self.env.clone())
    }

    fn run(
        &self,
        step: &Step,
        action: &'static str,
        hint: &'static str,
        cmd: Cmd,
    ) -> Result<String, TfError> {
        let out = cmd
            .run_with(&self.redactor, |l| step.progress(l))
            .map_err(|source| TfError::Command {
                action,
                dir: self.dir.clone(),
                hint,
                source: Box::new(source),
            })?;
        Ok(out.stdout)
    }

    /// Checks `terraform version` against the pinned range.
    pub fn check_version(&self, step: &Step) -> Result<semver::Version, TfError> {
        let out = self.run(
            step,
            "version",
            "install Terraform 1.11.4 or newer (below 2.0) and make sure `terraform` is on PATH",
            Cmd::new(&self.bin).args(["version", "-json"]),
        )?;
        Ok(version::check(&out)?)
    }

    pub fn init(&self, step: &Step) -> Result<(), TfError> {
        let mut cmd = self
            .cmd()
            .args(["init", "-input=false", "-no-color", "-reconfigure"]);
        for kv in &self.backend_config {
            cmd = cmd.arg(format!("-backend-config={kv}"));
        }
        self.run(
            step,
            "init",
            "check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY in credentials/<env>.enc.env and that `deployer bootstrap <env>` created the state bucket",
            cmd,
        )?;
        Ok(())
    }

    pub fn plan(&self, step: &Step) -> Result<String, TfError> {
        let cmd = self
            .cmd()
            .args(["plan", "-input=false", "-no-color", "-lock-timeout=60s"])
            .args(self.extra_args.clone());
        self.run(
            step,
            "plan",
            "read the Terraform error above; run `deployer init <env>` first if the backend changed",
            cmd,
        )
    }

    pub fn apply(&self, step: &Step) -> Result<(), TfError> {
        let cmd = self
            .cmd()
            .args([
                "apply",
                "-input=false",
                "-no-color",
                "-auto-approve",
                "-lock-timeout=60s",
            ])
            .args(self.extra_args.clone());
        self.run(
            step,
            "apply",
            "read the Terraform error above, fix it and run `deployer apply <env>` again (apply is idempotent)",
            cmd,
        )?;
        Ok(())
    }

    pub fn destroy(&self, step: &Step) -> Result<(), TfError> {
        let cmd = self
            .cmd()
            .args([
                "destroy",
                "-input=false",
                "-no-color",
                "-auto-approve",
                "-lock-timeout=60s",
            ])
            .args(self.extra_args.clone());
        self.run(
            step,
            "destroy",
            "run `deployer destroy <env>` again; if a resource is stuck, remove it in the OVH console and retry",
            cmd,
        )?;
        Ok(())
    }

    /// Raw `terraform output -json` text.
    pub fn output_json(&self, step: &Step) -> Result<String, TfError> {
        let cmd = self.cmd().args(["output", "-json", "-no-color"]);
        self.run(
            step,
            "output",
            "run `deployer init <env>` then `deployer apply <env>`",
            cmd,
        )
    }

    /// The environment's outputs, checked against the contract.
    pub fn outputs(&self, step: &Step) -> Result<TfOutputs, TfError> {
        Ok(outputs::parse(&self.output_json(step)?)?)
    }
}
