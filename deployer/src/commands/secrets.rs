//! secrets edit (decrypt to a private temp file, $EDITOR, re-encrypt for `.sops.yaml`'s
//! recipients), show (names only; one value in clear when asked by name), init (age key).

use anyhow::Context as _;

use crate::app::{Ctx, UsageError};
use crate::cli::SecretsCommand;

pub fn init(keys_file: Option<&std::path::Path>) -> anyhow::Result<i32> {
    let path = match keys_file {
        Some(p) => p.to_path_buf(),
        None => match std::env::var_os("SOPS_AGE_KEY_FILE") {
            Some(p) => p.into(),
            None => dirs::config_dir()
                .context("no config directory: pass --keys-file")?
                .join(crate::secrets::DEFAULT_KEYS_SUBPATH),
        },
    };
    let public = crate::secrets::init_key(&path)?;
    println!("{public}");
    eprintln!(
        "age key in {}. Add the public key above to .sops.yaml's recipients and ask a teammate \
         to re-encrypt the credentials (`deployer secrets edit common`, then each env).",
        path.display()
    );
    Ok(0)
}

pub fn run(ctx: &mut Ctx, cmd: SecretsCommand) -> anyhow::Result<i32> {
    match cmd {
        SecretsCommand::Init { keys_file } => init(keys_file.as_deref()),
        SecretsCommand::Edit { file } => {
            let path = if file == "common" {
                ctx.project
                    .credentials_dir()
                    .join(crate::secrets::COMMON_FILE)
            } else {
                ctx.env(&file)?.credentials_file()
            };
            let ids = crate::secrets::load_identities()?;
            let editor = std::env::var("VISUAL")
                .or_else(|_| std::env::var("EDITOR"))
                .unwrap_or_else(|_| "vi".into());
            let outcome =
                crate::secrets::edit_file(&path, &ctx.project.sops_yaml(), &ids, &editor)?;
            println!("{}: {outcome:?}", path.display());
            Ok(0)
        }
        SecretsCommand::Show { env, name } => {
            let e = ctx.env(&env)?;
            let creds = crate::decrypt::load(&ctx.project, e.name())?;
            match name {
                Some(n) => {
                    let v = creds.get(&n).ok_or_else(|| {
                        UsageError(format!("no credential {n:?} in common or {env}"))
                    })?;
                    println!("{v}");
                }
                None => {
                    for n in creds.names() {
                        let state = if creds.get(n).is_some() {
                            "***"
                        } else {
                            "(empty)"
                        };
                        println!("{n}={state}");
                    }
                    let missing: Vec<&str> = crate::contract::COMMON_CREDENTIALS
                        .iter()
                        .chain(crate::contract::ENV_CREDENTIALS)
                        .filter(|n| creds.get(n).is_none())
                        .copied()
                        .collect();
                    if !missing.is_empty() {
                        eprintln!("missing: {}", missing.join(", "));
                    }
                }
            }
            Ok(0)
        }
    }
}
