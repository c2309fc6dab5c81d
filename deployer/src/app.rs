//! Dispatch of the parsed command line, and the per-run context every command shares:
//! the checkout, the global options, the redactor that grows with every secret loaded.

use std::io::IsTerminal;

use anyhow::Context as _;

use crate::cli::{Cli, Command, DbCommand, Global};
use crate::commands;
use crate::credentials::Creds;
use crate::env::{EnvError, Environment, Project};
use crate::redact::Redactor;
use crate::terraform::{Terraform, TfOutputs};

/// A mistake in how the deployer was called (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// What every command gets.
pub struct Ctx {
    pub global: Global,
    pub project: Project,
    /// Masks every secret value loaded so far.
    pub redactor: Redactor,
}

impl Ctx {
    pub fn new(global: Global) -> Result<Self, EnvError> {
        let cwd = std::env::current_dir().unwrap_or_else(|_| ".".into());
        let project = Project::locate(global.repo.as_deref(), &cwd)?;
        Ok(Self {
            global,
            project,
            redactor: Redactor::default(),
        })
    }

    pub fn env(&self, name: &str) -> Result<Environment, EnvError> {
        self.project.env(name)
    }

    /// Decrypts the env's credentials and masks their values from now on.
    pub fn creds(&mut self, env: &Environment) -> anyhow::Result<Creds> {
        let creds = crate::decrypt::load(&self.project, env.name())?;
        self.redactor.extend(creds.values());
        Ok(creds)
    }

    /// Terraform on the env's root, with the provider env and `TF_VAR_*` from `creds`.
    pub fn terraform(&self, env: &Environment, creds: &Creds) -> anyhow::Result<Terraform> {
        let vars = creds.terraform_env(env.name())?;
        Ok(Terraform::new(env.tf_dir(), vars, self.redactor.clone())
            .with_backend_config(&self.global.backend_config))
    }

    /// The env's Terraform outputs (credentials decrypted on the way), secrets masked.
    pub fn outputs(&mut self, env: &Environment) -> anyhow::Result<(Creds, TfOutputs)> {
        let creds = self.creds(env)?;
        let tf = self.terraform(env, &creds)?;
        let step =
            crate::progress::Step::start(format!("read Terraform outputs of {}", env.name()));
        let outputs = tf.outputs(&step)?;
        step.done();
        self.redactor.extend(outputs.secret_values());
        Ok((creds, outputs))
    }
}

/// Asks the operator to type `word` to go on (or `--yes`).
pub fn confirm(what: &str, word: &str, yes: bool) -> anyhow::Result<()> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(UsageError(format!(
            "{what}: refusing without a terminal to confirm; pass --yes"
        ))
        .into());
    }
    eprint!("{what}. Type the environment name ({word}) to go on: ");
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("cannot read the confirmation")?;
    if line.trim() == word {
        Ok(())
    } else {
        Err(UsageError("not confirmed; nothing changed".into()).into())
    }
}

/// Runs the command and returns the process exit code.
pub fn main(cli: Cli) -> i32 {
    crate::progress::set_verbose(cli.global.verbose);
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            let usage = err.downcast_ref::<UsageError>().is_some()
                || matches!(
                    err.downcast_ref::<EnvError>(),
                    Some(EnvError::InvalidName { .. } | EnvError::Unknown { .. })
                );
            eprintln!("error: {err:#}");
            if usage {
                2
            } else {
                1
            }
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<i32> {
    // `secrets init` works outside a checkout (a new operator's first step).
    if let Command::Secrets(crate::cli::SecretsCommand::Init { keys_file }) = &cli.command {
        return commands::secrets::init(keys_file.as_deref());
    }
    let mut ctx = Ctx::new(cli.global)?;
    match cli.command {
        Command::Bootstrap(a) => commands::infra::bootstrap(&mut ctx, &a.env),
        Command::Init(a) => commands::infra::init(&mut ctx, &a.env),
        Command::Plan(a) => commands::infra::plan(&mut ctx, &a.env),
        Command::Apply(a) => commands::infra::apply(&mut ctx, &a.env),
        Command::Destroy(a) => commands::infra::destroy(&mut ctx, &a.env.env, a.yes),
        Command::Output(a) => commands::infra::output(&mut ctx, &a.env.env, a.name.as_deref()),
        Command::Up(a) => commands::infra::up(&mut ctx, &a.env.env, &a.mqtt),
        Command::Down(a) => commands::infra::down(&mut ctx, &a.env.env, a.yes),
        Command::Deploy(a) => commands::ship::deploy(&mut ctx, &a.env),
        Command::Check(a) => commands::ship::check(&mut ctx, &a.env),
        Command::Verify(a) => commands::ship::verify(&mut ctx, &a.env.env, &a.mqtt),
        Command::Status(a) => commands::host::status(&mut ctx, &a.env),
        Command::Logs(a) => commands::host::logs(&mut ctx, &a),
        Command::Ssh(a) => commands::host::ssh(&mut ctx, &a.env.env, &a.command),
        Command::Stop(a) => commands::instance::stop(&mut ctx, &a.env.env, a.shelve),
        Command::Start(a) => commands::instance::start(&mut ctx, &a.env),
        Command::State(a) => commands::instance::state(&mut ctx, &a.env),
        Command::Db(DbCommand::Stop(a)) => commands::db::stop(&mut ctx, &a.env.env, a.yes),
        Command::Db(DbCommand::Start(a)) => commands::db::start(&mut ctx, &a.env.env, a.yes),
        Command::RebootTest(a) => commands::reboot::run(&mut ctx, &a),
        Command::Secrets(s) => commands::secrets::run(&mut ctx, s),
    }
}
