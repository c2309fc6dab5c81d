//! `ingest device add|list|disable|enable|rotate-secret`: account administration from the
//! command line. Applies the schema first. A new secret goes to standard output once and
//! nowhere else (never to the log).

use std::io::Write;

use anyhow::Context;

use crate::auth::{Kind, Registry};
use crate::config::{redact_url, DeviceAction, DeviceArgs};

/// Runs one administration command, writing its answer to `out`.
pub async fn run(args: DeviceArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let db = &args.db;
    let pool = crate::db::pool(&db.database_url, db.database_ca.as_deref(), 1)?;
    {
        let mut client = pool.get().await.with_context(|| {
            format!(
                "cannot connect to {}: is the database up and the URL right?",
                redact_url(&db.database_url)
            )
        })?;
        let opts = crate::schema::SchemaOptions {
            chunk_interval: db.chunk_interval,
        };
        crate::schema::migrate(&mut client, &opts)
            .await
            .context("applying the database schema")?;
    }
    let registry = Registry::new(pool);
    match args.action {
        DeviceAction::Add { id, service } => {
            let kind = if service { Kind::Service } else { Kind::Device };
            let secret = registry
                .add(&id, kind)
                .await
                .with_context(|| format!("cannot add {kind} {id:?}"))?;
            writeln!(out, "added {kind} {id}")?;
            writeln!(out, "secret: {secret}")?;
            writeln!(out, "(shown only now: give it to the {kind} as its MQTT password; it cannot be read back)")?;
        }
        DeviceAction::List => {
            let devices = registry.list().await.context("cannot list accounts")?;
            writeln!(
                out,
                "{:<40} {:<8} {:<8} {:<25} LAST SEEN",
                "ID", "KIND", "ENABLED", "CREATED"
            )?;
            for d in &devices {
                let seen = d
                    .last_seen_at
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_else(|| "never".into());
                writeln!(
                    out,
                    "{:<40} {:<8} {:<8} {:<25} {seen}",
                    d.device_id,
                    d.kind,
                    d.enabled,
                    d.created_at.to_rfc3339()
                )?;
            }
            writeln!(out, "{} account(s)", devices.len())?;
        }
        DeviceAction::Disable { id } => {
            registry
                .set_enabled(&id, false)
                .await
                .with_context(|| format!("cannot disable {id:?}"))?;
            writeln!(out, "disabled {id} (its sessions close within seconds)")?;
        }
        DeviceAction::Enable { id } => {
            registry
                .set_enabled(&id, true)
                .await
                .with_context(|| format!("cannot enable {id:?}"))?;
            writeln!(out, "enabled {id}")?;
        }
        DeviceAction::RotateSecret { id } => {
            let secret = registry
                .rotate(&id)
                .await
                .with_context(|| format!("cannot rotate the secret of {id:?}"))?;
            writeln!(out, "new secret for {id}: {secret}")?;
            writeln!(
                out,
                "(shown only now; sessions using the old secret close within seconds)"
            )?;
        }
    }
    Ok(())
}
