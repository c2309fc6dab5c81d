//! Verifying a deployed environment from outside, the way a user and a tracker see it:
//! HTTPS answers with a valid certificate for the env's domains, the ingest reports ready,
//! and an MQTT publish from a test device is acknowledged and lands in the database.

use std::time::Duration;

use crate::app::Ctx;
use crate::commands::session::Session;
use crate::contract::INGEST_HTTP_PORT;
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

/// Publishes a few points as a fresh test device and waits until the database has them all.
async fn mqtt_to_db(ctx: &Ctx, s: &Session) -> Result<String, String> {
    let device_prefix = format!("verify-{}-", std::process::id());
    let mut cfg = fleet::FleetConfig::new(s.outputs.mqtt_domain.clone(), 1883);
    cfg.prefix = device_prefix.clone();
    cfg.devices = 1;
    cfg.max_points = Some(3);
    cfg.rate_per_device = 5.0;
    if let Some(p) = s.creds.get("TEST_DEVICE_PASSWORD") {
        cfg.credentials = fleet::Credentials::SharedPassword(p.to_owned());
    }
    let fleet = fleet::Fleet::start(cfg).map_err(|e| e.to_string())?;
    let waited = fleet.wait_all_acked(Duration::from_secs(30)).await;
    let report = fleet.stop(Duration::from_secs(5)).await;
    if let Err(e) = waited {
        return Err(format!(
            "MQTT publish to {}:1883 not acknowledged: {e}",
            s.outputs.mqtt_domain
        ));
    }
    let want = report.acked.len();
    let sql = format!("SELECT count(*) FROM positions WHERE device_id LIKE '{device_prefix}%';");
    for _ in 0..15 {
        let rows = crate::remote_sql::query(s, &ctx.redactor, &sql).map_err(|e| e.to_string())?;
        let got: usize = rows.first().and_then(|r| r.parse().ok()).unwrap_or(0);
        if got >= want {
            return Ok(format!("{want} acknowledged points found in the database"));
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    Err(format!(
        "{want} points were acknowledged but not all reached the database within 30 s. Next: `deployer logs <env> ingest`"
    ))
}

pub fn run(ctx: &Ctx, s: &Session) -> anyhow::Result<Report> {
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
    let step = Step::start("MQTT publish lands in the database");
    report.add("MQTT to database", rt.block_on(mqtt_to_db(ctx, s)));
    step.done();
    Ok(report)
}
