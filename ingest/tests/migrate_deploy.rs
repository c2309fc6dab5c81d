//! `ingest migrate` as the compose bundle runs it at every deploy, against the local
//! TimescaleDB (`scripts/local-db start`, or `DATABASE_URL`): PowerSync's read grant
//! (`--powersync-role`), the service account (`--service-account`) and the probe device
//! (`--probe-device`) ensured from secrets in the environment or a file, then those accounts
//! logging in to the real broker (the probe device publishing to its own topic, the point
//! landing in `positions`). Every run of the binary is checked for the secrets in its output,
//! with trace logging on.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use tokio_postgres::{Client, NoTls};

fn admin_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| {
        "postgres://accoreboot:accoreboot@127.0.0.1:55432/accoreboot".to_string()
    })
}

fn unique(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

async fn connect(url: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await.unwrap_or_else(|e| {
        panic!("cannot reach the test database ({e}): start it with `scripts/local-db start` or set DATABASE_URL")
    });
    tokio::spawn(conn);
    client
}

/// A database and the roles created for one test; dropped when the test ends, even on panic.
struct World {
    db: String,
    url: String,
    roles: Vec<String>,
}

impl World {
    async fn new() -> World {
        let admin = connect(&admin_url()).await;
        let db = unique("t_");
        admin
            .batch_execute(&format!("CREATE DATABASE {db}"))
            .await
            .unwrap();
        let base = admin_url().rsplit_once('/').unwrap().0.to_owned();
        World {
            url: format!("{base}/{db}"),
            db,
            roles: Vec::new(),
        }
    }

    async fn client(&self) -> Client {
        connect(&self.url).await
    }

    /// Creates a role (cluster-wide) that is dropped with the world.
    async fn role(&mut self, name: &str, attributes: &str) {
        let admin = connect(&admin_url()).await;
        let sql: String = admin
            .query_one(
                "SELECT format('CREATE ROLE %I ' || $2::text, $1::text)",
                &[&name, &attributes],
            )
            .await
            .unwrap()
            .get(0);
        admin.batch_execute(&sql).await.unwrap();
        self.roles.push(name.to_owned());
    }

    fn migrate(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_ingest"));
        c.arg("migrate")
            .env_clear()
            .env("INGEST_DATABASE_URL", &self.url)
            .env("INGEST_LOG", "trace");
        c
    }

    fn device(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_ingest"))
            .arg("device")
            .args(args)
            .env_clear()
            .env("INGEST_DATABASE_URL", &self.url)
            .env("INGEST_LOG", "warn")
            .output()
            .unwrap()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let (db, roles) = (self.db.clone(), std::mem::take(&mut self.roles));
        // Drop cannot await: clean up on a thread with its own runtime.
        let cleanup = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let admin = connect(&admin_url()).await;
                let _ = admin
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
                    .await;
                for r in roles {
                    let sql: String = admin
                        .query_one("SELECT format('DROP ROLE IF EXISTS %I', $1::text)", &[&r])
                        .await
                        .unwrap()
                        .get(0);
                    let _ = admin.batch_execute(&sql).await;
                }
            });
        });
        let _ = cleanup.join();
    }
}

/// Runs the command; returns (success, stdout + stderr) and asserts no secret leaked.
fn run(mut cmd: Command, secrets: &[&str]) -> (bool, String) {
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for s in secrets {
        assert!(!text.contains(s), "the secret leaked:\n{text}");
    }
    (out.status.success(), text)
}

async fn can_select(client: &Client, role: &str, table: &str) -> bool {
    client
        .query_one(
            "SELECT has_table_privilege($1::text, $2::text, 'SELECT')",
            &[&role, &table],
        )
        .await
        .unwrap()
        .get(0)
}

async fn stored(client: &Client, id: &str) -> Option<(String, bool, String)> {
    client
        .query_opt(
            "SELECT kind, enabled, secret_hash FROM devices WHERE device_id = $1",
            &[&id],
        )
        .await
        .unwrap()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
}

fn verifies(secret: &str, hash: &str) -> bool {
    ingest::auth::verify_secret(secret, hash).unwrap()
}

// ------------------------------------------------------------------------------------------
// PowerSync's grant.

