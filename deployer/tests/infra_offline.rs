//! Offline checks of the infrastructure code against the deployer contract
//! (`deployer::contract`): nothing here reaches a cloud, a provider registry or Docker.
//!
//! - `terraform/`: every .tf parses (hcl-rs); every environment declares the TF_VARS the
//!   deployer sets and the outputs it reads, wires the same modules, pins Terraform and its
//!   providers, uses the S3 backend with a lock file; no secret-looking literal anywhere.
//! - `compose/`: both compose files validate against the Compose specification schema
//!   (vendored in compose/schema/) after interpolation, use only the .env keys of the contract,
//!   and follow the rules (restart policies, health checks, pinned images, drain time).
//! - `compose/ingest.Dockerfile`, `compose/powersync/`, `credentials/*.example`.
//! - The tools (terraform fmt, shellcheck, caddy, cloud-init) through `scripts/check-infra
//!   --tools-only`; a missing tool fails with what to install.
//!
//! Every check is a function from a directory to a list of findings, so that the broken-input
//! tests below can run it on a damaged copy and assert the finding names what is wrong.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use deployer::contract;

mod common;

/// Root of the repository (the deployer crate lives one level below it).
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("deployer/ has a parent")
        .to_path_buf()
}

/// Fails the test with every finding, one per line.
fn assert_clean(what: &str, findings: &[String]) {
    assert!(
        findings.is_empty(),
        "{what}: {} problem(s):\n  - {}",
        findings.len(),
        findings.join("\n  - ")
    );
}

/// Asserts that some finding mentions every one of `needles`.
fn assert_found(findings: &[String], needles: &[&str]) {
    assert!(
        findings
            .iter()
            .any(|f| needles.iter().all(|n| f.contains(n))),
        "expected a finding mentioning {needles:?}, got:\n  - {}",
        findings.join("\n  - ")
    );
}

/// Copies `src` into `dst` recursively (skipping .terraform caches).
fn copy_tree(src: &Path, dst: &Path) {
    fs::create_dir_all(dst).unwrap();
    for entry in fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == ".terraform" {
            continue;
        }
        let to = dst.join(&name);
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &to);
        } else {
            fs::copy(entry.path(), &to).unwrap();
        }
    }
}

/// A temp copy of the infrastructure parts of the repository.
fn scratch_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = repo_root();
    for sub in ["terraform", "compose", "credentials"] {
        copy_tree(&root.join(sub), &dir.path().join(sub));
    }
    fs::create_dir_all(dir.path().join("scripts")).unwrap();
    fs::copy(
        root.join("scripts/check-infra"),
        dir.path().join("scripts/check-infra"),
    )
    .unwrap();
    dir
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = fs::read_to_string(path).unwrap();
    assert!(
        text.contains(from),
        "{} does not contain {from:?}",
        path.display()
    );
    fs::write(path, text.replacen(from, to, 1)).unwrap();
}

/// Terraform: parsing with hcl-rs and the contract checks.
mod tf {
    use super::*;
    use hcl::{Block, Body, Expression, ObjectKey};

    /// The provider sources every root and module must agree on.
    pub const PROVIDER_SOURCES: &[(&str, &str)] = &[
        ("ovh", "ovh/ovh"),
        ("openstack", "terraform-provider-openstack/openstack"),
        ("cloudflare", "cloudflare/cloudflare"),
    ];

    /// Names that hold a secret when they are given a literal value.
    fn secret_name(name: &str) -> bool {
        let n = name.to_ascii_lowercase();
        if n.contains("public") || n.ends_with("_reset") || n.ends_with("_id") {
            return false;
        }
        ["password", "secret", "token", "_key", "credential"]
            .iter()
            .any(|s| n.contains(s))
    }

