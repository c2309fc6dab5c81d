//! Reaching an environment's instance: its Terraform outputs, the SSH target built from them
//! and the global SSH options, the host key pinned before the first connection, and the
//! wait loops (SSH up, cloud-init finished).

use std::time::Duration;

use anyhow::Context as _;

use crate::app::Ctx;
use crate::credentials::Creds;
use crate::env::Environment;
use crate::progress::Step;
use crate::remote::known_hosts::{self, KnownHostsError};
use crate::remote::wait::{wait_for_marker, wait_for_ssh};
use crate::remote::{SshTarget, WaitPolicy};
use crate::terraform::TfOutputs;

/// What commands that talk to the host need.
pub struct Session {
    pub env: Environment,
    pub creds: Creds,
    pub outputs: TfOutputs,
    pub target: SshTarget,
    /// The bundle's directory on the host.
    pub remote_dir: String,
}

impl Session {
    /// `cd <remote_dir> && <sudo>docker compose <args>`.
    pub fn compose(&self, args: &str) -> String {
        format!(
            "cd {} && {}docker compose {args}",
            crate::remote::ssh::quote(&self.remote_dir),
            self.target.sudo()
        )
    }
}

pub fn open(ctx: &mut Ctx, name: &str) -> anyhow::Result<Session> {
    let env = ctx.env(name)?;
    let (creds, outputs) = ctx.outputs(&env)?;
    let ssh = &ctx.global.ssh;
    let target = SshTarget {
        user: outputs.ssh_user.clone(),
        host: outputs.public_ipv4.clone(),
        port: ssh.ssh_port,
        identity: ssh.ssh_identity.clone(),
        known_hosts: ssh
            .known_hosts
            .clone()
            .unwrap_or_else(|| env.default_known_hosts()),
        connect_timeout: 5,
    };
    Ok(Session {
        env,
        creds,
        outputs,
        target,
        remote_dir: ssh.remote_dir.clone(),
    })
}

/// Makes sure the env's known_hosts pins the instance's host key: already there, given with
/// `--host-key`, or read from the instance's console output (cloud-init prints it).
pub fn pin_host_key(ctx: &Ctx, s: &Session) -> anyhow::Result<()> {
    let t = &s.target;
    if known_hosts::is_pinned(&t.known_hosts, &t.host, t.port) {
        return Ok(());
    }
    let step = Step::start(format!("pin the SSH host key of {}", t.host));
    let keys = match &ctx.global.ssh.host_key {
        Some(k) => vec![known_hosts::normalize_key(k)?],
        None => {
            step.progress("reading the instance's console output");
            let console = console_output(&s.creds, &s.outputs)
                .context("cannot read the console output to learn the host key; pass --host-key")?;
            known_hosts::keys_from_console(&console)
        }
    };
    if keys.is_empty() {
        return Err(KnownHostsError::NoKey {
            host: t.host.clone(),
        }
        .into());
    }
    known_hosts::pin(&t.known_hosts, &t.host, t.port, &keys)?;
    step.done_with(&format!(
        "pinned {} key(s) in {}",
        keys.len(),
        t.known_hosts.display()
    ));
    Ok(())
}

fn console_output(creds: &Creds, outputs: &TfOutputs) -> anyhow::Result<String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let nova = crate::openstack::Nova::login(creds, &outputs.openstack_region).await?;
        Ok(nova.console(&outputs.instance_id).await?)
    })
}

pub fn ssh_policy(ctx: &Ctx) -> WaitPolicy {
    WaitPolicy {
        tries: ctx.global.ssh.ssh_tries,
        interval: Duration::from_secs_f64(ctx.global.ssh.ssh_interval.max(0.0)),
    }
}

pub fn marker_policy(ctx: &Ctx) -> WaitPolicy {
    WaitPolicy {
        tries: ctx.global.ssh.marker_tries,
        interval: Duration::from_secs_f64(ctx.global.ssh.marker_interval.max(0.0)),
    }
}

/// Pins the host key, then waits for SSH and for the cloud-init marker.
pub fn wait_ready(ctx: &Ctx, s: &Session) -> anyhow::Result<()> {
    pin_host_key(ctx, s)?;
    let step = Step::start(format!("wait for SSH on {}", s.target.display()));
    wait_for_ssh(&s.target, ssh_policy(ctx), &step, &ctx.redactor)?;
    step.done();
    let step = Step::start("wait for cloud-init to finish");
    wait_for_marker(
        &s.target,
        &ctx.global.ssh.marker_path,
        marker_policy(ctx),
        &step,
        &ctx.redactor,
    )?;
    step.done();
    Ok(())
}
