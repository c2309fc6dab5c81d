//! ssh (a shell or one command on the instance), status (every service's health, from
//! outside and over SSH) and logs (a compose service's logs).

use std::time::Duration;

use crate::app::{Ctx, UsageError};
use crate::commands::session;
use crate::contract::{MQTTS_PORT, MQTT_PORT, PLAIN_MQTT_VAR};
use crate::progress::Step;
use crate::remote::ssh::quote;

pub fn ssh(ctx: &mut Ctx, name: &str, command: &[String]) -> anyhow::Result<i32> {
    let s = session::open(ctx, name)?;
    session::pin_host_key(ctx, &s)?;
    let remote = if command.is_empty() {
        None
    } else {
        Some(
            command
                .iter()
                .map(|w| quote(w))
                .collect::<Vec<_>>()
                .join(" "),
        )
    };
    let code = if remote.is_some() && !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        // Non-interactive use (scripts, tests): plain ssh, output passed through.
        let out = s
            .target
            .probe(remote.as_deref().unwrap_or("true"), &ctx.redactor)?;
        print!("{}", out.stdout);
        eprint!("{}", ctx.redactor.redact(&out.stderr));
        out.status.code().unwrap_or(1)
    } else {
        s.target
            .interactive(remote.as_deref())
            .run_interactive(&ctx.redactor)?
    };
    Ok(code)
}

fn valid_service(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

pub fn logs(ctx: &mut Ctx, a: &crate::cli::LogsArgs) -> anyhow::Result<i32> {
    if !valid_service(&a.service) {
        return Err(UsageError(format!(
            "invalid service name {:?}: use the compose service name (ingest, caddy, backend, powersync...)",
            a.service
        ))
        .into());
    }
    let s = session::open(ctx, &a.env.env)?;
    session::pin_host_key(ctx, &s)?;
    let args = format!(
        "logs --no-color --tail {}{} {}",
        a.tail,
        if a.follow { " --follow" } else { "" },
        quote(&a.service)
    );
    let code = if a.follow {
        s.target
            .interactive(Some(&s.compose(&args)))
            .run_interactive(&ctx.redactor)?
    } else {
        let out = s.target.run(&s.compose(&args), &ctx.redactor)?;
        print!("{}", out.stdout);
        0
    };
    Ok(code)
}

/// One line of `docker compose ps --format json` (one JSON object per line, or an array
/// in older compose versions).
#[derive(Debug, serde::Deserialize)]
pub(crate) struct PsLine {
    #[serde(rename = "Service")]
    pub service: String,
    #[serde(rename = "State")]
    pub state: String,
    #[serde(rename = "Health", default)]
    health: String,
    #[serde(rename = "ExitCode", default)]
    exit_code: i64,
}

pub(crate) fn parse_ps(text: &str) -> Vec<PsLine> {
    let text = text.trim();
    if text.starts_with('[') {
        return serde_json::from_str(text).unwrap_or_default();
    }
    text.lines()
        .filter_map(|l| serde_json::from_str(l.trim()).ok())
        .collect()
}

/// Is this container fine? One-shot jobs may have exited with 0.
fn healthy(p: &PsLine) -> bool {
    match p.state.as_str() {
        "running" => p.health.is_empty() || p.health == "healthy",
        "exited" => p.exit_code == 0 && p.service.ends_with("-migrate"),
        _ => false,
    }
}

pub fn status(ctx: &mut Ctx, name: &str) -> anyhow::Result<i32> {
    let s = session::open(ctx, name)?;
    session::pin_host_key(ctx, &s)?;
    let mut all_ok = true;
    let mut line = |ok: bool, what: &str, detail: &str| {
        all_ok &= ok;
        println!("{}  {what:<28} {detail}", if ok { "ok  " } else { "FAIL" });
    };

    println!("from outside:");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    for (what, domain) in [
        ("https api", &s.outputs.api_domain),
        ("https powersync", &s.outputs.powersync_domain),
    ] {
        match rt.block_on(crate::verify::https_ok(&format!("https://{domain}/"))) {
            Ok(d) => line(true, what, &d),
            Err(e) => line(false, what, &e),
        }
    }
    // Every open port must answer; a port the env keeps closed must not.
    let exposure = crate::exposure::of_env(s.env.tf_dir())?;
    for (what, port, open) in [
        ("mqtt tcp 1883", MQTT_PORT, exposure.plain),
        ("mqtt tls 8883", MQTTS_PORT, true),
    ] {
        let addr = format!("{}:{port}", s.outputs.mqtt_domain);
        let res = rt.block_on(async {
            tokio::time::timeout(
                Duration::from_secs(5),
                tokio::net::TcpStream::connect(&addr),
            )
            .await
        });
        let answer = match res {
            Ok(Ok(_)) => Ok(format!("{addr} accepts connections")),
            Ok(Err(e)) => Err(format!("{addr}: {e}")),
            Err(_) => Err(format!("{addr}: no answer in 5 s")),
        };
        match (answer, open) {
            (Ok(d), true) => line(true, what, &d),
            (Err(e), true) => line(false, what, &e),
            (Ok(d), false) => line(
                false,
                what,
                &format!("{d}, but this env keeps it closed ({PLAIN_MQTT_VAR} = false): check the security group"),
            ),
            (Err(_), false) => line(
                true,
                what,
                &format!("closed, as this env wants ({PLAIN_MQTT_VAR} = false)"),
            ),
        }
    }

    println!("over SSH ({}):", s.target.display());
    let step = Step::start("docker compose ps");
    let ps = s
        .target
        .probe(&s.compose("ps --all --format json"), &ctx.redactor)?;
    step.done();
    if !ps.status.success() {
        line(
            false,
            "compose project",
            &format!(
                "not running: {}. Next: `deployer deploy {name}`",
                ctx.redactor.redact(ps.stderr.trim())
            ),
        );
    } else {
        let services = parse_ps(&ps.stdout);
        if services.is_empty() {
            line(
                false,
                "compose project",
                "no containers. Next: `deployer deploy <env>`",
            );
        }
        for p in &services {
            let detail = if p.health.is_empty() {
                p.state.clone()
            } else {
                format!("{} ({})", p.state, p.health)
            };
            line(healthy(p), &format!("service {}", p.service), &detail);
        }
    }
    match crate::verify::readyz_over_ssh(ctx, &s) {
        Ok(d) => line(true, "ingest /readyz", &d),
        Err(e) => line(false, "ingest /readyz", &e),
    }
    Ok(if all_ok { 0 } else { 1 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_lines_and_health() {
        let text = r#"{"Service":"ingest","State":"running","Health":"healthy","ExitCode":0}
{"Service":"ingest-migrate","State":"exited","Health":"","ExitCode":0}
{"Service":"caddy","State":"restarting","Health":"","ExitCode":1}
not json"#;
        let ps = parse_ps(text);
        assert_eq!(ps.len(), 3);
        assert_eq!(
            ps.iter().map(healthy).collect::<Vec<_>>(),
            [true, true, false]
        );
        let arr = r#"[{"Service":"backend","State":"running","Health":"unhealthy"}]"#;
        assert!(!healthy(&parse_ps(arr)[0]));
    }

    #[test]
    fn service_names_are_checked() {
        assert!(valid_service("ingest-migrate"));
        assert!(!valid_service("x; rm -rf /"));
        assert!(!valid_service(""));
    }
}
