//! Verifying a deployed environment from outside, the way a user and a tracker see it:
//! HTTPS answers with a valid certificate for the env's domains, the ingest reports ready,
//! and the registered probe device's MQTT publish (over TLS on 8883 in every env, and over
//! plain 1883 where the env opens it) is acknowledged and lands in the database.

use std::time::Duration;

use crate::app::{Ctx, UsageError};
use crate::cli::MqttProbeArgs;
use crate::commands::session::Session;
use crate::contract::{INGEST_HTTP_PORT, MQTTS_PORT, MQTT_PORT, PROBE_DEVICE};
use crate::mqtt_probe;
use crate::progress::Step;

/// One verification and its outcome.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

#[derive(Debug, Default)]
pub struct Report {
    pub checks: Vec<Check>,
}

impl Report {
    fn add(&mut self, name: impl Into<String>, res: Result<String, String>) {
        let (ok, detail) = match res {
            Ok(d) => (true, d),
            Err(d) => (false, d),
        };
        self.checks.push(Check {
            name: name.into(),
            ok,
            detail,
        });
    }

    pub fn ok(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }

    pub fn print(&self) {
        for c in &self.checks {
            println!(
                "{}  {:<28} {}",
                if c.ok { "ok  " } else { "FAIL" },
                c.name,
                c.detail
            );
        }
        if self.ok() {
            println!("verified: every check passed");
        } else {
            println!("verification failed: see the FAIL lines above");
        }
    }
}

/// GET `url`; any HTTP answer over a valid certificate counts.
pub async fn https_ok(url: &str) -> Result<String, String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .map_err(|e| e.to_string())?;
    match client.get(url).send().await {
        Ok(r) => Ok(format!(
            "HTTP {} with a valid certificate",
            r.status().as_u16()
        )),
        Err(e) => {
            let mut msg = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg = format!("{msg}: {s}");
                src = s.source();
            }
            Err(format!(
                "{msg}. Next: check DNS for the domain and `deployer logs <env> caddy` (ACME)"
            ))
        }
    }
}

