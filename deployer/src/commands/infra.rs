//! Terraform verbs: bootstrap, init, plan, apply, destroy, output, and the composites
//! up (init + apply + deploy + verify) and down (destroy + local cleanup).

use anyhow::Context as _;

use crate::app::{confirm, Ctx, UsageError};
use crate::contract::TF_BOOTSTRAP_OUTPUTS;
use crate::progress::Step;
use crate::terraform::{outputs, Terraform};

fn checked(ctx: &mut Ctx, name: &str) -> anyhow::Result<(crate::env::Environment, Terraform)> {
    let env = ctx.env(name)?;
    let creds = ctx.creds(&env)?;
    let tf = ctx.terraform(&env, &creds)?;
    let step = Step::start("check the Terraform version");
    let v = tf.check_version(&step)?;
    step.done_with(&format!("terraform {v}"));
    Ok((env, tf))
}

pub fn bootstrap(ctx: &mut Ctx, name: &str) -> anyhow::Result<i32> {
    let env = ctx.env(name)?;
    let creds = ctx.creds(&env)?;
    let state_dir = crate::env::config_dir().join("bootstrap");
    std::fs::create_dir_all(&state_dir)
        .with_context(|| format!("cannot create {}", state_dir.display()))?;
    restrict_dir(&state_dir)?;
    let state = state_dir.join(format!("{name}.tfstate"));
    let tf = Terraform::new(
        ctx.project.bootstrap_dir(),
        creds.bootstrap_env(name)?,
        ctx.redactor.clone(),
    )
    .with_args([format!("-state={}", state.display())]);
    let step = Step::start("check the Terraform version");
    tf.check_version(&step)?;
    step.done();
    let step = Step::start("terraform init (bootstrap, local state)");
    tf.init(&step)?;
    step.done();
    let step = Step::start(format!("create the state bucket of {name}"));
    tf.apply(&step)?;
    step.done();
    let step = Step::start("read the bootstrap outputs");
    let json = crate::process::Cmd::new("terraform")
        .arg(format!("-chdir={}", tf.dir().display()))
        .args(["output", "-json", &format!("-state={}", state.display())])
        .run(&ctx.redactor)?
        .stdout;
    step.done();
    let v: serde_json::Value =
        serde_json::from_str(&json).context("bootstrap outputs are not JSON")?;
    println!("State bucket of {name} is ready. Put these into credentials/{name}.enc.env with `deployer secrets edit {name}`:");
    for out in TF_BOOTSTRAP_OUTPUTS {
        let value = v
            .get(out)
            .and_then(|o| o.get("value"))
            .and_then(|v| v.as_str())
            .with_context(|| format!("bootstrap output {out} missing"))?;
        let key = match *out {
            "s3_access_key_id" => "AWS_ACCESS_KEY_ID",
            "s3_secret_access_key" => "AWS_SECRET_ACCESS_KEY",
            other => other,
        };
        println!("  {key}={value}");
    }
    println!(
        "(the bootstrap state with these keys is kept in {})",
        state.display()
    );
    Ok(0)
}

#[cfg(unix)]
fn restrict_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot restrict {}", dir.display()))
}

#[cfg(not(unix))]
fn restrict_dir(_dir: &std::path::Path) -> anyhow::Result<()> {
    Ok(())
}

pub fn init(ctx: &mut Ctx, name: &str) -> anyhow::Result<i32> {
    let (_, tf) = checked(ctx, name)?;
    let step = Step::start(format!("terraform init {name}"));
    tf.init(&step)?;
    step.done();
    Ok(0)
}

pub fn plan(ctx: &mut Ctx, name: &str) -> anyhow::Result<i32> {
    let (_, tf) = checked(ctx, name)?;
    let step = Step::start(format!("terraform plan {name}"));
    let out = tf.plan(&step)?;
    step.done();
    println!("{}", ctx.redactor.redact(&out));
    Ok(0)
}

pub fn apply(ctx: &mut Ctx, name: &str) -> anyhow::Result<i32> {
    let (_, tf) = checked(ctx, name)?;
    let step = Step::start(format!("terraform apply {name}"));
    tf.apply(&step)?;
    step.done();
    Ok(0)
}

pub fn destroy(ctx: &mut Ctx, name: &str, yes: bool) -> anyhow::Result<i32> {
    let (_, tf) = checked(ctx, name)?;
    confirm(
        &format!("This destroys every resource of {name}"),
        name,
        yes,
    )?;
    let step = Step::start(format!("terraform destroy {name}"));
    tf.destroy(&step)?;
    step.done();
    Ok(0)
}

pub fn output(ctx: &mut Ctx, name: &str, only: Option<&str>) -> anyhow::Result<i32> {
    let (_, tf) = checked(ctx, name)?;
    let step = Step::start(format!("terraform output {name}"));
    let parsed = tf.outputs(&step)?;
    step.done();
    if let Some(only) = only {
        let v = parsed.raw.get(only).ok_or_else(|| {
            UsageError(format!(
                "no output {only:?}; known: {}",
                parsed.raw.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })?;
        match v {
            serde_json::Value::String(s) => println!("{s}"),
            other => println!("{other}"),
        }
        return Ok(0);
    }
    // Terraform leaves null outputs out; show them as null (database switched off).
    let mut all = parsed.raw.clone();
    for name in crate::contract::TF_OUTPUTS {
        all.entry(name.to_string())
            .or_insert(serde_json::Value::Null);
    }
    for (k, v) in &all {
        let shown = if outputs::is_sensitive(k) && !v.is_null() {
            "(sensitive: `deployer output <env> <name>` prints it)".to_owned()
        } else {
            match v {
                serde_json::Value::String(s) if s.contains('\n') => {
                    format!("({} lines)", s.lines().count())
                }
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            }
        };
        println!("{k} = {shown}");
    }
    Ok(0)
}

pub fn up(ctx: &mut Ctx, name: &str, mqtt: &crate::cli::MqttProbeArgs) -> anyhow::Result<i32> {
    init(ctx, name)?;
    apply(ctx, name)?;
    crate::commands::ship::deploy(ctx, name)?;
    crate::commands::ship::verify(ctx, name, mqtt)
}

pub fn down(ctx: &mut Ctx, name: &str, yes: bool) -> anyhow::Result<i32> {
    destroy(ctx, name, yes)?;
    let env = ctx.env(name)?;
    let step = Step::start("remove local leftovers");
    // Only the env's own pin file: a --known-hosts file may be shared with other hosts.
    let mut leftovers = vec![env.tf_dir().join(".terraform")];
    if ctx.global.ssh.known_hosts.is_none() {
        leftovers.push(env.default_known_hosts());
    } else {
        step.note("--known-hosts given: its entries are left as they are");
    }
    for path in leftovers {
        let res = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        match res {
            Ok(()) => step.note(&format!("removed {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => step.note(&format!("could not remove {}: {e}", path.display())),
        }
    }
    step.done();
    Ok(0)
}
