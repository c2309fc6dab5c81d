//! reboot-test on a deployed env: the registered probe device (`deployer-probe`, secret
//! TEST_DEVICE_PASSWORD) publishes continuously over the same transport as `verify` (MQTT/TLS
//! on 8883 with the certificate checked for the MQTT domain; plain 1883 only where the env
//! opens it), keeps publishing into its buffer while the instance is down and reconnects
//! with backoff; the rows of its run are read over SSH from the managed database.

use std::time::{Duration, Instant};

use crate::app::{Ctx, UsageError};
use crate::cli::RebootTestArgs;
use crate::commands::session::{self, Session};
use crate::contract::{MQTTS_PORT, MQTT_PORT, PLAIN_MQTT_VAR, PROBE_DEVICE};
use crate::mqtt_probe::{self, Endpoint, Publisher, StreamConfig, Transport, MAX_RATE};
use crate::openstack::Action;
use crate::progress::Step;
use crate::reboot_test::probe_rows_sql;

use super::{phase, rate, settle, DRAIN};

/// Default `--rate` of the probe device (points per second).
const DEFAULT_RATE: f64 = 2.0;
/// Limit of each wait of the probe (connect, TLS handshake, CONNACK, a PUBACK).
const PROBE_TIMEOUT: Duration = Duration::from_secs(15);
/// `--how manual`: how long the operator has to reboot the instance.
const MANUAL_WAIT: Duration = Duration::from_secs(15 * 60);
/// Tries (5 s apart) of the ingest's /readyz after SSH is back.
const READY_TRIES: u32 = 60;

/// How the instance goes down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum How {
    Nova(&'static [Action]),
    Manual,
}

fn how(given: Option<&str>) -> How {
    match given {
        Some("stop-start") => How::Nova(&[Action::Stop, Action::Start]),
        Some("manual") => How::Manual,
        _ => How::Nova(&[Action::SoftReboot]),
    }
}

pub fn run(ctx: &mut Ctx, a: &RebootTestArgs) -> anyhow::Result<i32> {
    // The operator's mistakes are refused before anything is reached.
    if a.devices.is_some() {
        return Err(UsageError(format!(
            "--devices applies to `local`: a deployed env refuses unregistered devices, so the test publishes as its one probe device ({PROBE_DEVICE})"
        ))
        .into());
    }
    let rate = rate(a.rate, DEFAULT_RATE, MAX_RATE)?;
    let plain = a.transport.as_deref() == Some("plain");
    let extra_roots = match &a.probe.mqtt_ca {
        Some(path) => mqtt_probe::read_roots(path).map_err(|e| UsageError(e.to_string()))?,
        None => Vec::new(),
    };
    let how = how(a.how.as_deref());

    let s = session::open(ctx, &a.env)?;
    if plain && !crate::exposure::of_env(s.env.tf_dir())?.plain {
        return Err(UsageError(format!(
            "this env keeps plain MQTT (1883) closed ({PLAIN_MQTT_VAR} = false): use --transport tls"
        ))
        .into());
    }
    let password = s.creds.get("TEST_DEVICE_PASSWORD").ok_or_else(|| {
        anyhow::anyhow!("TEST_DEVICE_PASSWORD is missing: add it with `deployer secrets edit <env>`, then `deployer deploy <env>` (it registers the probe device)")
    })?;
    let domain = &s.outputs.mqtt_domain;
    let endpoint = Endpoint {
        address: if plain {
            a.probe
                .mqtt_address
                .clone()
                .unwrap_or_else(|| format!("{domain}:{MQTT_PORT}"))
        } else {
            a.probe
                .mqtts_address
                .clone()
                .unwrap_or_else(|| format!("{domain}:{MQTTS_PORT}"))
        },
        transport: if plain {
            Transport::Plain
        } else {
            Transport::Tls {
                server_name: domain.clone(),
                extra_roots,
            }
        },
        device_id: PROBE_DEVICE.to_owned(),
        password: password.to_owned(),
        timeout: PROBE_TIMEOUT,
    };
    ready(ctx, &s)?;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let address = endpoint.address.clone();
    let step = Step::start(format!(
        "log in as {PROBE_DEVICE} on {address} ({}) and publish {rate}/s",
        if plain { "plain MQTT" } else { "MQTT/TLS" }
    ));
    let publisher = rt
        .block_on(Publisher::start(StreamConfig::new(endpoint, rate)))
        .map_err(|e| anyhow::anyhow!("the probe cannot publish before the reboot: {e}"))?;
    step.done();
    let line = || publisher.stats().line();

    phase(a.before, "before the reboot", &line);
    let before = publisher.stats();
    if before.acked == 0 {
        let record = rt.block_on(publisher.stop(Duration::from_secs(1)));
        anyhow::bail!(
            "no point was acknowledged before the reboot on {address}: {}. Next: `deployer verify {}`",
            record.stats.last_error.unwrap_or_else(|| "no PUBACK came".into()),
            a.env
        );
    }
    let outage = Instant::now();
    match how {
        How::Nova(actions) => nova(&rt, &s, actions)?,
        How::Manual => wait_for_loss(&publisher, before.lost, &a.env)?,
    }
    ready(ctx, &s)?;
    println!(
        "service back after {}",
        crate::progress::format_elapsed(outage.elapsed())
    );
    phase(a.after, "after the reboot", &line);

    let step = Step::start("stop publishing and collect the last PUBACKs");
    let record = rt.block_on(publisher.stop(DRAIN));
    step.done_with(&format!(
        "{} acked, {} never acked, {} reconnects, {} resent",
        record.acked.len(),
        record.unacked.len(),
        record.stats.sessions.saturating_sub(1),
        record.stats.resent
    ));
    if let Some(why) = &record.stats.gave_up {
        println!("the probe gave up reconnecting: {why}");
    }
    let acked: Vec<fleet::AckedPoint> = record
        .acked
        .iter()
        .map(|t| fleet::AckedPoint {
            device_id: record.device_id.clone(),
            time_ms: *t,
        })
        .collect();
    let (first, last) = record.span.unwrap_or((0, 0));
    let sql = probe_rows_sql(&record.device_id, first, last);
    let verdict = settle(&acked, before.acked, &mut || {
        Ok(crate::remote_sql::query(&s, &ctx.redactor, &sql)?)
    })?;
    println!("{}", verdict.summary());
    // A reboot drops every connection: if the probe's never dropped, nothing was tested.
    let interrupted = record.stats.lost > before.lost;
    if !interrupted {
        println!(
            "FAIL: the probe's connection never dropped, so the instance did not go down as far as MQTT is concerned. Next: `deployer state {}`, and run the test again",
            a.env
        );
    }
    if !verdict.missing.is_empty() {
        let rejects = crate::remote_sql::query(
            &s,
            &ctx.redactor,
            &crate::verify::rejects_sql(&record.device_id),
        )
        .unwrap_or_default();
        if !rejects.is_empty() {
            println!(
                "the ingest rejected some of the probe's points: {}",
                rejects.join("; ")
            );
        }
    }
    Ok(if verdict.passed() && interrupted {
        0
    } else {
        1
    })
}

