//! Terraform: parsing with hcl-rs and the contract checks.

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

fn check_declares(dir: &Dir, kind: &str, names: &[&str], origin: &str, findings: &mut Vec<String>) {
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
        check_wiring(root, &dir, &mut findings);
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

    // Modules: their own var.* references are declared.
    for src in &all_modules {
        let rel = normalize(&format!("{}/test/{src}", contract::TF_ENVIRONMENTS_DIR));
        let dir = Dir::load(root, &rel, &mut Vec::new());
        check_var_refs(&dir, &mut findings);
    }
    let boot = Dir::load(root, contract::TF_BOOTSTRAP_DIR, &mut Vec::new());
    check_var_refs(&boot, &mut findings);

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

/// Text of every .tf file of a directory, with `#` and `//` comment lines removed.
fn source_text(dir: &Dir) -> String {
    dir.files
        .iter()
        .filter_map(|(p, _)| fs::read_to_string(p).ok())
        .flat_map(|t| {
            t.lines()
                .filter(|l| {
                    let l = l.trim_start();
                    !l.starts_with('#') && !l.starts_with("//")
                })
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every `var.NAME` used in a directory is a declared variable.
fn check_var_refs(dir: &Dir, findings: &mut Vec<String>) {
    let declared = dir.labeled("variable");
    let re = regex::Regex::new(r"\bvar\.([A-Za-z_][A-Za-z0-9_-]*)").unwrap();
    let text = source_text(dir);
    let used: BTreeSet<&str> = re
        .captures_iter(&text)
        .filter_map(|c| c.get(1).map(|m| m.as_str()))
        .collect();
    for name in used {
        if !declared.contains_key(name) {
            findings.push(format!(
                "{}: uses var.{name}, which is not declared",
                dir.rel
            ));
        }
    }
}

/// What `terraform validate` would say about the wiring, without providers: module inputs
/// exist in the module, required module inputs are passed, `module.X.Y` references name an
/// output of module X, and `var.X` references are declared.
fn check_wiring(root: &Path, dir: &Dir, findings: &mut Vec<String>) {
    check_var_refs(dir, findings);
    let meta = [
        "source",
        "count",
        "for_each",
        "depends_on",
        "providers",
        "version",
    ];
    let mut outputs_of: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (name, block) in dir.labeled("module") {
        let Some(src) = attr_str(block.body(), "source") else {
            continue;
        };
        let mdir = Dir::load(
            root,
            &normalize(&format!("{}/{src}", dir.rel)),
            &mut Vec::new(),
        );
        let vars = mdir.labeled("variable");
        let passed: BTreeSet<&str> = block
            .body()
            .attributes()
            .map(|a| a.key())
            .filter(|k| !meta.contains(k))
            .collect();
        for p in &passed {
            if !vars.contains_key(*p) {
                findings.push(format!(
                    "{}: module \"{name}\" passes {p}, which {src} does not declare",
                    dir.rel
                ));
            }
        }
        for (v, b) in &vars {
            if attr(b.body(), "default").is_none() && !passed.contains(v.as_str()) {
                findings.push(format!(
                    "{}: module \"{name}\" does not pass the required input {v}",
                    dir.rel
                ));
            }
        }
        outputs_of.insert(name, mdir.labeled("output").into_keys().collect());
    }
    let re =
        regex::Regex::new(r"\bmodule\.([A-Za-z0-9_-]+)(?:\[[^\]]*\])?\.([A-Za-z0-9_-]+)").unwrap();
    let text = source_text(dir);
    for c in re.captures_iter(&text) {
        let (m, o) = (&c[1], &c[2]);
        match outputs_of.get(m) {
            None => findings.push(format!(
                "{}: references module.{m}, which is not wired",
                dir.rel
            )),
            Some(outs) if !outs.contains(o) => findings.push(format!(
                "{}: references module.{m}.{o}, which the module does not output",
                dir.rel
            )),
            Some(_) => {}
        }
    }
}