    /// A literal that looks like a credential: long, no separators, mixed case and digits.
    fn secret_looking(value: &str) -> bool {
        let v = value.trim();
        v.len() >= 24
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || "+/=_-".contains(c))
            && v.chars().any(|c| c.is_ascii_uppercase())
            && v.chars().any(|c| c.is_ascii_lowercase())
            && v.chars().any(|c| c.is_ascii_digit())
    }

    /// All .tf files of one directory (not recursive), parsed.
    pub struct Dir {
        pub path: PathBuf,
        pub rel: String,
        pub files: Vec<(PathBuf, Body)>,
    }

    impl Dir {
        pub fn load(root: &Path, rel: &str, findings: &mut Vec<String>) -> Dir {
            let path = root.join(rel);
            let mut files = Vec::new();
            let mut names: Vec<PathBuf> = match fs::read_dir(&path) {
                Ok(rd) => rd
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "tf"))
                    .collect(),
                Err(e) => {
                    findings.push(format!("{rel}: cannot read the directory: {e}"));
                    Vec::new()
                }
            };
            names.sort();
            if names.is_empty() && path.exists() {
                findings.push(format!("{rel}: no .tf file"));
            }
            for file in names {
                let text = fs::read_to_string(&file).unwrap_or_default();
                match hcl::parse(&text) {
                    Ok(body) => files.push((file, body)),
                    Err(e) => findings.push(format!("{}: does not parse: {e}", file.display())),
                }
            }
            Dir {
                path,
                rel: rel.to_owned(),
                files,
            }
        }

        pub fn blocks<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Block> + 'a {
            self.files
                .iter()
                .flat_map(|(_, b)| b.blocks())
                .filter(move |b| b.identifier() == kind)
        }

        /// Blocks of one kind by their first label (variable, output, module...).
        pub fn labeled<'a>(&'a self, kind: &'a str) -> BTreeMap<String, &'a Block> {
            self.blocks(kind)
                .filter_map(|b| b.labels().first().map(|l| (l.as_str().to_owned(), b)))
                .collect()
        }
    }

    pub fn attr<'a>(body: &'a Body, key: &str) -> Option<&'a Expression> {
        body.attributes().find(|a| a.key() == key).map(|a| a.expr())
    }

    pub fn attr_str<'a>(body: &'a Body, key: &str) -> Option<&'a str> {
        match attr(body, key) {
            Some(Expression::String(s)) => Some(s.as_str()),
            _ => None,
        }
    }

    fn object_get<'a>(expr: &'a Expression, key: &str) -> Option<&'a Expression> {
        let Expression::Object(obj) = expr else {
            return None;
        };
        obj.iter().find_map(|(k, v)| {
            let name = match k {
                ObjectKey::Identifier(i) => i.as_str().to_owned(),
                ObjectKey::Expression(Expression::String(s)) => s.clone(),
                _ => return None,
            };
            (name == key).then_some(v)
        })
    }

    /// `terraform { required_version, required_providers }` of a root.
    fn check_terraform_block(dir: &Dir, findings: &mut Vec<String>) -> Vec<Block> {
        let blocks: Vec<&Block> = dir.blocks("terraform").collect();
        if blocks.len() != 1 {
            findings.push(format!(
                "{}: expected exactly one terraform block, found {}",
                dir.rel,
                blocks.len()
            ));
            return Vec::new();
        }
        let tf = blocks[0];
        match attr_str(tf.body(), "required_version") {
            Some(v) if v == contract::TF_REQUIRED_VERSION => {}
            Some(v) => findings.push(format!(
                "{}: required_version is {v:?}, the contract says {:?} (1.11.2-1.11.3 cannot write state to OVH)",
                dir.rel,
                contract::TF_REQUIRED_VERSION
            )),
            None => findings.push(format!("{}: required_version is not set", dir.rel)),
        }
        let mut providers = 0;
        for rp in tf
            .body()
            .blocks()
            .filter(|b| b.identifier() == "required_providers")
        {
            for a in rp.body().attributes() {
                providers += 1;
                let name = a.key();
                match object_get(a.expr(), "version") {
                    Some(Expression::String(v)) if v.trim_start().starts_with("~>") => {}
                    Some(_) => findings.push(format!(
                        "{}: provider {name} is not pinned with \"~>\"",
                        dir.rel
                    )),
                    None => findings.push(format!(
                        "{}: provider {name} has no version constraint",
                        dir.rel
                    )),
                }
                check_provider_source(dir, name, a.expr(), findings);
            }
        }
        if providers == 0 {
            findings.push(format!("{}: no required_providers", dir.rel));
        }
        tf.body()
            .blocks()
            .filter(|b| b.identifier() == "backend")
            .cloned()
            .collect()
    }

    fn check_provider_source(dir: &Dir, name: &str, expr: &Expression, findings: &mut Vec<String>) {
        let expected = PROVIDER_SOURCES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, s)| *s);
        match (object_get(expr, "source"), expected) {
            (Some(Expression::String(s)), Some(e)) if s == e => {}
            (Some(Expression::String(s)), Some(e)) => findings.push(format!(
                "{}: provider {name} has source {s:?}, expected {e:?}",
                dir.rel
            )),
            (Some(Expression::String(_)), None) => findings.push(format!(
                "{}: provider {name} is not one of the project's providers",
                dir.rel
            )),
            _ => findings.push(format!("{}: provider {name} has no source", dir.rel)),
        }
    }

    /// Providers the resources and data sources of a directory use (`ovh_...` -> ovh).
    fn used_providers(dir: &Dir) -> BTreeSet<String> {
        dir.blocks("resource")
            .chain(dir.blocks("data"))
            .filter_map(|b| b.labels().first())
            .filter_map(|l| l.as_str().split('_').next().map(str::to_owned))
            .filter(|p| p != "terraform")
            .collect()
    }

    fn declared_providers(dir: &Dir) -> BTreeSet<String> {
        dir.blocks("terraform")
            .flat_map(|t| t.body().blocks())
            .filter(|b| b.identifier() == "required_providers")
            .flat_map(|b| b.body().attributes().map(|a| a.key().to_owned()))
            .collect()
    }

    fn check_s3_backend(dir: &Dir, env: &str, backends: &[Block], findings: &mut Vec<String>) {
        let Some(b) = backends
            .iter()
            .find(|b| b.labels().first().map(|l| l.as_str()) == Some("s3"))
        else {
            findings.push(format!("{}: no backend \"s3\" block", dir.rel));
            return;
        };
        let body = b.body();
        let key = contract::state_key(env);
        let expect_str = [
            ("bucket", contract::STATE_BUCKET),
            ("key", key.as_str()),
            ("region", contract::STATE_REGION),
        ];
        for (k, v) in expect_str {
            match attr_str(body, k) {
                Some(got) if got == v => {}
                got => findings.push(format!(
                    "{}: backend s3 {k} is {got:?}, expected {v:?}",
                    dir.rel
                )),
            }
        }
        match attr(body, "endpoints").and_then(|e| object_get(e, "s3")) {
            Some(Expression::String(s)) if s == contract::STATE_ENDPOINT => {}
            got => findings.push(format!(
                "{}: backend s3 endpoints.s3 is {got:?}, expected {:?}",
                dir.rel,
                contract::STATE_ENDPOINT
            )),
        }
        for flag in [
            "use_lockfile",
            "skip_credentials_validation",
            "skip_region_validation",
            "skip_requesting_account_id",
            "skip_s3_checksum",
            "skip_metadata_api_check",
        ] {
            if !matches!(attr(body, flag), Some(Expression::Bool(true))) {
                findings.push(format!("{}: backend s3 must set {flag} = true", dir.rel));
            }
        }
        for forbidden in ["access_key", "secret_key", "token", "profile"] {
            if attr(body, forbidden).is_some() {
                findings.push(format!(
                    "{}: backend s3 sets {forbidden}: credentials come from AWS_* variables",
                    dir.rel
                ));
            }
        }
    }

    fn check_declares(
        dir: &Dir,
        kind: &str,
        names: &[&str],
        origin: &str,
        findings: &mut Vec<String>,
    ) {
        let declared = dir.labeled(kind);
        for name in names {
            if !declared.contains_key(*name) {
                findings.push(format!(
                    "{}: {kind} \"{name}\" is not declared ({origin})",
                    dir.rel
                ));
            }
        }
    }

    fn check_sensitive(dir: &Dir, names: &[&str], findings: &mut Vec<String>) {
        let outputs = dir.labeled("output");
        for name in names {
            if let Some(b) = outputs.get(*name) {
                if !matches!(attr(b.body(), "sensitive"), Some(Expression::Bool(true))) {
                    findings.push(format!(
                        "{}: output \"{name}\" holds a secret and must set sensitive = true",
                        dir.rel
                    ));
                }
            }
        }
    }

    /// Walks every attribute of every block (recursively) looking for secrets in literals.
    fn scan_body(file: &Path, body: &Body, findings: &mut Vec<String>) {
        for a in body.attributes() {
            scan_expr(file, a.key(), a.expr(), findings);
        }
        for b in body.blocks() {
            if b.identifier() == "variable" {
                let name = b.labels().first().map(|l| l.as_str()).unwrap_or("");
                if let Some(Expression::String(d)) = attr(b.body(), "default") {
                    if secret_name(name) && !d.is_empty() {
                        findings.push(format!(
                            "{}: variable \"{name}\" has a literal default; secrets come from TF_VAR_*",
                            file.display()
                        ));
                    }
                }
            }
            scan_body(file, b.body(), findings);
        }
    }

    fn scan_expr(file: &Path, key: &str, expr: &Expression, findings: &mut Vec<String>) {
        match expr {
            Expression::String(s) if (secret_name(key) && !s.is_empty()) || secret_looking(s) => {
                findings.push(format!(
                    "{}: {key} is a secret-looking literal; pass it as TF_VAR_* or a provider env var",
                    file.display()
                ));
            }
            Expression::Array(items) => {
                for i in items {
                    scan_expr(file, key, i, findings);
                }
            }
            Expression::Object(obj) => {
                for (k, v) in obj.iter() {
                    let k = match k {
                        ObjectKey::Identifier(i) => i.as_str().to_owned(),
                        other => other.to_string(),
                    };
                    scan_expr(file, &k, v, findings);
                }
            }
            Expression::Parenthesis(e) => scan_expr(file, key, e, findings),
            Expression::FuncCall(f) => {
                for a in &f.args {
                    scan_expr(file, key, a, findings);
                }
            }
            Expression::Conditional(c) => {
                scan_expr(file, key, &c.true_expr, findings);
                scan_expr(file, key, &c.false_expr, findings);
            }
            _ => {}
        }
    }

    fn scan_tree(root: &Path, dir: &Path, findings: &mut Vec<String>) {
        let Ok(rd) = fs::read_dir(dir) else { return };
        let mut paths: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for p in paths {
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n == ".terraform") {
                    continue;
                }
                scan_tree(root, &p, findings);
            } else if p.extension().is_some_and(|x| x == "tf" || x == "tfvars") {
                let text = fs::read_to_string(&p).unwrap_or_default();
                let rel = p.strip_prefix(root).unwrap_or(&p);
                match hcl::parse(&text) {
                    Ok(body) => scan_body(rel, &body, findings),
                    Err(e) => findings.push(format!("{}: does not parse: {e}", rel.display())),
                }
            }
        }
    }

    /// Module name -> source of an env root.
    fn modules(dir: &Dir, findings: &mut Vec<String>) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for (name, b) in dir.labeled("module") {
            match attr_str(b.body(), "source") {
                Some(src) => {
                    if src.starts_with("../") && !dir.path.join(src).is_dir() {
                        findings.push(format!(
                            "{}: module \"{name}\" source {src} does not exist",
                            dir.rel
                        ));
                    }
                    out.insert(name, src.to_owned());
                }
                None => findings.push(format!("{}: module \"{name}\" has no source", dir.rel)),
            }
        }
        out
    }

    fn check_tfvars(root: &Path, dir: &Dir, env: &str, findings: &mut Vec<String>) {
        let path = dir.path.join("terraform.tfvars");
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                findings.push(format!("{}/terraform.tfvars: cannot read: {e}", dir.rel));
                return;
            }
        };
        let body = match hcl::parse(&text) {
            Ok(b) => b,
            Err(e) => {
                findings.push(format!("{}/terraform.tfvars: does not parse: {e}", dir.rel));
                return;
            }
        };
        match attr_str(&body, "env_name") {
            Some(n) if n == env => {}
            got => findings.push(format!(
                "{}/terraform.tfvars: env_name is {got:?}, expected {env:?}",
                dir.rel
            )),
        }
        let vars = dir.labeled("variable");
        for a in body.attributes() {
            if !vars.contains_key(a.key()) {
                findings.push(format!(
                    "{}/terraform.tfvars: sets {} which is not a declared variable",
                    dir.rel,
                    a.key()
                ));
            }
            if contract::TF_VARS.contains(&a.key()) {
                findings.push(format!(
                    "{}/terraform.tfvars: sets {} which the deployer sets (TF_VAR_*)",
                    dir.rel,
                    a.key()
                ));
            }
        }
        let _ = root;
    }

    /// Every contract check over `root/terraform`.
    pub fn check(root: &Path) -> Vec<String> {
        let mut findings = Vec::new();
        let mut module_sets: Vec<(String, BTreeMap<String, String>)> = Vec::new();
        let mut all_modules: BTreeSet<String> = BTreeSet::new();

        for env in contract::ENVIRONMENTS {
            let rel = format!("{}/{env}", contract::TF_ENVIRONMENTS_DIR);
            let dir = Dir::load(root, &rel, &mut findings);
            let backends = check_terraform_block(&dir, &mut findings);
            check_s3_backend(&dir, env, &backends, &mut findings);
            check_declares(
                &dir,
                "variable",
                contract::TF_VARS,
                "contract::TF_VARS",
                &mut findings,
            );
            check_declares(
                &dir,
                "variable",
                &[contract::DB_TOGGLE_VAR],
                "contract::DB_TOGGLE_VAR",
                &mut findings,
            );
            check_declares(
                &dir,
                "output",
                contract::TF_OUTPUTS,
                "contract::TF_OUTPUTS",
                &mut findings,
            );
            check_sensitive(&dir, contract::TF_SENSITIVE_OUTPUTS, &mut findings);
            let vars = dir.labeled("variable");
            for list_var in contract::TF_LIST_VARS {
                if let Some(b) = vars.get(*list_var) {
                    let ty = attr(b.body(), "type").map(|t| t.to_string());
                    if ty.as_deref() != Some("list(string)") {
                        findings.push(format!(
                            "{}: variable \"{list_var}\" must be list(string) (the deployer passes a JSON list), found {ty:?}",
                            dir.rel
                        ));
                    }
                }
            }
            let mods = modules(&dir, &mut findings);
            for src in mods.values() {
                all_modules.insert(src.clone());
            }
            // Providers: the root pins every provider its modules use.
            let declared = declared_providers(&dir);
            for src in mods.values() {
                let mdir = Dir::load(root, &normalize(&format!("{rel}/{src}")), &mut Vec::new());
                for p in used_providers(&mdir) {
                    if !declared.contains(&p) {
                        findings.push(format!(
                            "{}: module {src} uses provider {p}, which required_providers does not pin",
                            dir.rel
                        ));
                    }
                }
            }
            check_tfvars(root, &dir, env, &mut findings);
            module_sets.push((env.to_string(), mods));
        }

        if let Some((first_env, first)) = module_sets.first() {
            for (env, mods) in &module_sets[1..] {
                if mods != first {
                    findings.push(format!(
                        "{dir}/{env} wires modules {:?}, but {dir}/{first_env} wires {:?}: every env must wire the same modules",
                        mods,
                        first,
                        dir = contract::TF_ENVIRONMENTS_DIR,
                    ));
                }
            }
        }

        // Modules: every provider they use is declared with its source.
        for src in &all_modules {
            let rel = normalize(&format!("{}/test/{src}", contract::TF_ENVIRONMENTS_DIR));
            let dir = Dir::load(root, &rel, &mut findings);
            let declared = declared_providers(&dir);
            for p in used_providers(&dir) {
                if !declared.contains(&p) {
                    findings.push(format!(
                        "{rel}: uses provider {p} without declaring it in required_providers"
                    ));
                }
            }
            for t in dir.blocks("terraform") {
                for rp in t
                    .body()
                    .blocks()
                    .filter(|b| b.identifier() == "required_providers")
                {
                    for a in rp.body().attributes() {
                        check_provider_source(&dir, a.key(), a.expr(), &mut findings);
                    }
                }
            }
        }

        // Bootstrap: local state, its own contract.
        let boot = Dir::load(root, contract::TF_BOOTSTRAP_DIR, &mut findings);
        let backends = check_terraform_block(&boot, &mut findings);
        if !backends.is_empty() {
            findings.push(format!(
                "{}: must keep local state (no backend block): the state bucket does not exist yet",
                boot.rel
            ));
        }
        check_declares(
            &boot,
            "variable",
            contract::TF_BOOTSTRAP_VARS,
            "contract::TF_BOOTSTRAP_VARS",
            &mut findings,
        );
        check_declares(
            &boot,
            "output",
            contract::TF_BOOTSTRAP_OUTPUTS,
            "contract::TF_BOOTSTRAP_OUTPUTS",
            &mut findings,
        );
        check_sensitive(
            &boot,
            &["s3_access_key_id", "s3_secret_access_key"],
            &mut findings,
        );
        let declared = declared_providers(&boot);
        for p in used_providers(&boot) {
            if !declared.contains(&p) {
                findings.push(format!(
                    "{}: uses provider {p} without pinning it",
                    boot.rel
                ));
            }
        }

        scan_tree(root, &root.join("terraform"), &mut findings);
        findings
    }

    /// `a/b/../c` -> `a/c` (module sources are relative to the env root).
    pub fn normalize(path: &str) -> String {
        let mut parts: Vec<&str> = Vec::new();
        for p in path.split('/') {
            match p {
                "" | "." => {}
                ".." => {
                    parts.pop();
                }
                other => parts.push(other),
            }
        }
        parts.join("/")
    }
}

