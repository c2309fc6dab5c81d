//! SQL against an environment's managed database from its instance (the database is on the
//! private network only): `psql` in a throwaway container, with `DATABASE_URL` and the CA
//! taken from the deployed `.env` and `db-ca.pem`, so no secret crosses the command line.

use crate::commands::session::Session;
use crate::redact::Redactor;
use crate::remote::ssh::quote;
use crate::remote::SshError;

/// Pinned psql image used on the host.
pub const PSQL_IMAGE: &str = "postgres:17-alpine";

/// The remote shell script that runs the SQL fed on stdin and prints unaligned, tuples-only rows.
pub fn script(remote_dir: &str, sudo: &str) -> String {
    let sudo_env = sudo_keeping_url(sudo);
    format!(
        "set -e; cd {d}; set -a; eval \"$({sudo}cat ./.env)\"; set +a; \
         {sudo_env}docker run --rm -i --network host -e DATABASE_URL \
         -v \"$PWD/db-ca.pem:/run/secrets/db-ca.pem:ro\" {PSQL_IMAGE} \
         sh -c 'psql \"$DATABASE_URL\" -v ON_ERROR_STOP=1 -X -q -t -A -F , -f -'",
        d = quote(remote_dir),
    )
}

/// `sudo` resets the environment: keep DATABASE_URL for `docker run -e DATABASE_URL`.
pub fn sudo_keeping_url(sudo: &str) -> &'static str {
    if sudo.is_empty() {
        ""
    } else {
        "sudo -n --preserve-env=DATABASE_URL "
    }
}

/// Runs `sql` (fed on stdin) and returns the rows as `a,b` lines.
pub fn query(s: &Session, redactor: &Redactor, sql: &str) -> Result<Vec<String>, SshError> {
    let out = s.target.run_with(
        &script(&s.remote_dir, s.target.sudo()),
        Some(sql.as_bytes().to_vec()),
        redactor,
        |_| {},
    )?;
    Ok(out
        .stdout
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_survives_sudo_and_never_appears_in_the_command() {
        let root = script("/opt/accoreboot", "");
        assert!(
            root.contains("eval \"$(cat ./.env)\"") && root.contains(" docker run"),
            "{root}"
        );
        let user = script("/opt/accoreboot", "sudo -n ");
        assert!(user.contains("eval \"$(sudo -n cat ./.env)\""), "{user}");
        assert!(
            user.contains("sudo -n --preserve-env=DATABASE_URL docker run"),
            "{user}"
        );
        assert!(!user.contains("postgres://"));
    }
}
