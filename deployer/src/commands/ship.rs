//! deploy (ship the compose bundle and start it), check (what deploy would change, changing
//! nothing) and verify (from outside: HTTPS, ingest readiness, an MQTT point in the database).

use std::collections::BTreeMap;

use anyhow::Context as _;

use crate::app::Ctx;
use crate::bundle::{self, Bundle, IngestImage};
use crate::commands::session::{self, Session};
use crate::process::Cmd;
use crate::progress::Step;
use crate::remote::ssh::quote;

/// The ingest image: pinned in the credentials (`INGEST_IMAGE`), else built on the host from
/// this checkout's HEAD.
fn ingest_image(ctx: &Ctx, s: &Session) -> anyhow::Result<IngestImage> {
    if let Some(img) = s.creds.get("INGEST_IMAGE") {
        return Ok(IngestImage::Pull(img.to_owned()));
    }
    let out = Cmd::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .cwd(ctx.project.root())
        .run(&ctx.redactor)
        .context("INGEST_IMAGE is not set and this checkout has no git HEAD to build the ingest image from")?;
    Ok(IngestImage::BuildOnHost {
        tag: format!("accoreboot-ingest:{}", out.stdout.trim()),
    })
}

fn render(ctx: &Ctx, s: &Session, image: &IngestImage) -> anyhow::Result<Bundle> {
    Ok(bundle::render(
        &ctx.project.compose_dir(),
        s.env.name(),
        &s.creds,
        &s.outputs,
        image,
    )?)
}

fn remote_path(s: &Session, rel: &str) -> String {
    format!("{}/{rel}", s.remote_dir.trim_end_matches('/'))
}

pub fn deploy(ctx: &mut Ctx, name: &str) -> anyhow::Result<i32> {
    let s = session::open(ctx, name)?;
    let image = ingest_image(ctx, &s)?;
    let bundle = render(ctx, &s, &image)?;
    session::wait_ready(ctx, &s)?;

    let step = Step::start(format!(
        "upload the compose bundle to {}:{}",
        s.target.host, s.remote_dir
    ));
    for f in &bundle.files {
        step.progress(&f.path);
        s.target
            .write_file(&remote_path(&s, &f.path), &f.content, f.mode, &ctx.redactor)
            .with_context(|| format!("uploading {}", f.path))?;
    }
    step.done_with(&format!("uploaded {} files", bundle.files.len()));

    if let IngestImage::BuildOnHost { tag } = &image {
        build_on_host(ctx, &s, tag)?;
    }

    let step = Step::start("docker compose up -d");
    let pull = match image {
        IngestImage::Pull(_) => "always",
        IngestImage::BuildOnHost { .. } => "missing",
    };
    s.target
        .run_with(
            &s.compose(&format!("up -d --remove-orphans --pull {pull}")),
            None,
            &ctx.redactor,
            |l| step.progress(l),
        )
        .context("docker compose up failed. Next: `deployer logs <env> <service>` and `deployer status <env>`")?;
    step.done();
    println!("deployed {name}: https://{}", s.outputs.api_domain);
    Ok(0)
}

/// Ships `git archive HEAD` to the host and builds the ingest image there.
fn build_on_host(ctx: &Ctx, s: &Session, tag: &str) -> anyhow::Result<()> {
    let step = Step::start(format!("build {tag} on the host"));
    let archive = Cmd::new("git")
        .args(["archive", "--format=tar", "HEAD"])
        .cwd(ctx.project.root())
        .run(&ctx.redactor)
        .context("git archive failed")?;
    let src = remote_path(s, "build/src");
    let sudo = s.target.sudo();
    let script = format!(
        "set -e; {sudo}rm -rf {d}; {sudo}mkdir -p {d}; {sudo}tar -x -C {d}; cd {d}; {sudo}docker build -f compose/ingest.Dockerfile -t {t} .",
        d = quote(&src),
        t = quote(tag)
    );
    s.target
        .run_with(
            &script,
            Some(archive.stdout.into_bytes()),
            &ctx.redactor,
            |l| step.progress(l),
        )
        .context(
            "building the ingest image on the host failed; or set INGEST_IMAGE to a pinned image",
        )?;
    step.done();
    Ok(())
}

/// KEY -> value of a `.env` text (single-quoted values unquoted).
fn env_keys(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            let v = v.trim();
            let v = v
                .strip_prefix('\'')
                .and_then(|v| v.strip_suffix('\''))
                .unwrap_or(v);
            (k.trim().to_owned(), v.to_owned())
        })
        .collect()
}

pub fn check(ctx: &mut Ctx, name: &str) -> anyhow::Result<i32> {
    let s = session::open(ctx, name)?;
    let image = ingest_image(ctx, &s)?;
    let bundle = render(ctx, &s, &image)?;
    session::pin_host_key(ctx, &s)?;
    let step = Step::start("compare the bundle with the host");
    let listing: Vec<String> = bundle.files.iter().map(|f| quote(&f.path)).collect();
    let script = format!(
        "cd {d} 2>/dev/null || exit 0; for f in {files}; do if [ -e \"$f\" ]; then {sudo}sha256sum \"$f\"; fi; done",
        d = quote(&s.remote_dir),
        files = listing.join(" "),
        sudo = s.target.sudo()
    );
    let out = s.target.run(&script, &ctx.redactor)?;
    let remote: BTreeMap<String, String> = out
        .stdout
        .lines()
        .filter_map(|l| l.split_once("  "))
        .map(|(h, f)| (f.trim().to_owned(), h.trim().to_owned()))
        .collect();
    step.done();
    let mut changes = 0;
    for f in &bundle.files {
        let local = bundle::sha256_hex(&f.content);
        let state = match remote.get(&f.path) {
            None => "new",
            Some(h) if *h == local => "unchanged",
            Some(_) => "changed",
        };
        if state != "unchanged" {
            changes += 1;
        }
        println!("{state:>10}  {}", f.path);
        if state == "changed" && f.secret {
            // Name the keys that differ, never their values.
            let now = s
                .target
                .read_file(&remote_path(&s, &f.path), &ctx.redactor)?
                .unwrap_or_default();
            let (old, new) = (
                env_keys(&now),
                env_keys(&String::from_utf8_lossy(&f.content)),
            );
            let keys: Vec<&str> = new
                .keys()
                .chain(old.keys())
                .filter(|k| old.get(*k) != new.get(*k))
                .map(String::as_str)
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            println!("            keys that would change: {}", keys.join(", "));
        }
    }
    let ps = s
        .target
        .probe(&s.compose("ps --all --format json"), &ctx.redactor)?;
    if ps.status.success() {
        println!("services now on the host:");
        for p in crate::commands::host::parse_ps(&ps.stdout) {
            println!("            {} {}", p.service, p.state);
        }
    } else {
        println!("no compose project running on the host yet");
    }
    println!(
        "{changes} file(s) would change; deploy would then run `docker compose up -d` (image {}).",
        image.reference()
    );
    Ok(0)
}

pub fn verify(ctx: &mut Ctx, name: &str, mqtt: &crate::cli::MqttProbeArgs) -> anyhow::Result<i32> {
    let s = session::open(ctx, name)?;
    session::pin_host_key(ctx, &s)?;
    let report = crate::verify::run(ctx, &s, mqtt)?;
    report.print();
    Ok(if report.ok() { 0 } else { 1 })
}
