//! db stop / db start: OVH cannot stop a managed database, so "stop" dumps it to the env's
//! Object Storage bucket and destroys it (billing stops), and "start" recreates it, restores
//! the newest dump and redeploys. The ingest keeps acknowledging into its WAL meanwhile and
//! drains into the new database once it is back.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;

use crate::app::{confirm, Ctx, UsageError};
use crate::commands::session::{self, Session};
use crate::contract::DB_TOGGLE_VAR;
use crate::dump_store::DumpStore;
use crate::progress::Step;
use crate::remote::ssh::quote;
use crate::remote_sql::PSQL_IMAGE;

/// Environments whose database must never be switched off this way.
const PROTECTED: &[&str] = &["prod"];

fn guard(name: &str) -> anyhow::Result<()> {
    if PROTECTED.contains(&name) {
        return Err(UsageError(format!(
            "refusing to stop or start the database of {name}: only non-production envs (preprod) can"
        ))
        .into());
    }
    Ok(())
}

/// `docker run` of the psql image with the deployed `.env`'s DATABASE_URL and CA.
fn pg_tool(s: &Session, tool_cmd: &str) -> String {
    format!(
        "set -e; cd {d}; set -a; eval \"$({sudo}cat ./.env)\"; set +a; \
         {sudo_env}docker run --rm -i --network host -e DATABASE_URL \
         -v \"$PWD/db-ca.pem:/run/secrets/db-ca.pem:ro\" {PSQL_IMAGE} sh -c {c}",
        d = quote(&s.remote_dir),
        sudo = s.target.sudo(),
        sudo_env = crate::remote_sql::sudo_keeping_url(s.target.sudo()),
        c = quote(tool_cmd),
    )
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

fn toggle(ctx: &mut Ctx, s: &Session, on: bool) -> anyhow::Result<()> {
    let tf = ctx
        .terraform(&s.env, &s.creds)?
        .with_args(["-var".to_owned(), format!("{DB_TOGGLE_VAR}={on}")]);
    let step = Step::start(format!(
        "terraform apply {DB_TOGGLE_VAR}={on} ({})",
        if on {
            "create the database"
        } else {
            "destroy the database"
        }
    ));
    tf.apply(&step)?;
    step.done();
    Ok(())
}

pub fn stop(ctx: &mut Ctx, name: &str, yes: bool) -> anyhow::Result<i32> {
    guard(name)?;
    let s = session::open(ctx, name)?;
    if s.outputs.database.is_none() {
        println!("the database of {name} is already stopped");
        return Ok(0);
    }
    confirm(
        &format!("This dumps the database of {name} to Object Storage, then destroys it"),
        name,
        yes,
    )?;
    session::wait_ready(ctx, &s)?;
    let store = DumpStore::for_env(&s.creds, name)?;
    let tmp = tempfile::tempdir().context("cannot create a temporary directory")?;
    let local = tmp.path().join("db.dump");

    let step = Step::start("stop the services that need the database (the ingest keeps buffering)");
    s.target
        .run(&s.compose("stop backend powersync"), &ctx.redactor)
        .context("cannot stop backend and powersync")?;
    step.done();

    let step = Step::start("pg_dump over SSH");
    s.target
        .run_files(
            &pg_tool(
                &s,
                "pg_dump --format=custom --no-owner --no-privileges \"$DATABASE_URL\"",
            ),
            None,
            Some(&local),
            &ctx.redactor,
        )
        .context("pg_dump failed; nothing was destroyed. Next: `deployer status <env>`")?;
    let size = std::fs::metadata(&local).map(|m| m.len()).unwrap_or(0);
    if size == 0 {
        anyhow::bail!("pg_dump produced an empty file; nothing was destroyed");
    }
    step.done_with(&format!("{size} bytes"));

    let step = Step::start("upload the dump to Object Storage");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let key = store.new_key(now);
    runtime()?
        .block_on(store.upload(&local, &key))
        .context("upload failed; nothing was destroyed")?;
    step.done_with(&key);

    toggle(ctx, &s, false)?;
    println!("database of {name} stopped; dump kept at {key}. `deployer db start {name}` brings it back.");
    Ok(0)
}

pub fn start(ctx: &mut Ctx, name: &str, yes: bool) -> anyhow::Result<i32> {
    guard(name)?;
    let env = ctx.env(name)?;
    let creds = ctx.creds(&env)?;
    let store = DumpStore::for_env(&creds, name)?;
    let rt = runtime()?;
    let latest = rt.block_on(store.latest())?;
    confirm(
        &format!(
            "This recreates the database of {name} and restores {}",
            latest
                .as_deref()
                .unwrap_or("nothing (no dump found: empty database)")
        ),
        name,
        yes,
    )?;
    {
        let tf = ctx.terraform(&env, &creds)?;
        let step = Step::start("check the Terraform version");
        tf.check_version(&step)?;
        step.done();
    }
    let pre = session::open(ctx, name)?;
    toggle(ctx, &pre, true)?;
    let s = session::open(ctx, name)?;
    let db = s
        .outputs
        .database
        .as_ref()
        .context("the database outputs are still empty after apply")?;
    session::wait_ready(ctx, &s)?;
    if let Some(key) = latest {
        // The new database's .env and CA first, so that pg_restore reaches it.
        let image = s
            .creds
            .get("INGEST_IMAGE")
            .map(|i| crate::bundle::IngestImage::Pull(i.to_owned()))
            .unwrap_or(crate::bundle::IngestImage::BuildOnHost {
                tag: "accoreboot-ingest:restore".into(),
            });
        let env_text = crate::bundle::render_env(name, &s.creds, &s.outputs, &image)?;
        let step = Step::start("write the new database's address and CA to the host");
        let dir = s.remote_dir.trim_end_matches('/');
        s.target.write_file(
            &format!("{dir}/.env.restore"),
            env_text.as_bytes(),
            0o600,
            &ctx.redactor,
        )?;
        s.target.write_file(
            &format!("{dir}/{}", crate::contract::DB_CA_FILE),
            db.ca_certificate.as_bytes(),
            0o644,
            &ctx.redactor,
        )?;
        step.done();

        let tmp = tempfile::tempdir()?;
        let local = tmp.path().join("db.dump");
        let step = Step::start(format!("download {key}"));
        let n = rt.block_on(store.download(&key, &local))?;
        step.done_with(&format!("{n} bytes"));

        let step = Step::start("pg_restore over SSH");
        let restore = pg_tool(
            &s,
            "pg_restore --no-owner --no-privileges --exit-on-error -d \"$DATABASE_URL\"",
        )
        .replace("cat ./.env)", "cat ./.env.restore)");
        s.target
            .run_files(&restore, Some(&local), None, &ctx.redactor)
            .context("pg_restore failed: the new database is up but incomplete. Next: check the dump, then `deployer db start <env>` again")?;
        step.done();
    } else {
        println!("no dump found: the new database starts empty (the ingest creates the schema)");
    }
    crate::commands::ship::deploy(ctx, name)?;
    println!("database of {name} started; the ingest now drains its WAL into it");
    Ok(0)
}
