//! The one place the deployer calls `deployer::secrets`: decrypt `credentials/common.enc.env`
//! and `credentials/<env>.enc.env` into [`Creds`].

use anyhow::Context as _;

use crate::credentials::Creds;
use crate::env::Project;

/// Decrypts the common and the env's credentials (age identities found like sops does).
pub fn load(project: &Project, env: &str) -> anyhow::Result<Creds> {
    let ids = crate::secrets::load_identities().context(
        "no age identity to decrypt the credentials: set SOPS_AGE_KEY_FILE, or run `deployer secrets init` and ask a teammate to re-encrypt for your public key",
    )?;
    let secrets = crate::secrets::load_env(&project.credentials_dir(), env, &ids)
        .with_context(|| format!("cannot decrypt the credentials of {env:?}"))?;
    Ok(Creds::from_pairs(
        secrets.iter().map(|(k, v)| (k.to_owned(), v.to_owned())),
    ))
}