#[tokio::test]
async fn powersync_role_gets_select_on_the_published_tables_only() {
    let mut w = World::new().await;
    // A name that needs quoting, and no REPLICATION attribute (a warning, not an error).
    let role = unique("ps \"odd\" ");
    w.role(&role, "NOLOGIN").await;
    let c = w.client().await;

    let mut cmd = w.migrate();
    cmd.args(["--powersync-role", &role]);
    let (ok, out) = run(cmd, &[]);
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!(
            "PowerSync role {role} may read public.device_latest"
        )),
        "{out}"
    );
    assert!(
        out.contains("REPLICATION"),
        "the missing attribute is reported: {out}"
    );
    assert!(can_select(&c, &role, "public.device_latest").await);
    // Nothing beyond the publication: certainly not the secret hashes or the raw payloads.
    for other in ["public.devices", "public.rejects", "public.positions"] {
        assert!(!can_select(&c, &role, other).await, "{other} readable");
    }

    // Idempotent, through the environment as compose sets it; a replication role is quiet.
    let ps = unique("ps_");
    w.role(&ps, "NOLOGIN REPLICATION").await;
    for _ in 0..2 {
        let mut cmd = w.migrate();
        cmd.env("INGEST_POWERSYNC_ROLE", &ps);
        let (ok, out) = run(cmd, &[]);
        assert!(ok, "{out}");
        assert!(!out.contains("REPLICATION attribute"), "{out}");
    }
    assert!(can_select(&c, &ps, "public.device_latest").await);
}

#[tokio::test]
async fn powersync_role_that_does_not_exist_is_a_clear_error() {
    let w = World::new().await;
    let missing = unique("nobody_");
    let mut cmd = w.migrate();
    cmd.args(["--powersync-role", &missing]);
    let (ok, out) = run(cmd, &[]);
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!("no role \"{missing}\"")) && out.contains("INGEST_POWERSYNC_ROLE"),
        "{out}"
    );
    // The schema itself was applied before the grant failed: the next deploy only needs the role.
    let c = w.client().await;
    let n: i64 = c
        .query_one("SELECT count(*) FROM schema_migrations", &[])
        .await
        .unwrap()
        .get(0);
    assert!(n >= 2);

    // A name PostgreSQL cannot hold is refused before any database work (unreachable URL).
    let mut cmd = w.migrate();
    cmd.env("INGEST_DATABASE_URL", "postgres://x@127.0.0.1:1/none")
        .args(["--powersync-role", &"r".repeat(64)]);
    let (ok, out) = run(cmd, &[]);
    assert!(!ok);
    assert!(out.contains("invalid PowerSync role name"), "{out}");
    assert!(!out.contains("cannot connect"), "{out}");
}

#[tokio::test]
async fn a_publication_without_tables_is_refused() {
    let mut w = World::new().await;
    let role = unique("ps_");
    w.role(&role, "NOLOGIN").await;
    let (ok, out) = run(w.migrate(), &[]);
    assert!(ok, "{out}");
    w.client()
        .await
        .batch_execute("ALTER PUBLICATION powersync DROP TABLE device_latest")
        .await
        .unwrap();
    let mut cmd = w.migrate();
    cmd.args(["--powersync-role", &role]);
    let (ok, out) = run(cmd, &[]);
    assert!(!ok, "{out}");
    assert!(out.contains("lists no table"), "{out}");
}

// ------------------------------------------------------------------------------------------
// The service account.