/// SSH and cloud-init up, then the ingest's /readyz over SSH.
fn ready(ctx: &Ctx, s: &Session) -> anyhow::Result<()> {
    session::wait_ready(ctx, s)?;
    let step = Step::start("wait for the ingest to be ready");
    for n in 1..=READY_TRIES {
        step.progress(&format!("try {n}/{READY_TRIES}"));
        if crate::verify::readyz_over_ssh(ctx, s).is_ok() {
            step.done();
            return Ok(());
        }
        if n < READY_TRIES {
            std::thread::sleep(Duration::from_secs(5));
        }
    }
    anyhow::bail!(
        "the ingest did not become ready within 5 minutes. Next: `deployer logs <env> ingest`"
    )
}

/// Reboots (or stops and starts) the instance through Nova, waiting for each end state.
fn nova(rt: &tokio::runtime::Runtime, s: &Session, actions: &[Action]) -> anyhow::Result<()> {
    for action in actions {
        let step = Step::start(format!("{action:?} the instance"));
        let status = rt.block_on(crate::commands::instance::power(
            &s.creds, &s.outputs, *action, &step,
        ))?;
        step.done_with(&status);
    }
    Ok(())
}

/// `--how manual`: waits until the probe loses its connection (the operator rebooted).
fn wait_for_loss(publisher: &Publisher, lost_before: u32, env: &str) -> anyhow::Result<()> {
    let step = Step::start(format!(
        "reboot the instance now (the OVH console, or `deployer ssh {env} -- sudo reboot`): waiting for the probe to lose the broker"
    ));
    let end = Instant::now() + MANUAL_WAIT;
    while Instant::now() < end {
        let st = publisher.stats();
        if st.lost > lost_before {
            step.done_with(&format!(
                "connection lost: {}",
                st.last_error.unwrap_or_default()
            ));
            return Ok(());
        }
        step.progress(&st.line());
        std::thread::sleep(Duration::from_millis(200));
    }
    anyhow::bail!(
        "the probe kept its connection for {} min: the instance was not rebooted. Run the test again and reboot it while it waits",
        MANUAL_WAIT.as_secs() / 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reboot_methods() {
        assert_eq!(how(None), How::Nova(&[Action::SoftReboot]));
        assert_eq!(how(Some("reboot")), How::Nova(&[Action::SoftReboot]));
        assert_eq!(
            how(Some("stop-start")),
            How::Nova(&[Action::Stop, Action::Start])
        );
        assert_eq!(how(Some("manual")), How::Manual);
    }
}
