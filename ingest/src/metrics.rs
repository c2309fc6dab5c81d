//! Metric names and their descriptions, exported in Prometheus text format on `/metrics`.
//!
//! Names are constants so that the code that records a metric and the docs agree.
//!
//! Histogram samples are buffered by the recorder until something drains them into their
//! buckets. `install` starts that upkeep on a timer of its own, so memory stays flat whether
//! or not (and however rarely) anyone scrapes `/metrics`.

use std::time::Duration;

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
/// Verifications of a presented secret (cache misses that reached the hash), by `scheme`
/// (`hmac-sha256`, `argon2id`).
pub const AUTH_VERIFICATIONS: &str = "ingest_auth_verifications_total";
/// Stored argon2id hashes of generated secrets replaced by the fast scheme at login.
pub const AUTH_REHASHED: &str = "ingest_auth_rehashed_total";
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

/// How often histogram samples are drained into their buckets when nobody scrapes. At 50,000
/// samples a second that bounds the buffer to a few MiB.
pub const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// 1 while a reason for `/readyz` to answer 503 holds, by reason (`broker_not_listening`,
/// `wal_unwritable`, `wal_over_budget`, `database_unreachable`, `descriptors_low`, `draining`).
pub const NOT_READY: &str = "ingest_not_ready";
/// Free bytes on the WAL's volume (what a full disk alert watches).
pub const WAL_VOLUME_FREE: &str = "ingest_wal_volume_free_bytes";
/// The soft open-files limit in force (Prometheus' standard process metric name).
pub const FD_LIMIT: &str = "process_max_fds";
/// Open file descriptors of the process.
pub const FD_OPEN: &str = "process_open_fds";
/// Times the gate stopped accepting MQTT connections because open descriptors reached the
/// reserve kept for the WAL, the database and HTTP.
pub const ACCEPT_PAUSES: &str = "ingest_mqtt_accept_pauses_total";
/// Failed `accept` calls on the public sockets and the HTTP socket, by listener and reason
/// (`descriptors`: EMFILE/ENFILE; `other`).
pub const ACCEPT_ERRORS: &str = "ingest_accept_errors_total";

/// Installs the global recorder, describes every metric and starts the upkeep thread (every
/// [`UPKEEP_EVERY`]); returns the handle that renders them.
pub fn install() -> Result<PrometheusHandle, metrics_exporter_prometheus::BuildError> {
    let handle = PrometheusBuilder::new()
        .set_buckets(&[
            0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ])?
        .install_recorder()?;
    describe();
    start_upkeep(handle.clone(), UPKEEP_EVERY);
    Ok(handle)
}

/// Drains histogram samples every `every` on a thread of its own: it runs even when the async
/// runtime is saturated, and the recorder lives as long as the process.
fn start_upkeep(handle: PrometheusHandle, every: Duration) {
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || loop {
            std::thread::sleep(every);
            handle.run_upkeep();
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the metrics upkeep thread: histogram samples are drained only when /metrics is scraped");
    }
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
    describe_counter!(AUTH_VERIFICATIONS, "Secret verifications, by scheme");
    describe_counter!(
        AUTH_REHASHED,
        "argon2id hashes of generated secrets upgraded at login"
    );
    describe_histogram!(
        AUTH_VERIFY_LATENCY,
        Unit::Seconds,
        "Wall time of one argon2id verification"
    );
    describe_counter!(ACL_DENIED, "Publishes and subscriptions refused by the ACL");
    describe_counter!(LIMIT_REFUSALS, "Logins and messages refused by a limit");
    describe_counter!(KICKED, "Sessions closed by revocation");
    describe_counter!(TLS_RELOADS, "TLS certificate reloads, by outcome");
    describe_gauge!(NOT_READY, "1 while this reason for /readyz to fail holds");
    describe_gauge!(WAL_VOLUME_FREE, Unit::Bytes, "Free bytes on the WAL volume");
    describe_gauge!(FD_LIMIT, "Soft limit of open file descriptors");
    describe_gauge!(FD_OPEN, "Open file descriptors");
    describe_counter!(
        ACCEPT_PAUSES,
        "Times new MQTT connections were held back to keep descriptors in reserve"
    );
    describe_counter!(ACCEPT_ERRORS, "Failed accept calls, by listener and reason");
    describe_counter!(
        HANDSHAKE_FAILURES,
        "Connections closed before their CONNACK, by listener and reason"
    );
}