#[tokio::test]
async fn service_account_is_created_kept_and_replaced_from_the_environment() {
    let w = World::new().await;
    let c = w.client().await;
    let first = ingest::auth::generate_secret();
    let second = ingest::auth::generate_secret();
    let ensure = |secret: &str| {
        let mut cmd = w.migrate();
        cmd.env("INGEST_SERVICE_ACCOUNT", "backend")
            .env("INGEST_SERVICE_ACCOUNT_SECRET", secret);
        run(cmd, &[&first, &second])
    };

    let (ok, out) = ensure(&first);
    assert!(ok, "{out}");
    assert!(out.contains("service account backend: created"), "{out}");
    let (kind, enabled, hash) = stored(&c, "backend").await.unwrap();
    assert_eq!((kind.as_str(), enabled), ("service", true));
    assert!(verifies(&first, &hash));

    // Every deploy runs it again: the same secret writes nothing.
    let (ok, out) = ensure(&first);
    assert!(ok, "{out}");
    assert!(out.contains("service account backend: unchanged"), "{out}");
    assert_eq!(stored(&c, "backend").await.unwrap().2, hash);

    // A new secret in the credentials replaces the old one.
    let (ok, out) = ensure(&second);
    assert!(ok, "{out}");
    assert!(
        out.contains("service account backend: secret replaced"),
        "{out}"
    );
    let (_, _, new_hash) = stored(&c, "backend").await.unwrap();
    assert!(verifies(&second, &new_hash) && !verifies(&first, &new_hash));

    // A corrupt stored hash is repaired rather than fatal.
    c.execute(
        "UPDATE devices SET secret_hash = 'garbage' WHERE device_id = 'backend'",
        &[],
    )
    .await
    .unwrap();
    let (ok, out) = ensure(&second);
    assert!(ok, "{out}");
    assert!(out.contains("secret replaced"), "{out}");
    assert!(verifies(&second, &stored(&c, "backend").await.unwrap().2));

    // A disabled account stays disabled (an operator's decision), and says so.
    let d = w.device(&["disable", "backend"]);
    assert!(d.status.success());
    let (ok, out) = ensure(&second);
    assert!(ok, "{out}");
    assert!(out.contains("disabled and stays so"), "{out}");
    assert!(!stored(&c, "backend").await.unwrap().1);
}

#[tokio::test]
async fn service_account_secret_from_a_file() {
    let w = World::new().await;
    let c = w.client().await;
    let secret = ingest::auth::generate_secret();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("backend-secret");
    std::fs::write(&file, format!("{secret}\n")).unwrap();
    let mut cmd = w.migrate();
    cmd.args([
        "--service-account",
        "svc.reader",
        "--service-account-secret-file",
    ])
    .arg(&file);
    let (ok, out) = run(cmd, &[&secret]);
    assert!(ok, "{out}");
    assert!(verifies(
        &secret,
        &stored(&c, "svc.reader").await.unwrap().2
    ));

    // Both a file and the variable: ambiguous, refused.
    let mut cmd = w.migrate();
    cmd.args([
        "--service-account",
        "svc.reader",
        "--service-account-secret-file",
    ])
    .arg(&file)
    .env("INGEST_SERVICE_ACCOUNT_SECRET", &secret);
    let (ok, out) = run(cmd, &[&secret]);
    assert!(!ok);
    assert!(out.contains("given twice"), "{out}");

    // A missing file is named.
    let mut cmd = w.migrate();
    cmd.args([
        "--service-account",
        "svc.reader",
        "--service-account-secret-file",
    ])
    .arg(dir.path().join("nope"));
    let (ok, out) = run(cmd, &[]);
    assert!(!ok);
    assert!(
        out.contains("cannot read the service account secret file"),
        "{out}"
    );
}

#[tokio::test]
async fn broken_service_account_input_is_refused_without_showing_the_secret() {
    let w = World::new().await;
    let c = w.client().await;
    let unreachable = "postgres://x@127.0.0.1:1/none";
    let cases: [(&str, Option<&str>, &str); 5] = [
        ("backend", Some("short-Secret-1"), "at least 24"),
        (
            "backend",
            Some("a-long-enough-secret-with a space"),
            "whitespace",
        ),
        (
            "bad id!",
            Some("a-long-enough-secret-0123456789"),
            "invalid device id",
        ),
        ("backend", None, "has no secret"),
        ("", Some("a-long-enough-secret-0123456789"), "no account"),
    ];
    for (id, secret, want) in cases {
        let mut cmd = w.migrate();
        // Checked before any database work: the URL does not even answer.
        cmd.env("INGEST_DATABASE_URL", unreachable)
            .env("INGEST_SERVICE_ACCOUNT", id);
        if let Some(s) = secret {
            cmd.env("INGEST_SERVICE_ACCOUNT_SECRET", s);
        }
        let (ok, out) = run(cmd, &secret.into_iter().collect::<Vec<_>>());
        assert!(!ok, "{id:?}: {out}");
        assert!(out.contains(want), "{id:?}: expected {want:?} in {out}");
        assert!(!out.contains("cannot connect"), "{out}");
    }

    // A device account is never turned into a service account.
    let d = w.device(&["add", "tracker-7"]);
    assert!(d.status.success());
    let before = stored(&c, "tracker-7").await.unwrap();
    let secret = ingest::auth::generate_secret();
    let mut cmd = w.migrate();
    cmd.env("INGEST_SERVICE_ACCOUNT", "tracker-7")
        .env("INGEST_SERVICE_ACCOUNT_SECRET", &secret);
    let (ok, out) = run(cmd, &[&secret]);
    assert!(!ok);
    assert!(out.contains("is a device account"), "{out}");
    assert_eq!(stored(&c, "tracker-7").await.unwrap(), before);
}

