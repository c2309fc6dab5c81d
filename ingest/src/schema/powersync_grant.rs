//! Read access for PowerSync: `GRANT SELECT` to PowerSync's database role on every table of
//! the `powersync` publication (what PowerSync replicates), checked afterwards with
//! `has_table_privilege`. Idempotent; `ingest migrate --powersync-role` runs it at every deploy.

use thiserror::Error;

/// Name of the publication PowerSync reads (PowerSync requires exactly this name).
pub const PUBLICATION: &str = "powersync";

/// PostgreSQL truncates identifiers to this many bytes (NAMEDATALEN - 1).
const MAX_IDENTIFIER_BYTES: usize = 63;

#[derive(Debug, Error)]
pub enum GrantError {
    #[error("invalid PowerSync role name {0:?}: give 1-63 bytes without NUL (the database user PowerSync connects as)")]
    InvalidRole(String),
    #[error("the database has no role {0:?}: create PowerSync's database user first (Terraform's managed_db module creates `powersync` on OVH), or fix --powersync-role / INGEST_POWERSYNC_ROLE")]
    RoleMissing(String),
    #[error("the database has no publication `{PUBLICATION}`: run `ingest migrate` without --powersync-role first")]
    NoPublication,
    #[error("the publication `{PUBLICATION}` lists no table: nothing for PowerSync to read")]
    NoTables,
    #[error("cannot grant SELECT on {table} to {role:?}: {source} (the user running `ingest migrate` must own the table)")]
    Grant {
        table: String,
        role: String,
        source: tokio_postgres::Error,
    },
    #[error("the grant of SELECT on {table} to {role:?} had no effect: the user running `ingest migrate` must own the table (or hold SELECT WITH GRANT OPTION)")]
    NotGranted { role: String, table: String },
    #[error("role {role:?} still cannot read {table} after the grant: it needs USAGE on schema {schema:?} (as the schema's owner: GRANT USAGE ON SCHEMA {schema} TO {role})")]
    NoSchemaUsage {
        role: String,
        schema: String,
        table: String,
    },
    #[error("database error while granting PowerSync's access: {0}")]
    Db(#[from] tokio_postgres::Error),
}

/// What [`grant_powersync`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Granted {
    /// `schema.table` of every table the role may now read, sorted.
    pub tables: Vec<String>,
    /// Whether the role has the REPLICATION attribute PowerSync's logical replication needs
    /// (not granted here: on OVH it is the user's `replication` role, set by Terraform).
    pub replication: bool,
}

/// Checks a role name before any database work.
pub fn check_role_name(role: &str) -> Result<(), GrantError> {
    if role.is_empty() || role.len() > MAX_IDENTIFIER_BYTES || role.contains('\0') {
        return Err(GrantError::InvalidRole(role.to_owned()));
    }
    Ok(())
}

/// Grants `role` SELECT on every table of the `powersync` publication, in one transaction,
/// and verifies the role can read each of them. Run it after [`super::migrate`].
pub async fn grant_powersync(
    client: &mut tokio_postgres::Client,
    role: &str,
) -> Result<Granted, GrantError> {
    check_role_name(role)?;
    let tx = client.transaction().await?;
    let replication: bool = match tx
        .query_opt(
            "SELECT rolreplication FROM pg_roles WHERE rolname = $1",
            &[&role],
        )
        .await?
    {
        Some(row) => row.get(0),
        None => return Err(GrantError::RoleMissing(role.to_owned())),
    };
    let has_publication = tx
        .query_opt(
            "SELECT 1 FROM pg_publication WHERE pubname = $1",
            &[&PUBLICATION],
        )
        .await?
        .is_some();
    if !has_publication {
        return Err(GrantError::NoPublication);
    }
    let rows = tx
        .query(
            "SELECT schemaname::text, tablename::text FROM pg_publication_tables
             WHERE pubname = $1 ORDER BY 1, 2",
            &[&PUBLICATION],
        )
        .await?;
    if rows.is_empty() {
        return Err(GrantError::NoTables);
    }
    let mut tables = Vec::with_capacity(rows.len());
    for row in rows {
        let schema: String = row.get(0);
        let table: String = row.get(1);
        let qualified = format!("{schema}.{table}");
        // The server quotes the identifiers (format's %I), whatever characters they hold.
        let sql: String = tx
            .query_one(
                "SELECT format('GRANT SELECT ON TABLE %I.%I TO %I', $1::text, $2::text, $3::text)",
                &[&schema, &table, &role],
            )
            .await?
            .get(0);
        tx.batch_execute(&sql)
            .await
            .map_err(|source| GrantError::Grant {
                table: qualified.clone(),
                role: role.to_owned(),
                source,
            })?;
        let row = tx
            .query_one(
                "SELECT has_table_privilege($1::text, format('%I.%I', $2::text, $3::text), 'SELECT'),
                        has_schema_privilege($1::text, $2::text, 'USAGE')",
                &[&role, &schema, &table],
            )
            .await?;
        let (select, usage): (bool, bool) = (row.get(0), row.get(1));
        if !select {
            return Err(GrantError::NotGranted {
                role: role.to_owned(),
                table: qualified,
            });
        }
        if !usage {
            return Err(GrantError::NoSchemaUsage {
                role: role.to_owned(),
                schema,
                table: qualified,
            });
        }
        tables.push(qualified);
    }
    tx.commit().await?;
    Ok(Granted {
        tables,
        replication,
    })
}