/// Compose files: interpolation, schema validation, and the project's rules.
mod compose {
    use super::*;
    use serde_json::Value;

    /// The .env the deployer writes, with sample values (contract::COMPOSE_ENV_KEYS).
    pub fn sample_env() -> BTreeMap<String, String> {
        contract::COMPOSE_ENV_KEYS
            .iter()
            .map(|k| {
                let v = match *k {
                    "ENV_NAME" => "test",
                    "API_DOMAIN" => "api.test.example.org",
                    "POWERSYNC_DOMAIN" => "sync.test.example.org",
                    "MQTT_DOMAIN" => "mqtt.test.example.org",
                    "ACME_EMAIL" => "ops@example.org",
                    "BACKEND_IMAGE" => "registry.example.org/accoreboot/backend:1.4.2",
                    "BACKEND_REPLICAS" => "3",
                    "INGEST_IMAGE" => "registry.example.org/accoreboot/ingest:0.1.0",
                    "DATABASE_URL" => {
                        "postgres://app:pw@db.internal:20184/accoreboot?sslmode=verify-full"
                    }
                    "PS_DATA_SOURCE_URI" => {
                        "postgresql://powersync:pw@db.internal:20184/accoreboot"
                    }
                    "PS_STORAGE_URI" => {
                        "postgresql://powersync:pw@db.internal:20184/powersync_storage"
                    }
                    "PS_JWKS_URI" => "https://api.test.example.org/.well-known/jwks.json",
                    "INGEST_ADMIN_TOKEN" => "sample-admin-token",
                    _ => "sample",
                };
                (k.to_string(), v.to_string())
            })
            .collect()
    }