// ------------------------------------------------------------------------------------------
// The ensured account logs in to the real broker (MQTT 3.1.1 on the wire).

fn remaining_length(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let mut b = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            b |= 0x80;
        }
        out.push(b);
        if n == 0 {
            break;
        }
    }
}

fn string(s: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn packet(first: u8, body: Vec<u8>) -> Vec<u8> {
    let mut p = vec![first];
    remaining_length(body.len(), &mut p);
    p.extend(body);
    p
}

/// CONNECT (clean session, username + password); returns the CONNACK return code.
fn connect_mqtt(port: u16, user: &str, password: &str) -> std::io::Result<(TcpStream, u8)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut body = Vec::new();
    string("MQTT", &mut body);
    body.extend_from_slice(&[4, 0xC2, 0, 30]);
    string(&unique("migrate-test-"), &mut body);
    string(user, &mut body);
    string(password, &mut body);
    s.write_all(&packet(0x10, body))?;
    let mut connack = [0u8; 4];
    s.read_exact(&mut connack)?;
    assert_eq!(connack[0], 0x20, "CONNACK expected, got {connack:?}");
    Ok((s, connack[3]))
}

/// SUBSCRIBE at QoS 1; returns the SUBACK return code.
fn subscribe(s: &mut TcpStream, filter: &str) -> u8 {
    let mut body = vec![0, 1];
    string(filter, &mut body);
    body.push(1);
    s.write_all(&packet(0x82, body)).unwrap();
    let mut suback = [0u8; 5];
    s.read_exact(&mut suback).unwrap();
    assert_eq!(suback[0], 0x90, "SUBACK expected, got {suback:?}");
    suback[4]
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The `ingest run` child, killed when the test ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_ingest(url: &str, wal: &Path, mqtt: u16) -> Running {
    let child = Command::new(env!("CARGO_BIN_EXE_ingest"))
        .arg("run")
        .env_clear()
        .env("INGEST_DATABASE_URL", url)
        .env("INGEST_MQTT_LISTEN", format!("127.0.0.1:{mqtt}"))
        .env("INGEST_HTTP_LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("INGEST_WAL_DIR", wal)
        .env("INGEST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Running(child)
}

#[tokio::test]
async fn the_ensured_service_account_logs_in_and_subscribes_to_the_shared_stream() {
    let w = World::new().await;
    let secret = ingest::auth::generate_secret();
    let mut cmd = w.migrate();
    cmd.env("INGEST_SERVICE_ACCOUNT", "backend")
        .env("INGEST_SERVICE_ACCOUNT_SECRET", &secret);
    let (ok, out) = run(cmd, &[&secret]);
    assert!(ok, "{out}");

    let wal = tempfile::tempdir().unwrap();
    let port = free_port();
    let _ingest = start_ingest(&w.url, wal.path(), port);
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut s, code) = loop {
        match connect_mqtt(port, "backend", &secret) {
            Ok(r) => break r,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("the ingest never accepted a connection: {e}"),
        }
    };
    assert_eq!(code, 0, "CONNACK accepted for the service account");
    let granted = subscribe(&mut s, "$share/backend/devices/+/positions");
    assert!(granted <= 1, "shared subscription refused: {granted:#x}");

    // The wrong secret is refused with "bad user name or password".
    let (_, code) = connect_mqtt(port, "backend", &ingest::auth::generate_secret()).unwrap();
    assert_eq!(code, 4);
}

/// PUBLISH at QoS 1 with packet id `pkid`; returns the PUBACK's packet id.
fn publish_qos1(s: &mut TcpStream, topic: &str, pkid: u16, payload: &[u8]) -> u16 {
    let mut body = Vec::new();
    string(topic, &mut body);
    body.extend_from_slice(&pkid.to_be_bytes());
    body.extend_from_slice(payload);
    s.write_all(&packet(0x32, body)).unwrap();
    let mut puback = [0u8; 4];
    s.read_exact(&mut puback).unwrap();
    assert_eq!(puback[0], 0x40, "PUBACK expected, got {puback:?}");
    u16::from_be_bytes([puback[2], puback[3]])
}

/// Connects until the freshly started ingest accepts TCP connections.
async fn connect_when_up(port: u16, user: &str, password: &str) -> (TcpStream, u8) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match connect_mqtt(port, user, password) {
            Ok(r) => return r,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Err(e) => panic!("the ingest never accepted a connection: {e}"),
        }
    }
}

