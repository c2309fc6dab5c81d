//! Metric names and their descriptions, exported in Prometheus text format on `/metrics`.
//!
//! Names are constants so that the code that records a metric and the docs agree.

use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// MQTT messages by outcome (`stored`, `rejected`, `ignored`, `refused_budget`, `refused_io`, `unauthorized`).
pub const MESSAGES: &str = "ingest_messages_total";
/// Positions by outcome (`accepted`, `rejected`).
pub const POSITIONS: &str = "ingest_positions_total";
/// Rejected points by reason.
pub const REJECTS: &str = "ingest_rejects_total";
/// Time from the publish hook to the record being durable (what the device waits for).
pub const ACK_LATENCY: &str = "ingest_ack_latency_seconds";
/// Bytes of WAL on disk.
pub const WAL_BYTES: &str = "ingest_wal_bytes";
/// WAL bytes not yet written to the database.
pub const WAL_BACKLOG_BYTES: &str = "ingest_wal_backlog_bytes";
/// WAL records not yet written to the database.
pub const WAL_BACKLOG_RECORDS: &str = "ingest_wal_backlog_records";
/// Age of the oldest record not yet in the database.
pub const WAL_BACKLOG_AGE: &str = "ingest_wal_backlog_age_seconds";
/// Records quarantined as corrupt at WAL recovery.
pub const WAL_QUARANTINED: &str = "ingest_wal_quarantined_records_total";
/// Batches committed to the database.
pub const DB_BATCHES: &str = "ingest_db_batches_total";
/// Rows committed, by table.
pub const DB_ROWS: &str = "ingest_db_rows_total";
/// Duration of one batch transaction (COPY + latest + checkpoint + commit).
pub const DB_COMMIT_LATENCY: &str = "ingest_db_commit_seconds";
/// Database errors seen by the writer, by kind.
pub const DB_ERRORS: &str = "ingest_db_errors_total";
/// Seconds since the writer last committed (or since start when it never did).
pub const DB_SINCE_COMMIT: &str = "ingest_db_seconds_since_last_commit";
/// 1 when the database is reachable, 0 otherwise.
pub const DB_UP: &str = "ingest_db_up";
/// MQTT clients connected now.
pub const CONNECTED_CLIENTS: &str = "ingest_mqtt_connected_clients";
/// MQTT connections accepted since start.
pub const CONNECTIONS: &str = "ingest_mqtt_connections_total";

/// MQTT logins by outcome (`allowed`, `bad_credentials`, `disabled`, `unavailable`,
/// `busy` (no argon2 verification slot in time: retry later), `no_credentials`, or the limit
/// that refused it).
pub const AUTH: &str = "ingest_mqtt_auth_total";
/// Queries the device registry made (logins, revocation checks, administration).
pub const AUTH_DB_QUERIES: &str = "ingest_auth_db_queries_total";
/// argon2id verifications of a presented secret (cache misses that reached the hash).
pub const AUTH_VERIFICATIONS: &str = "ingest_auth_verifications_total";
/// Wall time of one argon2id verification (includes the contention of a loaded machine).
pub const AUTH_VERIFY_LATENCY: &str = "ingest_auth_verify_seconds";
/// Publishes and subscriptions refused by the topic ACL, by action and account kind.
pub const ACL_DENIED: &str = "ingest_mqtt_acl_denied_total";
/// Logins and messages refused by a limit (`max_connections`, `connection_rate`, `device_message_rate`).
pub const LIMIT_REFUSALS: &str = "ingest_mqtt_limit_refusals_total";
/// Sessions closed because their account was disabled, removed or its secret rotated.
pub const KICKED: &str = "ingest_mqtt_sessions_kicked_total";
/// TLS certificate reloads, by outcome (`ok`, `error`).
pub const TLS_RELOADS: &str = "ingest_tls_reloads_total";
/// Connections the front gate closed before their CONNACK, by listener and reason (`timeout`:
/// no CONNACK within the handshake timeout; `tls`: failed TLS handshake; `internal`: the
/// broker's loopback listener was unreachable).
pub const HANDSHAKE_FAILURES: &str = "ingest_mqtt_handshake_failures_total";

/// Installs the global recorder and describes every metric; returns the handle that renders them.
pub fn install() -> Result<PrometheusHandle, metrics_exporter_prometheus::BuildError> {
    let handle = PrometheusBuilder::new()
        .set_buckets(&[
            0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ])?
        .install_recorder()?;
    describe();
    Ok(handle)
}

fn describe() {
    describe_counter!(MESSAGES, "MQTT messages received, by outcome");
    describe_counter!(POSITIONS, "Positions decoded, by outcome");
    describe_counter!(REJECTS, "Rejected points, by reason");
    describe_histogram!(
        ACK_LATENCY,
        Unit::Seconds,
        "Publish hook to durable WAL record"
    );
    describe_gauge!(WAL_BYTES, Unit::Bytes, "WAL bytes on disk");
    describe_gauge!(
        WAL_BACKLOG_BYTES,
        Unit::Bytes,
        "WAL bytes not yet in the database"
    );
    describe_gauge!(WAL_BACKLOG_RECORDS, "WAL records not yet in the database");
    describe_gauge!(
        WAL_BACKLOG_AGE,
        Unit::Seconds,
        "Age of the oldest record not yet in the database"
    );
    describe_counter!(
        WAL_QUARANTINED,
        "Corrupt WAL records moved aside at recovery"
    );
    describe_counter!(DB_BATCHES, "Batches committed to the database");
    describe_counter!(DB_ROWS, "Rows committed to the database, by table");
    describe_histogram!(
        DB_COMMIT_LATENCY,
        Unit::Seconds,
        "Batch transaction duration"
    );
    describe_counter!(DB_ERRORS, "Database errors seen by the writer, by kind");
    describe_gauge!(
        DB_SINCE_COMMIT,
        Unit::Seconds,
        "Seconds since the last database commit"
    );
    describe_gauge!(DB_UP, "1 when the database is reachable");
    describe_gauge!(CONNECTED_CLIENTS, "MQTT clients connected");
    describe_counter!(CONNECTIONS, "MQTT connections accepted");
    describe_counter!(AUTH, "MQTT logins, by outcome");
    describe_counter!(AUTH_DB_QUERIES, "Device registry queries");
    describe_counter!(AUTH_VERIFICATIONS, "argon2id secret verifications");
    describe_histogram!(
        AUTH_VERIFY_LATENCY,
        Unit::Seconds,
        "Wall time of one argon2id verification"
    );
    describe_counter!(ACL_DENIED, "Publishes and subscriptions refused by the ACL");
    describe_counter!(LIMIT_REFUSALS, "Logins and messages refused by a limit");
    describe_counter!(KICKED, "Sessions closed by revocation");
    describe_counter!(TLS_RELOADS, "TLS certificate reloads, by outcome");
    describe_counter!(
        HANDSHAKE_FAILURES,
        "Connections closed before their CONNACK, by listener and reason"
    );
}