    /// Compose-style interpolation of one string: `$$`, `$NAME`, `${NAME}`, `${NAME:-def}`,
    /// `${NAME-def}`, `${NAME:?err}`, `${NAME?err}`, `${NAME:+alt}`, `${NAME+alt}`.
    /// Returns the value and the names used without a default that `env` lacks.
    pub fn interpolate(s: &str, env: &BTreeMap<String, String>) -> (String, Vec<String>) {
        let mut out = String::new();
        let mut missing = Vec::new();
        let mut chars = s.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if c != '$' {
                out.push(c);
                continue;
            }
            match chars.peek().map(|(_, c)| *c) {
                Some('$') => {
                    chars.next();
                    out.push('$');
                }
                Some('{') => {
                    let rest = &s[i + 2..];
                    let Some(end) = rest.find('}') else {
                        missing.push(format!("unterminated ${{ in {s:?}"));
                        return (out, missing);
                    };
                    let inner = &rest[..end];
                    for _ in 0..inner.chars().count() + 2 {
                        chars.next();
                    }
                    let name_len = inner
                        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                        .unwrap_or(inner.len());
                    let (name, op) = inner.split_at(name_len);
                    let value = env.get(name).filter(|v| !v.is_empty());
                    let set = env.contains_key(name);
                    let resolved = if let Some(d) = op.strip_prefix(":-") {
                        value.cloned().unwrap_or_else(|| d.to_owned())
                    } else if let Some(d) = op.strip_prefix('-') {
                        env.get(name).cloned().unwrap_or_else(|| d.to_owned())
                    } else if let Some(a) = op.strip_prefix(":+") {
                        value.map(|_| a.to_owned()).unwrap_or_default()
                    } else if let Some(a) = op.strip_prefix('+') {
                        if set {
                            a.to_owned()
                        } else {
                            String::new()
                        }
                    } else if op.starts_with(":?") || op.starts_with('?') || op.is_empty() {
                        match env.get(name) {
                            Some(v) => v.clone(),
                            None => {
                                missing.push(name.to_owned());
                                String::new()
                            }
                        }
                    } else {
                        missing.push(format!("unsupported interpolation ${{{inner}}}"));
                        String::new()
                    };
                    out.push_str(&resolved);
                }
                Some(c) if c.is_ascii_alphabetic() || c == '_' => {
                    let mut name = String::new();
                    while let Some((_, c)) = chars.peek() {
                        if c.is_ascii_alphanumeric() || *c == '_' {
                            name.push(*c);
                            chars.next();
                        } else {
                            break;
                        }
                    }
                    match env.get(&name) {
                        Some(v) => out.push_str(v),
                        None => missing.push(name),
                    }
                }
                _ => out.push('$'),
            }
        }
        (out, missing)
    }

    /// Interpolates every string of the document; a value that was wholly an interpolation and
    /// became an integer is typed as one (as Compose does for e.g. deploy.replicas).
    fn interpolate_doc(
        v: &mut Value,
        env: &BTreeMap<String, String>,
        missing: &mut BTreeSet<String>,
    ) {
        match v {
            Value::String(s) => {
                let whole = s.starts_with("${") && s.ends_with('}');
                let (new, miss) = interpolate(s, env);
                missing.extend(miss);
                *v = match (whole, new.parse::<i64>()) {
                    (true, Ok(n)) => Value::from(n),
                    _ => Value::String(new),
                };
            }
            Value::Array(items) => items
                .iter_mut()
                .for_each(|i| interpolate_doc(i, env, missing)),
            Value::Object(map) => map
                .values_mut()
                .for_each(|i| interpolate_doc(i, env, missing)),
            _ => {}
        }
    }

    fn schema() -> jsonschema::Validator {
        let path = repo_root().join("compose/schema/compose-spec.json");
        let text = fs::read_to_string(&path).expect("compose/schema/compose-spec.json");
        let schema: Value = serde_json::from_str(&text).expect("schema is JSON");
        jsonschema::options()
            .with_draft(jsonschema::Draft::Draft201909)
            .should_validate_formats(false)
            .build(&schema)
            .expect("the vendored compose schema compiles")
    }

    fn duration(v: Option<&Value>) -> Option<Duration> {
        v.and_then(Value::as_str)
            .and_then(|s| humantime::parse_duration(s).ok())
    }

    fn env_of<'a>(svc: &'a Value, key: &str) -> Option<&'a Value> {
        match svc.get("environment") {
            Some(Value::Object(m)) => m.get(key),
            Some(Value::Array(items)) => items.iter().find(|i| {
                i.as_str()
                    .is_some_and(|s| s.split_once('=').is_some_and(|(k, _)| k == key))
            }),
            _ => None,
        }
    }

    /// An image reference with a pinned tag or digest (not `latest`, not tag-less).
    fn pinned(image: &str) -> bool {
        if image.contains("@sha256:") {
            return true;
        }
        let last = image.rsplit('/').next().unwrap_or(image);
        match last.split_once(':') {
            Some((_, tag)) => !tag.is_empty() && tag != "latest",
            None => false,
        }
    }

    /// Checks one compose file. `production` adds the rules of the deployed bundle.
    pub fn check(path: &Path, env: &BTreeMap<String, String>, production: bool) -> Vec<String> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut findings = Vec::new();
        let text = match fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => return vec![format!("{name}: cannot read: {e}")],
        };
        let raw: Value = match serde_norway::from_str(&text) {
            Ok(v) => v,
            Err(e) => return vec![format!("{name}: not valid YAML: {e}")],
        };
        let mut doc = raw.clone();
        let mut missing = BTreeSet::new();
        interpolate_doc(&mut doc, env, &mut missing);
        for m in missing {
            findings.push(format!(
                "{name}: uses ${{{m}}} without a default and it is not a key of the deployer's .env (contract::COMPOSE_ENV_KEYS)"
            ));
        }
        // The vendored schema predates the top-level `name` (project name) of the current
        // Compose specification: check it here by the spec's rule, then validate the rest.
        let mut for_schema = doc.clone();
        if let Some(n) = for_schema.as_object_mut().and_then(|m| m.remove("name")) {
            let ok = n.as_str().is_some_and(|s| {
                s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                    && s.chars().all(|c| {
                        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_'
                    })
            });
            if !ok {
                findings.push(format!(
                    "{name}: project name {n} must match ^[a-z0-9][a-z0-9_-]*$"
                ));
            }
        }
        let validator = schema();
        for err in validator.iter_errors(&for_schema) {
            findings.push(format!(
                "{name}: compose schema: {} at {}",
                err,
                err.instance_path()
            ));
        }
        let Some(services) = doc.get("services").and_then(Value::as_object) else {
            findings.push(format!("{name}: no services"));
            return findings;
        };
        let raw_services = raw.get("services").and_then(Value::as_object);
        for (svc_name, svc) in services {
            let restart = svc.get("restart").and_then(Value::as_str).unwrap_or("");
            let one_shot = restart.starts_with("on-failure");
            match restart {
                "always" | "unless-stopped" => {}
                r if r.starts_with("on-failure") => {}
                "" => findings.push(format!(
                    "{name}: service {svc_name} has no restart policy (a host reboot must bring it back)"
                )),
                other => findings.push(format!(
                    "{name}: service {svc_name} has restart: {other}; use unless-stopped or always"
                )),
            }
            let hc = svc.get("healthcheck");
            let disabled = hc
                .and_then(|h| h.get("disable"))
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let has_test = hc.and_then(|h| h.get("test")).is_some();
            if !(has_test || (disabled && one_shot)) {
                findings.push(format!(
                    "{name}: service {svc_name} has no healthcheck (only one-shot on-failure jobs may disable it)"
                ));
            }
            // Images: pinned, or provided by the deployer through a required variable.
            let raw_image = raw_services
                .and_then(|s| s.get(svc_name))
                .and_then(|s| s.get("image"))
                .and_then(Value::as_str)
                .unwrap_or("");
            let built = svc.get("build").is_some();
            if raw_image.contains("${") {
                let required = raw_image.starts_with("${") && raw_image.contains(":?");
                if !required {
                    findings.push(format!(
                        "{name}: service {svc_name} image {raw_image:?} must be a required variable (${{NAME:?...}}) set by the deployer"
                    ));
                }
            } else if raw_image.is_empty() && !built {
                findings.push(format!("{name}: service {svc_name} has no image"));
            } else if !raw_image.is_empty() && !built && !pinned(raw_image) {
                findings.push(format!(
                    "{name}: service {svc_name} image {raw_image:?} is not pinned to a tag (no latest)"
                ));
            }
        }

        // The ingest drains for INGEST_SHUTDOWN_DEADLINE after SIGTERM: Docker must wait longer.
        match services.get("ingest") {
            None => findings.push(format!("{name}: no ingest service")),
            Some(ingest) => {
                let grace = duration(ingest.get("stop_grace_period"));
                let deadline = duration(env_of(ingest, "INGEST_SHUTDOWN_DEADLINE"))
                    .unwrap_or(Duration::from_secs(20));
                match grace {
                    Some(g) if g > deadline => {}
                    Some(g) => findings.push(format!(
                        "{name}: ingest stop_grace_period {g:?} must be longer than INGEST_SHUTDOWN_DEADLINE {deadline:?}"
                    )),
                    None => findings.push(format!(
                        "{name}: ingest has no stop_grace_period (Docker's default 10s cuts the drain short)"
                    )),
                }
                let wal_dir = env_of(ingest, "INGEST_WAL_DIR").and_then(Value::as_str);
                let mounts = volume_targets(ingest);
                match wal_dir {
                    Some(w) if mounts.iter().any(|(_, t)| t == w) => {}
                    other => findings.push(format!(
                        "{name}: the ingest WAL directory {other:?} is not on a mounted volume"
                    )),
                }
                if production {
                    let ports = port_strings(ingest);
                    let http: Vec<&String> =
                        ports.iter().filter(|p| p.ends_with(":8080")).collect();
                    if http.is_empty() || http.iter().any(|p| !p.starts_with("127.0.0.1:")) {
                        findings.push(format!(
                            "{name}: the ingest HTTP port 8080 must be published on 127.0.0.1 only, found {http:?}"
                        ));
                    }
                    if !mounts.iter().any(|(s, t)| {
                        t == contract::DB_CA_CONTAINER_PATH && s.ends_with(contract::DB_CA_FILE)
                    }) {
                        findings.push(format!(
                            "{name}: the ingest does not mount {} at {}",
                            contract::DB_CA_FILE,
                            contract::DB_CA_CONTAINER_PATH
                        ));
                    }
                }
            }
        }
        if production {
            match services.get("caddy") {
                Some(caddy) => {
                    if !volume_targets(caddy)
                        .iter()
                        .any(|(s, t)| t == "/data" && s.starts_with('/'))
                    {
                        findings.push(format!(
                            "{name}: caddy's /data must be a bind mount on the persistent data volume"
                        ));
                    }
                }
                None => findings.push(format!("{name}: no caddy service")),
            }
            for needed in ["backend", "powersync"] {
                if !services.contains_key(needed) {
                    findings.push(format!("{name}: no {needed} service"));
                }
            }
        }
        findings
    }

    /// (source, target) of a service's volumes, short or long syntax.
    pub fn volume_targets(svc: &Value) -> Vec<(String, String)> {
        svc.get("volumes")
            .and_then(Value::as_array)
            .map(|vols| {
                vols.iter()
                    .filter_map(|v| match v {
                        Value::String(s) => {
                            let mut parts = s.split(':');
                            let src = parts.next()?.to_owned();
                            let dst = parts.next()?.to_owned();
                            Some((src, dst))
                        }
                        Value::Object(m) => Some((
                            m.get("source")
                                .and_then(Value::as_str)
                                .unwrap_or("")
                                .to_owned(),
                            m.get("target")?.as_str()?.to_owned(),
                        )),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    fn port_strings(svc: &Value) -> Vec<String> {
        svc.get("ports")
            .and_then(Value::as_array)
            .map(|ps| {
                ps.iter()
                    .filter_map(|p| p.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// compose/ingest.Dockerfile: the documented rules hadolint would otherwise cover.
mod dockerfile {
    use super::*;

    /// Instructions with continuation lines joined, comments dropped.
    fn instructions(text: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut current = String::new();
        for line in text.lines() {
            let t = line.trim();
            if current.is_empty() && (t.starts_with('#') || t.is_empty()) {
                continue;
            }
            if t.starts_with('#') {
                continue;
            }
            if let Some(stripped) = t.strip_suffix('\\') {
                current.push_str(stripped);
                current.push(' ');
                continue;
            }
            current.push_str(t);
            let (op, rest) = current
                .split_once(char::is_whitespace)
                .unwrap_or((&current, ""));
            out.push((op.to_ascii_uppercase(), rest.trim().to_owned()));
            current.clear();
        }
        out
    }

    pub fn check(path: &Path) -> Vec<String> {
        let mut findings = Vec::new();
        let text = match fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => return vec![format!("ingest.Dockerfile: cannot read: {e}")],
        };
        let ins = instructions(&text);
        let mut stages: Vec<String> = Vec::new();
        let mut last_stage_start = 0;
        for (i, (op, args)) in ins.iter().enumerate() {
            if op != "FROM" {
                continue;
            }
            last_stage_start = i;
            let words: Vec<&str> = args
                .split_whitespace()
                .filter(|w| !w.starts_with("--"))
                .collect();
            let image = words.first().copied().unwrap_or("");
            if let Some(pos) = words.iter().position(|w| w.eq_ignore_ascii_case("as")) {
                if let Some(n) = words.get(pos + 1) {
                    stages.push(n.to_string());
                }
            }
            let last = image.rsplit('/').next().unwrap_or(image);
            let pinned = image.contains("@sha256:")
                || last
                    .split_once(':')
                    .is_some_and(|(_, t)| !t.is_empty() && t != "latest");
            if !pinned && !stages.iter().any(|s| s == image) {
                findings.push(format!(
                    "ingest.Dockerfile: base image {image:?} is not pinned to a tag (no latest)"
                ));
            }
        }
        let froms = ins.iter().filter(|(op, _)| op == "FROM").count();
        if froms < 2 {
            findings.push(format!(
                "ingest.Dockerfile: not multi-stage ({froms} FROM): build in one stage, run in a slim one"
            ));
        }
        if !ins
            .iter()
            .any(|(op, a)| op == "FROM" && a.starts_with("rust:1.95-slim-bookworm"))
        {
            findings.push("ingest.Dockerfile: the builder must be rust:1.95-slim-bookworm".into());
        }
        if !ins.iter().any(|(op, a)| {
            op == "RUN"
                && a.contains("cargo build")
                && a.contains("--release")
                && a.contains("-p ingest")
        }) {
            findings.push("ingest.Dockerfile: no `cargo build --release -p ingest`".into());
        }
        let final_stage = &ins[last_stage_start..];
        match final_stage.iter().rev().find(|(op, _)| op == "USER") {
            None => findings.push(
                "ingest.Dockerfile: the runtime stage has no USER: the ingest must not run as root"
                    .into(),
            ),
            Some((_, u)) => {
                let user = u.split(':').next().unwrap_or("");
                if user == "root" || user == "0" {
                    findings.push(format!(
                        "ingest.Dockerfile: runtime USER is {u}: must not be root"
                    ));
                }
            }
        }
        match final_stage.iter().find(|(op, _)| op == "HEALTHCHECK") {
            None => findings.push("ingest.Dockerfile: no HEALTHCHECK in the runtime stage".into()),
            Some((_, h)) if !h.contains("healthcheck") => findings.push(format!(
                "ingest.Dockerfile: HEALTHCHECK {h:?} should run `ingest healthcheck`"
            )),
            Some(_) => {}
        }
        if final_stage
            .iter()
            .any(|(op, a)| op == "RUN" && (a.contains("curl") || a.contains("wget")))
        {
            findings.push("ingest.Dockerfile: the runtime stage installs curl/wget; the healthcheck needs neither".into());
        }
        if !final_stage
            .iter()
            .any(|(op, a)| op == "VOLUME" && a.contains("/var/lib/ingest/wal"))
        {
            findings.push("ingest.Dockerfile: no VOLUME for /var/lib/ingest/wal".into());
        }
        findings
    }
}

/// compose/powersync: config and sync rules.
mod powersync {
    use super::*;
    use serde_norway::Value;

    fn env_refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Tagged(t) => {
                if t.tag == "env" {
                    if let Value::String(s) = &t.value {
                        out.push(s.clone());
                    }
                }
                env_refs(&t.value, out);
            }
            Value::Sequence(s) => s.iter().for_each(|i| env_refs(i, out)),
            Value::Mapping(m) => m.values().for_each(|i| env_refs(i, out)),
            _ => {}
        }
    }

    pub fn check(dir: &Path, compose_file: &Path) -> Vec<String> {
        let mut findings = Vec::new();
        let config: Value = match fs::read_to_string(dir.join("config.yaml"))
            .map_err(|e| e.to_string())
            .and_then(|t| serde_norway::from_str(&t).map_err(|e| e.to_string()))
        {
            Ok(v) => v,
            Err(e) => return vec![format!("powersync/config.yaml: {e}")],
        };
        let mut refs = Vec::new();
        env_refs(&config, &mut refs);
        let compose: serde_json::Value = fs::read_to_string(compose_file)
            .ok()
            .and_then(|t| serde_norway::from_str(&t).ok())
            .unwrap_or_default();
        let ps_env = compose["services"]["powersync"]["environment"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        for r in &refs {
            if !r.starts_with("PS_") {
                findings.push(format!(
                    "powersync/config.yaml: !env {r}: PowerSync only substitutes PS_* variables"
                ));
            } else if !ps_env.contains_key(r) {
                findings.push(format!(
                    "powersync/config.yaml: !env {r} is not set in the powersync service's environment"
                ));
            }
        }
        let conn = &config["replication"]["connections"][0];
        if conn["type"].as_str() != Some("postgresql") {
            findings.push(
                "powersync/config.yaml: replication.connections[0].type must be postgresql".into(),
            );
        }
        if config["storage"]["type"].as_str() != Some("postgresql") {
            findings.push("powersync/config.yaml: storage.type must be postgresql (bucket storage on the managed database)".into());
        }
        for (what, node) in [("replication", conn), ("storage", &config["storage"])] {
            if node["sslmode"].as_str() != Some("verify-full") {
                findings.push(format!(
                    "powersync/config.yaml: {what} sslmode must be verify-full"
                ));
            }
        }
        if config["client_auth"]["jwks_uri"].is_null() {
            findings.push("powersync/config.yaml: client_auth.jwks_uri is missing".into());
        }
        let rules_path = config["sync_config"]["path"].as_str().unwrap_or("");
        if rules_path.is_empty() {
            findings.push("powersync/config.yaml: sync_config.path is missing".into());
            return findings;
        }
        let rules: Value = match fs::read_to_string(dir.join(rules_path))
            .map_err(|e| e.to_string())
            .and_then(|t| serde_norway::from_str(&t).map_err(|e| e.to_string()))
        {
            Ok(v) => v,
            Err(e) => {
                findings.push(format!("powersync/{rules_path}: {e}"));
                return findings;
            }
        };
        let queries: Vec<String> = rules["bucket_definitions"]
            .as_mapping()
            .map(|m| {
                m.values()
                    .flat_map(|b| b["data"].as_sequence().cloned().unwrap_or_default())
                    .filter_map(|q| q.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        if queries.is_empty() {
            findings.push(format!("powersync/{rules_path}: no data query"));
        }
        let columns = [
            "device_id",
            "time",
            "lat",
            "lon",
            "alt",
            "speed",
            "heading",
            "accuracy",
            "battery",
            "updated_at",
        ];
        for q in &queries {
            let lower = q.to_ascii_lowercase();
            if !lower.contains(" as id") {
                findings.push(format!(
                    "powersync/{rules_path}: query has no id column: {q}"
                ));
            }
            if !lower.contains("from device_latest") {
                findings.push(format!(
                    "powersync/{rules_path}: query must read the plain table device_latest (hypertables cannot sync): {q}"
                ));
            }
            for c in columns {
                if !lower.contains(c) {
                    findings.push(format!("powersync/{rules_path}: column {c} is not synced"));
                }
            }
        }
        findings
    }
}

/// credentials/*.example against the contract.
mod credentials {
    use super::*;

    fn keys(path: &Path) -> Result<Vec<String>, String> {
        let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .filter_map(|l| l.split_once('=').map(|(k, _)| k.trim().to_owned()))
            .collect())
    }

    pub fn check(root: &Path) -> Vec<String> {
        let mut findings = Vec::new();
        let optional: Vec<&str> = contract::ENV_OPTIONAL_CREDENTIALS.to_vec();
        for (file, required, allowed_extra) in [
            (
                "credentials/common.enc.env.example",
                contract::COMMON_CREDENTIALS,
                vec![],
            ),
            (
                "credentials/env.enc.env.example",
                contract::ENV_CREDENTIALS,
                optional,
            ),
        ] {
            let found = match keys(&root.join(file)) {
                Ok(k) => k,
                Err(e) => {
                    findings.push(e);
                    continue;
                }
            };
            for k in required {
                if !found.iter().any(|f| f == k) {
                    findings.push(format!("{file}: misses {k} (contract)"));
                }
            }
            for f in &found {
                if !required.contains(&f.as_str()) && !allowed_extra.contains(&f.as_str()) {
                    findings.push(format!("{file}: {f} is not in the contract"));
                }
            }
        }
        findings
    }
}

fn run_check_infra(root: &Path) -> (bool, String) {
    let script = repo_root().join("scripts/check-infra");
    let out = Command::new("bash")
        .arg(&script)
        .args(["--tools-only", "--root"])
        .arg(root)
        .output()
        .expect("bash runs scripts/check-infra");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

// ------------------------------------------------------------------------------------------
// The real tree passes.

#[test]
fn terraform_follows_the_deployer_contract() {
    assert_clean("terraform/", &tf::check(&repo_root()));
}

#[test]
fn compose_bundle_validates_and_follows_the_rules() {
    let env = compose::sample_env();
    assert_clean(
        "compose/docker-compose.yml",
        &compose::check(&repo_root().join("compose/docker-compose.yml"), &env, true),
    );
}

#[test]
fn dev_compose_validates_and_follows_the_rules() {
    // The dev file is used without a .env: it must work with nothing set.
    let env = BTreeMap::new();
    assert_clean(
        "compose/docker-compose.dev.yml",
        &compose::check(
            &repo_root().join("compose/docker-compose.dev.yml"),
            &env,
            false,
        ),
    );
}

#[test]
fn ingest_dockerfile_follows_the_rules() {
    assert_clean(
        "compose/ingest.Dockerfile",
        &dockerfile::check(&repo_root().join("compose/ingest.Dockerfile")),
    );
}

#[test]
fn powersync_config_follows_the_rules() {
    let root = repo_root();
    assert_clean(
        "compose/powersync",
        &powersync::check(
            &root.join("compose/powersync"),
            &root.join("compose/docker-compose.yml"),
        ),
    );
}

#[test]
fn credential_templates_match_the_contract() {
    assert_clean("credentials/*.example", &credentials::check(&repo_root()));
}

#[test]
fn compose_bundle_files_exist() {
    for f in contract::COMPOSE_BUNDLE_FILES {
        assert!(
            repo_root().join("compose").join(f).is_file(),
            "compose/{f} (contract::COMPOSE_BUNDLE_FILES) is missing"
        );
    }
}

#[test]
fn cloud_init_writes_the_marker_last() {
    let template = fs::read_to_string(
        repo_root().join("terraform/modules/compute/files/cloud-init.yaml.tftpl"),
    )
    .unwrap();
    let last_cmd = template
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with("- "))
        .unwrap_or("");
    assert!(
        last_cmd.contains("touch ${marker}"),
        "the last runcmd must write the marker, found {last_cmd:?}"
    );
    let compute =
        fs::read_to_string(repo_root().join("terraform/modules/compute/variables.tf")).unwrap();
    assert!(
        compute.contains(contract::CLOUD_INIT_MARKER),
        "modules/compute must default boot_marker to {}",
        contract::CLOUD_INIT_MARKER
    );
    assert!(
        !template.contains("get.docker.com") && !template.contains("| sh"),
        "Docker is installed from its apt repository, never curl | sh"
    );
}

#[test]
fn tools_pass_check_infra() {
    let (ok, out) = run_check_infra(&repo_root());
    assert!(ok, "scripts/check-infra --tools-only failed:\n{out}");
    assert!(out.contains("all checks passed"), "{out}");
}

// ------------------------------------------------------------------------------------------
// Broken input is caught, and the finding names what is wrong.

#[test]
fn an_env_without_a_contract_output_fails_naming_it() {
    let dir = scratch_copy();
    let outputs = dir.path().join("terraform/environments/preprod/outputs.tf");
    let text = fs::read_to_string(&outputs).unwrap();
    let start = text.find("output \"db_host\"").unwrap();
    let end = start + text[start..].find("\n}\n").unwrap() + 3;
    fs::write(&outputs, format!("{}{}", &text[..start], &text[end..])).unwrap();
    let findings = tf::check(dir.path());
    assert_found(&findings, &["environments/preprod", "output \"db_host\""]);
}

#[test]
fn an_env_without_a_tf_var_fails_naming_it() {
    let dir = scratch_copy();
    let vars = dir.path().join("terraform/environments/prod/variables.tf");
    edit(&vars, "variable \"acme_email\"", "variable \"acme_mail\"");
    let findings = tf::check(dir.path());
    assert_found(&findings, &["environments/prod", "variable \"acme_email\""]);
}

#[test]
fn a_different_module_set_fails() {
    let dir = scratch_copy();
    let main = dir.path().join("terraform/environments/test/main.tf");
    edit(&main, "module \"dns\"", "module \"dns_records\"");
    assert_found(
        &tf::check(dir.path()),
        &["environments/test", "same modules"],
    );
}

#[test]
fn an_unpinned_provider_or_version_fails() {
    let dir = scratch_copy();
    let versions = dir.path().join("terraform/environments/test/versions.tf");
    edit(&versions, "version = \"~> 3.4\"", "version = \">= 3.4\"");
    edit(
        &versions,
        "required_version = \">= 1.11.4, < 2.0.0\"",
        "required_version = \">= 1.11.0\"",
    );
    let findings = tf::check(dir.path());
    assert_found(&findings, &["environments/test", "openstack", "~>"]);
    assert_found(&findings, &["environments/test", "required_version"]);
}

#[test]
fn a_backend_without_lockfile_fails() {
    let dir = scratch_copy();
    let versions = dir.path().join("terraform/environments/prod/versions.tf");
    edit(&versions, "use_lockfile = true", "use_lockfile = false");
    edit(
        &versions,
        "key          = \"prod/terraform.tfstate\"",
        "key          = \"test/terraform.tfstate\"",
    );
    let findings = tf::check(dir.path());
    assert_found(&findings, &["environments/prod", "use_lockfile"]);
    assert_found(
        &findings,
        &["environments/prod", "key", "prod/terraform.tfstate"],
    );
}

#[test]
fn a_literal_secret_fails() {
    let dir = scratch_copy();
    let vars = dir.path().join("terraform/modules/managed_db/variables.tf");
    let mut text = fs::read_to_string(&vars).unwrap();
    text.push_str(
        "\nvariable \"admin_password\" {\n  type    = string\n  default = \"hunter2-but-longer\"\n}\n",
    );
    fs::write(&vars, text).unwrap();
    let main = dir.path().join("terraform/modules/dns/main.tf");
    edit(
        &main,
        "comment = ",
        "tags    = [\"Xk9fQ2mZ7vLp4Rt8Wn3Yb6Hc1Jd5Ke0A\"]\n  comment = ",
    );
    let findings = tf::check(dir.path());
    assert_found(&findings, &["managed_db/variables.tf", "admin_password"]);
    assert_found(&findings, &["dns/main.tf", "secret-looking"]);
}

#[test]
fn a_wrong_tfvars_env_name_fails() {
    let dir = scratch_copy();
    let tfvars = dir
        .path()
        .join("terraform/environments/preprod/terraform.tfvars");
    edit(
        &tfvars,
        "env_name            = \"preprod\"",
        "env_name            = \"test\"",
    );
    assert_found(
        &tf::check(dir.path()),
        &["preprod/terraform.tfvars", "env_name"],
    );
}

#[test]
fn compose_rule_breaks_are_caught() {
    let dir = scratch_copy();
    let file = dir.path().join("compose/docker-compose.yml");
    edit(&file, "stop_grace_period: 40s", "stop_grace_period: 10s");
    edit(
        &file,
        "image: caddy:2.10.2-alpine\n    restart: unless-stopped",
        "image: caddy:latest",
    );
    edit(&file, "\"127.0.0.1:8080:8080\"", "\"8080:8080\"");
    edit(
        &file,
        "${ACME_EMAIL:?ACME_EMAIL is required}",
        "${ACME_ADDRESS:?required}",
    );
    let findings = compose::check(&file, &compose::sample_env(), true);
    assert_found(
        &findings,
        &["ingest stop_grace_period", "INGEST_SHUTDOWN_DEADLINE"],
    );
    assert_found(&findings, &["caddy", "no restart policy"]);
    assert_found(&findings, &["caddy", "not pinned"]);
    assert_found(&findings, &["8080", "127.0.0.1"]);
    assert_found(&findings, &["ACME_ADDRESS", "COMPOSE_ENV_KEYS"]);
}

#[test]
fn compose_schema_violations_are_caught() {
    let dir = scratch_copy();
    let file = dir.path().join("compose/docker-compose.yml");
    edit(
        &file,
        "    restart: unless-stopped\n    # Same uid",
        "    restart: unless-stopped\n    restart_policy_typo: yes\n    # Same uid",
    );
    edit(&file, "replicas: ${BACKEND_REPLICAS:-2}", "replicas: many");
    let findings = compose::check(&file, &compose::sample_env(), true);
    assert_found(&findings, &["compose schema", "restart_policy_typo"]);
    assert_found(&findings, &["compose schema", "replicas"]);
}

#[test]
fn interpolation_follows_compose() {
    let env: BTreeMap<String, String> = [("A", "1"), ("EMPTY", "")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let cases = [
        ("${A}", "1"),
        ("x$A-y", "x1-y"),
        ("${B:-d}", "d"),
        ("${EMPTY:-d}", "d"),
        ("${EMPTY-d}", ""),
        ("${A:+set}", "set"),
        ("${B:+set}", ""),
        ("$${A}", "${A}"),
        ("${A:?must be set}/x", "1/x"),
    ];
    for (input, want) in cases {
        let (got, missing) = compose::interpolate(input, &env);
        assert_eq!(got, want, "{input}");
        assert!(missing.is_empty(), "{input}: {missing:?}");
    }
    let (_, missing) = compose::interpolate("${B:?required} ${C}", &env);
    assert_eq!(missing, ["B", "C"]);
}

#[test]
fn dockerfile_rule_breaks_are_caught() {
    let dir = scratch_copy();
    let file = dir.path().join("compose/ingest.Dockerfile");
    edit(&file, "USER ingest:ingest", "USER root");
    edit(
        &file,
        "FROM debian:bookworm-slim AS runtime",
        "FROM debian AS runtime",
    );
    edit(
        &file,
        "HEALTHCHECK --interval",
        "# health check removed --interval",
    );
    edit(
        &file,
        "    CMD [\"/usr/local/bin/ingest\", \"healthcheck\"]\n",
        "",
    );
    let findings = dockerfile::check(&file);
    assert_found(&findings, &["USER", "root"]);
    assert_found(&findings, &["\"debian\"", "not pinned"]);
    assert_found(&findings, &["no HEALTHCHECK"]);
}

#[test]
fn powersync_rule_breaks_are_caught() {
    let dir = scratch_copy();
    let ps = dir.path().join("compose/powersync");
    edit(
        &ps.join("config.yaml"),
        "uri: !env PS_STORAGE_URI",
        "uri: !env STORAGE_URI",
    );
    edit(
        &ps.join("sync-rules.yaml"),
        "SELECT device_id AS id,",
        "SELECT",
    );
    let findings = powersync::check(&ps, &dir.path().join("compose/docker-compose.yml"));
    assert_found(&findings, &["STORAGE_URI", "PS_*"]);
    assert_found(&findings, &["no id column"]);
}

#[test]
fn credential_template_drift_is_caught() {
    let dir = scratch_copy();
    let file = dir.path().join("credentials/env.enc.env.example");
    edit(&file, "OS_PASSWORD=\n", "OS_PASS=\n");
    let findings = credentials::check(dir.path());
    assert_found(&findings, &["env.enc.env.example", "misses OS_PASSWORD"]);
    assert_found(&findings, &["OS_PASS ", "not in the contract"]);
}

#[test]
fn check_infra_catches_bad_cloud_init_and_formatting() {
    let dir = scratch_copy();
    let tpl = dir
        .path()
        .join("terraform/modules/compute/files/cloud-init.yaml.tftpl");
    edit(
        &tpl,
        "package_update: true",
        "package_update: \"sometimes\"",
    );
    let tf = dir.path().join("terraform/modules/dns/variables.tf");
    edit(
        &tf,
        "  type        = number\n  default     = 300",
        "  type = number\n  default     = 300",
    );
    let script = dir
        .path()
        .join("terraform/modules/compute/files/mount-data.sh");
    edit(&script, "volume_id=\"$1\"", "volume_id=$1\necho $volume_id");
    let (ok, out) = run_check_infra(dir.path());
    assert!(!ok, "check-infra passed on broken input:\n{out}");
    assert!(out.contains("FAIL: cloud-init schema"), "{out}");
    assert!(out.contains("FAIL: terraform fmt"), "{out}");
    assert!(out.contains("FAIL: shellcheck"), "{out}");
}

// ------------------------------------------------------------------------------------------
// The real backend blocks against a real S3 server (moto): state and lock file land where the
// contract says, and a held lock stops a second writer.

/// A root with the env's terraform block (backend included, providers left out so that
/// nothing is downloaded) and one builtin resource.
fn backend_probe_root(env: &str) -> tempfile::TempDir {
    let versions = repo_root().join(format!(
        "{}/{env}/versions.tf",
        contract::TF_ENVIRONMENTS_DIR
    ));
    let body = hcl::parse(&fs::read_to_string(versions).unwrap()).unwrap();
    let tf = body
        .blocks()
        .find(|b| b.identifier() == "terraform")
        .expect("terraform block");
    let mut kept = hcl::Body::builder();
    for a in tf.body().attributes() {
        kept = kept.add_attribute(a.clone());
    }
    for b in tf.body().blocks().filter(|b| b.identifier() == "backend") {
        kept = kept.add_block(b.clone());
    }
    let terraform = hcl::Block::builder("terraform")
        .add_structures(kept.build().into_inner())
        .build();
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{}\nresource \"terraform_data\" \"probe\" {{\n  input = \"{env}\"\n}}\n",
        hcl::to_string(&hcl::Body::builder().add_block(terraform).build()).unwrap()
    );
    fs::write(dir.path().join("main.tf"), text).unwrap();
    dir
}

fn terraform_in(dir: &Path, moto: &common::moto::Moto, args: &[&str]) -> (bool, String) {
    let mut cmd = Command::new("terraform");
    cmd.current_dir(dir)
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("TF_IN_AUTOMATION", "1")
        .env("CHECKPOINT_DISABLE", "1")
        .env_remove("TF_CLI_CONFIG_FILE");
    if args.first() == Some(&"init") {
        cmd.arg(format!(
            "-backend-config=endpoints={{s3=\"{}\"}}",
            moto.endpoint()
        ))
        .arg("-backend-config=use_path_style=true");
    }
    let out = cmd.output().expect("terraform runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn every_env_backend_writes_state_and_honours_the_lock_file() {
    common::require_tool("terraform", "Terraform 1.11.4: /usr/local/bin/terraform");
    let moto = common::moto::Moto::start();
    moto.create_bucket(contract::STATE_BUCKET);
    for env in contract::ENVIRONMENTS {
        let dir = backend_probe_root(env);
        let (ok, out) = terraform_in(dir.path(), &moto, &["init", "-input=false", "-no-color"]);
        assert!(
            ok,
            "{env}: terraform init with the real backend block failed:\n{out}"
        );
        let (ok, out) = terraform_in(
            dir.path(),
            &moto,
            &["apply", "-input=false", "-auto-approve", "-no-color"],
        );
        assert!(ok, "{env}: terraform apply failed:\n{out}");
        let key = contract::state_key(env);
        let keys = moto.keys(contract::STATE_BUCKET);
        assert!(
            keys.contains(&key),
            "{env}: no {key} in the bucket: {keys:?}"
        );
        assert!(
            moto.get(contract::STATE_BUCKET, &key)
                .contains("terraform_data"),
            "{env}: the state does not hold the probe resource"
        );

        // Someone else holds the lock: a second apply must refuse to write.
        let lock = format!("{key}.tflock");
        moto.put(
            contract::STATE_BUCKET,
            &lock,
            r#"{"ID":"held-by-test","Operation":"OperationTypeApply","Who":"someone@else"}"#,
        );
        let (ok, out) = terraform_in(
            dir.path(),
            &moto,
            &[
                "apply",
                "-input=false",
                "-auto-approve",
                "-no-color",
                "-lock-timeout=1s",
            ],
        );
        assert!(
            !ok,
            "{env}: apply succeeded while the lock file was held:\n{out}"
        );
        assert!(
            out.contains("Error acquiring the state lock") && out.contains("held-by-test"),
            "{env}: failed, but not because of the held lock:\n{out}"
        );
        moto.delete(contract::STATE_BUCKET, &lock);
    }
}