// ------------------------------------------------------------------------------------------
// The probe device (what `deployer verify` publishes as).

#[tokio::test]
async fn probe_device_is_ensured_beside_the_service_account_and_publishes_its_own_position() {
    let w = World::new().await;
    let c = w.client().await;
    let service = ingest::auth::generate_secret();
    let first = ingest::auth::generate_secret();
    let second = ingest::auth::generate_secret();
    // As compose's ingest-migrate runs it: both accounts from the environment.
    let ensure = |probe_secret: &str| {
        let mut cmd = w.migrate();
        cmd.env("INGEST_SERVICE_ACCOUNT", "backend")
            .env("INGEST_SERVICE_ACCOUNT_SECRET", &service)
            .env("INGEST_PROBE_DEVICE", "deployer-probe")
            .env("INGEST_PROBE_DEVICE_SECRET", probe_secret);
        run(cmd, &[&service, &first, &second])
    };
    let (ok, out) = ensure(&first);
    assert!(ok, "{out}");
    assert!(out.contains("service account backend: created"), "{out}");
    assert!(
        out.contains("probe device deployer-probe: created"),
        "{out}"
    );
    let (kind, enabled, hash) = stored(&c, "deployer-probe").await.unwrap();
    assert_eq!((kind.as_str(), enabled), ("device", true));
    assert!(verifies(&first, &hash));
    assert_eq!(stored(&c, "backend").await.unwrap().0, "service");

    let (ok, out) = ensure(&first);
    assert!(ok, "{out}");
    assert!(
        out.contains("probe device deployer-probe: unchanged"),
        "{out}"
    );
    assert_eq!(stored(&c, "deployer-probe").await.unwrap().2, hash);

    let (ok, out) = ensure(&second);
    assert!(ok, "{out}");
    assert!(
        out.contains("probe device deployer-probe: secret replaced")
            && out.contains("service account backend: unchanged"),
        "{out}"
    );

    // The probe logs in with the current secret and publishes to its own topic; the point
    // lands in positions. The replaced secret is refused.
    let wal = tempfile::tempdir().unwrap();
    let port = free_port();
    let _ingest = start_ingest(&w.url, wal.path(), port);
    let (mut s, code) = connect_when_up(port, "deployer-probe", &second).await;
    assert_eq!(code, 0, "CONNACK accepted for the probe device");
    let time_ms: i64 = 1_795_798_800_123;
    let payload = format!(r#"{{"time": {time_ms}, "lat": 48.8566, "lon": 2.3522}}"#);
    assert_eq!(
        publish_qos1(
            &mut s,
            "devices/deployer-probe/positions",
            7,
            payload.as_bytes()
        ),
        7
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n: i64 = c
            .query_one(
                "SELECT count(*) FROM positions WHERE device_id = 'deployer-probe' \
                 AND time = timestamptz 'epoch' + $1::bigint * interval '1 millisecond'",
                &[&time_ms],
            )
            .await
            .unwrap()
            .get(0);
        if n == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the acknowledged point never reached positions"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, code) = connect_mqtt(port, "deployer-probe", &first).unwrap();
    assert_eq!(code, 4, "the old secret is refused as bad credentials");
    // A device account may not read the position stream (it is not the backend).
    let (mut s, _) = connect_mqtt(port, "deployer-probe", &second).unwrap();
    assert_eq!(subscribe(&mut s, "devices/+/positions"), 0x80);
}

#[tokio::test]
async fn broken_probe_device_input_is_refused_without_showing_the_secret() {
    let w = World::new().await;
    let c = w.client().await;
    let unreachable = "postgres://x@127.0.0.1:1/none";
    let good = "a-long-enough-secret-0123456789";
    let cases: [(&[(&str, &str)], &str); 6] = [
        (
            &[("INGEST_PROBE_DEVICE", "deployer-probe")],
            "probe device \"deployer-probe\" has no secret: set INGEST_PROBE_DEVICE_SECRET",
        ),
        (
            &[("INGEST_PROBE_DEVICE_SECRET", good)],
            "a probe device secret is set but no account: set --probe-device",
        ),
        (
            &[
                ("INGEST_PROBE_DEVICE", "deployer-probe"),
                ("INGEST_PROBE_DEVICE_SECRET", "short-Secret-1"),
            ],
            "probe device \"deployer-probe\" is refused: 14 characters, at least 24",
        ),
        (
            &[
                ("INGEST_PROBE_DEVICE", "devices/+/x"),
                ("INGEST_PROBE_DEVICE_SECRET", good),
            ],
            "invalid device id",
        ),
        (
            &[
                ("INGEST_PROBE_DEVICE", "backend"),
                ("INGEST_PROBE_DEVICE_SECRET", good),
                ("INGEST_SERVICE_ACCOUNT", "backend"),
                (
                    "INGEST_SERVICE_ACCOUNT_SECRET",
                    "another-long-enough-secret-0123",
                ),
            ],
            "the service account and the probe device are both \"backend\"",
        ),
        (
            &[
                ("INGEST_PROBE_DEVICE", "deployer-probe"),
                ("INGEST_PROBE_DEVICE_SECRET", good),
                (
                    "INGEST_PROBE_DEVICE_SECRET_FILE",
                    "/nonexistent/probe-secret",
                ),
            ],
            "the probe device secret is given twice",
        ),
    ];
    for (vars, want) in cases {
        let mut cmd = w.migrate();
        // Checked before any database work: the URL does not even answer.
        cmd.env("INGEST_DATABASE_URL", unreachable);
        for (k, v) in vars {
            cmd.env(k, v);
        }
        let secrets: Vec<&str> = vars
            .iter()
            .filter(|(k, _)| k.ends_with("_SECRET"))
            .map(|(_, v)| *v)
            .collect();
        let (ok, out) = run(cmd, &secrets);
        assert!(!ok, "{vars:?}: {out}");
        assert!(out.contains(want), "{vars:?}: expected {want:?} in {out}");
        assert!(!out.contains("cannot connect"), "{out}");
    }

    // The probe is a device: an existing service account of that name is never converted.
    let d = w.device(&["add", "--service", "ops-probe"]);
    assert!(d.status.success(), "{}", String::from_utf8_lossy(&d.stderr));
    let before = stored(&c, "ops-probe").await.unwrap();
    let mut cmd = w.migrate();
    cmd.env("INGEST_PROBE_DEVICE", "ops-probe")
        .env("INGEST_PROBE_DEVICE_SECRET", good);
    let (ok, out) = run(cmd, &[good]);
    assert!(!ok);
    assert!(
        out.contains("\"ops-probe\" is a service account, not a device account: choose another id for the probe device"),
        "{out}"
    );
    assert_eq!(stored(&c, "ops-probe").await.unwrap(), before);

    // A secret from a file works the same way (one trailing line break ignored).
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("probe-secret");
    std::fs::write(&file, format!("{good}\r\n")).unwrap();
    let mut cmd = w.migrate();
    cmd.args([
        "--probe-device",
        "deployer-probe",
        "--probe-device-secret-file",
    ])
    .arg(&file);
    let (ok, out) = run(cmd, &[good]);
    assert!(ok, "{out}");
    assert!(verifies(
        good,
        &stored(&c, "deployer-probe").await.unwrap().2
    ));
}
