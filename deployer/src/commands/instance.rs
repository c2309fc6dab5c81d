//! stop, start, state: the compute instance's power through Nova. `stop --shelve` also stops
//! compute billing (a stopped instance is still billed); `start` unshelves when needed.

use std::time::Duration;

use crate::app::Ctx;
use crate::credentials::Creds;
use crate::openstack::{Action, Nova};
use crate::progress::Step;
use crate::terraform::TfOutputs;

/// How long a power action may take before the deployer gives up waiting.
const ACTION_TIMEOUT: Duration = Duration::from_secs(600);

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// Runs a power action and waits for its end state.
pub async fn power(
    creds: &Creds,
    outputs: &TfOutputs,
    action: Action,
    step: &Step,
) -> anyhow::Result<String> {
    let nova = Nova::login(creds, &outputs.openstack_region).await?;
    nova.action(&outputs.instance_id, action).await?;
    let s = nova
        .wait_for(
            &outputs.instance_id,
            action.target_status(),
            ACTION_TIMEOUT,
            |s| step.progress(&format!("{} {}", s.status, s.task.as_deref().unwrap_or(""))),
        )
        .await?;
    Ok(s.status)
}

pub fn stop(ctx: &mut Ctx, name: &str, shelve: bool) -> anyhow::Result<i32> {
    let env = ctx.env(name)?;
    let (creds, outputs) = ctx.outputs(&env)?;
    let action = if shelve { Action::Shelve } else { Action::Stop };
    let step = Step::start(format!("{action:?} {}", outputs.instance_name));
    let status = runtime()?.block_on(power(&creds, &outputs, action, &step))?;
    step.done_with(&status);
    if !shelve {
        println!("note: a stopped instance is still billed; `deployer stop {name} --shelve` stops compute billing");
    }
    Ok(0)
}

pub fn start(ctx: &mut Ctx, name: &str) -> anyhow::Result<i32> {
    let env = ctx.env(name)?;
    let (creds, outputs) = ctx.outputs(&env)?;
    let rt = runtime()?;
    let current = rt.block_on(async {
        let nova = Nova::login(&creds, &outputs.openstack_region).await?;
        anyhow::Ok(nova.state(&outputs.instance_id).await?)
    })?;
    let action = match current.status.as_str() {
        "ACTIVE" => {
            println!("{} is already running", outputs.instance_name);
            return Ok(0);
        }
        "SHELVED" | "SHELVED_OFFLOADED" => Action::Unshelve,
        _ => Action::Start,
    };
    let step = Step::start(format!("{action:?} {}", outputs.instance_name));
    let status = rt.block_on(power(&creds, &outputs, action, &step))?;
    step.done_with(&status);
    Ok(0)
}

pub fn state(ctx: &mut Ctx, name: &str) -> anyhow::Result<i32> {
    let env = ctx.env(name)?;
    let (creds, outputs) = ctx.outputs(&env)?;
    let s = runtime()?.block_on(async {
        let nova = Nova::login(&creds, &outputs.openstack_region).await?;
        anyhow::Ok(nova.state(&outputs.instance_id).await?)
    })?;
    println!(
        "{} ({}): {}{}",
        outputs.instance_name,
        outputs.public_ipv4,
        s.status,
        s.task.map(|t| format!(" [{t}]")).unwrap_or_default()
    );
    Ok(0)
}