/// The ingest's `/readyz` from the host (the port is bound to 127.0.0.1 there).
pub fn readyz_over_ssh(ctx: &Ctx, s: &Session) -> Result<String, String> {
    let cmd =
        format!("curl -sS -m 5 -w '\\n%{{http_code}}' http://127.0.0.1:{INGEST_HTTP_PORT}/readyz");
    match s.target.probe(&cmd, &ctx.redactor) {
        Ok(out) => {
            let text = out.stdout.trim();
            let (body, code) = text.rsplit_once('\n').unwrap_or(("", text));
            if code == "200" {
                Ok("ready".into())
            } else {
                Err(format!(
                    "/readyz answered {code}: {}. Next: `deployer logs <env> ingest`",
                    body.chars().take(300).collect::<String>()
                ))
            }
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Points the probe publishes per transport.
const PROBE_POINTS: usize = 3;
/// Limit of each wait of the probe (connect, TLS handshake, CONNACK, PUBACKs).
const PROBE_TIMEOUT: Duration = Duration::from_secs(15);
/// How often, and how many times, the database is asked for the acknowledged points.
const DB_TRIES: u32 = 15;
const DB_INTERVAL: Duration = Duration::from_secs(2);

/// A SQL string literal.
fn sql_text(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// How many of the probe's points (by time, epoch ms) are in `positions`.
pub fn found_sql(device: &str, times_ms: &[i64]) -> String {
    let times: Vec<String> = times_ms
        .iter()
        .map(|t| format!("timestamptz 'epoch' + {t} * interval '1 millisecond'"))
        .collect();
    format!(
        "SELECT count(DISTINCT time) FROM positions WHERE device_id = {} AND time IN ({});",
        sql_text(device),
        times.join(", ")
    )
}

/// The probe's latest rejects (reason and the start of the detail), if the ingest refused
/// its points.
pub fn rejects_sql(device: &str) -> String {
    format!(
        "SELECT reason || ': ' || left(detail, 200) FROM rejects WHERE device_id = {} \
         AND received_at > now() - interval '10 minutes' ORDER BY id DESC LIMIT 3;",
        sql_text(device)
    )
}

/// The MQTT probe for one transport, as configured from the session and the options.
fn probe(
    s: &Session,
    opts: &MqttProbeArgs,
    extra_roots: &[rustls::pki_types::CertificateDer<'static>],
    tls: bool,
) -> Result<mqtt_probe::Probe, String> {
    let password = s.creds.get("TEST_DEVICE_PASSWORD").ok_or_else(|| {
        "TEST_DEVICE_PASSWORD is missing: add it with `deployer secrets edit <env>`, then `deployer deploy <env>` (it registers the probe device)".to_owned()
    })?;
    let domain = &s.outputs.mqtt_domain;
    let (address, transport) = if tls {
        (
            opts.mqtts_address
                .clone()
                .unwrap_or_else(|| format!("{domain}:{MQTTS_PORT}")),
            mqtt_probe::Transport::Tls {
                server_name: domain.clone(),
                extra_roots: extra_roots.to_vec(),
            },
        )
    } else {
        (
            opts.mqtt_address
                .clone()
                .unwrap_or_else(|| format!("{domain}:{MQTT_PORT}")),
            mqtt_probe::Transport::Plain,
        )
    };
    Ok(mqtt_probe::Probe {
        endpoint: mqtt_probe::Endpoint {
            address,
            transport,
            device_id: PROBE_DEVICE.to_owned(),
            password: password.to_owned(),
            timeout: PROBE_TIMEOUT,
        },
        points: PROBE_POINTS,
    })
}

/// Publishes a few points as the probe device and waits until the database has them all.
async fn mqtt_to_db(ctx: &Ctx, s: &Session, probe: mqtt_probe::Probe) -> Result<String, String> {
    let delivery = mqtt_probe::publish(&probe)
        .await
        .map_err(|e| e.to_string())?;
    let want = delivery.times_ms.len();
    let ep = &probe.endpoint;
    let sql = found_sql(&ep.device_id, &delivery.times_ms);
    let mut got = 0;
    for n in 1..=DB_TRIES {
        let rows = crate::remote_sql::query(s, &ctx.redactor, &sql).map_err(|e| e.to_string())?;
        got = rows.first().and_then(|r| r.parse().ok()).unwrap_or(0);
        if got >= want {
            return Ok(format!(
                "{want} points acknowledged on {} as {} and found in the database",
                ep.address, ep.device_id
            ));
        }
        if n < DB_TRIES {
            tokio::time::sleep(DB_INTERVAL).await;
        }
    }
    let rejects =
        crate::remote_sql::query(s, &ctx.redactor, &rejects_sql(&ep.device_id)).unwrap_or_default();
    let secs = DB_TRIES * DB_INTERVAL.as_secs() as u32;
    if rejects.is_empty() {
        Err(format!(
            "{want} points were acknowledged but only {got} reached the database within {secs} s. Next: `deployer logs <env> ingest` (is the database writer stalled?)"
        ))
    } else {
        Err(format!(
            "{want} points were acknowledged but only {got} are in positions; the ingest rejected the probe's points: {}. Next: is this machine's clock right?",
            rejects.join("; ")
        ))
    }
}

pub fn run(ctx: &Ctx, s: &Session, opts: &MqttProbeArgs) -> anyhow::Result<Report> {
    // Broken options are the operator's mistake: refuse before any check runs.
    let extra_roots = match &opts.mqtt_ca {
        Some(path) => mqtt_probe::read_roots(path).map_err(|e| UsageError(e.to_string()))?,
        None => Vec::new(),
    };
    let exposure = crate::exposure::of_env(s.env.tf_dir())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut report = Report::default();
    for (what, domain) in [
        ("HTTPS api", &s.outputs.api_domain),
        ("HTTPS powersync", &s.outputs.powersync_domain),
    ] {
        let step = Step::start(format!("{what}: https://{domain}/"));
        let res = rt.block_on(https_ok(&format!("https://{domain}/")));
        step.done();
        report.add(what, res);
    }
    let step = Step::start("ingest /readyz");
    report.add("ingest ready", readyz_over_ssh(ctx, s));
    step.done();
    let mut transports = vec![("MQTT/TLS to database", true)];
    if exposure.plain {
        transports.push(("MQTT plain to database", false));
    }
    for (what, tls) in transports {
        let step = Step::start(format!("{what}: publish as {PROBE_DEVICE}"));
        let res = match probe(s, opts, &extra_roots, tls) {
            Ok(p) => rt.block_on(mqtt_to_db(ctx, s, p)),
            Err(e) => Err(e),
        };
        step.done();
        report.add(what, res);
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_queries_name_its_exact_points() {
        let sql = found_sql("deployer-probe", &[1_795_798_800_123, 1_795_798_801_123]);
        assert_eq!(
            sql,
            "SELECT count(DISTINCT time) FROM positions WHERE device_id = 'deployer-probe' AND time IN \
             (timestamptz 'epoch' + 1795798800123 * interval '1 millisecond', \
             timestamptz 'epoch' + 1795798801123 * interval '1 millisecond');"
        );
        assert!(found_sql("o'brien", &[1]).contains("device_id = 'o''brien'"));
        assert!(rejects_sql("deployer-probe")
            .contains("FROM rejects WHERE device_id = 'deployer-probe'"));
    }
}
