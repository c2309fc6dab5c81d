//! Running external tools (terraform, ssh, scp): the command line printed with `--verbose`
//! (environment values and secrets masked), output streamed to the step's spinner, and on
//! failure an error that carries the output lines that matter.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;

use crate::progress;
use crate::redact::Redactor;

/// How many output lines a failure shows.
const TAIL_LINES: usize = 25;

#[derive(Debug, thiserror::Error)]
pub enum CmdError {
    #[error("cannot start `{program}`: {source}. Is it installed and on PATH?")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` failed ({status})\n{tail}")]
    Failed {
        command: String,
        status: String,
        tail: String,
        /// Exit code, when the process exited normally.
        code: Option<i32>,
    },
    #[error("`{program}`: {source}")]
    Io {
        program: String,
        #[source]
        source: std::io::Error,
    },
}

impl CmdError {
    pub fn exit_code(&self) -> Option<i32> {
        match self {
            CmdError::Failed { code, .. } => *code,
            _ => None,
        }
    }
}

/// The captured result of a finished command.
#[derive(Debug, Clone)]
pub struct CmdOutput {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// An external command about to run.
#[derive(Debug, Clone)]
pub struct Cmd {
    program: String,
    args: Vec<OsString>,
    /// Child environment additions; values are never printed.
    envs: Vec<(String, String)>,
    removed_envs: Vec<String>,
    cwd: Option<PathBuf>,
    stdin: Option<Vec<u8>>,
}

impl Cmd {
    pub fn new(program: impl Into<String>) -> Self {
        Self {
            program: program.into(),
            args: Vec::new(),
            envs: Vec::new(),
            removed_envs: Vec::new(),
            cwd: None,
            stdin: None,
        }
    }

    pub fn arg(mut self, a: impl Into<OsString>) -> Self {
        self.args.push(a.into());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.envs.push((k.into(), v.into()));
        self
    }

    pub fn envs<I>(mut self, vars: I) -> Self
    where
        I: IntoIterator<Item = (String, String)>,
    {
        self.envs.extend(vars);
        self
    }

    pub fn env_remove(mut self, k: impl Into<String>) -> Self {
        self.removed_envs.push(k.into());
        self
    }

    pub fn cwd(mut self, dir: impl AsRef<Path>) -> Self {
        self.cwd = Some(dir.as_ref().to_path_buf());
        self
    }

    pub fn stdin(mut self, data: Vec<u8>) -> Self {
        self.stdin = Some(data);
        self
    }

    pub fn program(&self) -> &str {
        &self.program
    }

    /// The command line as shown to the operator: env names with masked values, secret
    /// values masked in the arguments.
    pub fn display(&self, redactor: &Redactor) -> String {
        let mut parts: Vec<String> = self.envs.iter().map(|(k, _)| format!("{k}=***")).collect();
        parts.push(self.program.clone());
        for a in &self.args {
            let a = a.to_string_lossy();
            let a = redactor.redact(&a);
            if a.is_empty() || a.contains(|c: char| c.is_whitespace() || c == '"' || c == '\'') {
                parts.push(format!("'{}'", a.replace('\'', "'\\''")));
            } else {
                parts.push(a);
            }
        }
        parts.join(" ")
    }

    /// The std command (for callers that wire stdin/stdout to files).
    pub fn std_command(&self) -> Command {
        self.command()
    }

    fn command(&self) -> Command {
        let mut c = Command::new(&self.program);
        c.args(&self.args);
        for k in &self.removed_envs {
            c.env_remove(k);
        }
        for (k, v) in &self.envs {
            c.env(k, v);
        }
        if let Some(d) = &self.cwd {
            c.current_dir(d);
        }
        c
    }

    /// Runs to completion, calling `on_line` with each (masked) output line as it arrives.
    /// A non-zero exit is an error carrying the last output lines.
    pub fn run_with(
        &self,
        redactor: &Redactor,
        on_line: impl FnMut(&str),
    ) -> Result<CmdOutput, CmdError> {
        let out = self.run_unchecked_with(redactor, on_line)?;
        if out.status.success() {
            Ok(out)
        } else {
            Err(self.failure(redactor, &out))
        }
    }

    pub fn run(&self, redactor: &Redactor) -> Result<CmdOutput, CmdError> {
        self.run_with(redactor, |_| {})
    }

    /// Runs to completion and returns the output whatever the exit status.
    pub fn run_unchecked(&self, redactor: &Redactor) -> Result<CmdOutput, CmdError> {
        self.run_unchecked_with(redactor, |_| {})
    }

    pub fn run_unchecked_with(
        &self,
        redactor: &Redactor,
        mut on_line: impl FnMut(&str),
    ) -> Result<CmdOutput, CmdError> {
        progress::detail(&format!("    $ {}", self.display(redactor)));
        let mut cmd = self.command();
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd.stdin(if self.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let mut child = cmd.spawn().map_err(|source| CmdError::Spawn {
            program: self.program.clone(),
            source,
        })?;
        let writer = match (child.stdin.take(), self.stdin.clone()) {
            (Some(mut pipe), Some(data)) => Some(std::thread::spawn(move || {
                // A child that exits early closes the pipe; its exit status tells the story.
                let _ = pipe.write_all(&data);
            })),
            _ => None,
        };
        let (tx, rx) = mpsc::channel::<(bool, String)>();
        let readers: Vec<_> = [
            child
                .stdout
                .take()
                .map(|s| (false, Box::new(s) as Box<dyn Read + Send>)),
            child
                .stderr
                .take()
                .map(|s| (true, Box::new(s) as Box<dyn Read + Send>)),
        ]
        .into_iter()
        .flatten()
        .map(|(is_err, stream)| {
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream);
                let mut buf = Vec::new();
                loop {
                    buf.clear();
                    match reader.read_until(b'\n', &mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {
                            let line = String::from_utf8_lossy(&buf).into_owned();
                            if tx.send((is_err, line)).is_err() {
                                break;
                            }
                        }
                    }
                }
            })
        })
        .collect();
        drop(tx);
        let mut stdout = String::new();
        let mut stderr = String::new();
        for (is_err, line) in rx {
            let shown = redactor.redact(line.trim_end());
            if !shown.trim().is_empty() {
                on_line(&shown);
            }
            if is_err {
                stderr.push_str(&line);
            } else {
                stdout.push_str(&line);
            }
        }
        for r in readers {
            let _ = r.join();
        }
        if let Some(w) = writer {
            let _ = w.join();
        }
        let status = child.wait().map_err(|source| CmdError::Io {
            program: self.program.clone(),
            source,
        })?;
        Ok(CmdOutput {
            status,
            stdout,
            stderr,
        })
    }

    /// Runs attached to the operator's terminal (ssh sessions, `logs -f`); returns the exit code.
    pub fn run_interactive(&self, redactor: &Redactor) -> Result<i32, CmdError> {
        progress::detail(&format!("    $ {}", self.display(redactor)));
        let status = self.command().status().map_err(|source| CmdError::Spawn {
            program: self.program.clone(),
            source,
        })?;
        Ok(status.code().unwrap_or(1))
    }

    pub fn failure(&self, redactor: &Redactor, out: &CmdOutput) -> CmdError {
        CmdError::Failed {
            command: self.display(redactor),
            status: describe_status(out.status),
            tail: tail(redactor, out),
            code: out.status.code(),
        }
    }
}

fn describe_status(status: ExitStatus) -> String {
    match status.code() {
        Some(c) => format!("exit code {c}"),
        None => "killed by a signal".to_owned(),
    }
}

/// The last lines of stderr, then of stdout, masked and indented.
pub fn tail(redactor: &Redactor, out: &CmdOutput) -> String {
    let mut lines: Vec<&str> = Vec::new();
    for text in [&out.stderr, &out.stdout] {
        let l: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let start = l.len().saturating_sub(TAIL_LINES);
        lines.extend(&l[start..]);
        if lines.len() >= TAIL_LINES {
            break;
        }
    }
    if lines.is_empty() {
        return "    (no output)".to_owned();
    }
    lines
        .iter()
        .map(|l| format!("    | {}", redactor.redact(l)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Is `program` on PATH (or an existing path)?
pub fn which(program: &str) -> Option<PathBuf> {
    let p = Path::new(program);
    if p.components().count() > 1 {
        return p.is_file().then(|| p.to_path_buf());
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(program))
            .find(|c| c.is_file())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_masks_env_values_and_secrets() {
        let r = Redactor::new(["s3cr3t-value"]);
        let c = Cmd::new("tool")
            .env("OS_PASSWORD", "s3cr3t-value")
            .arg("--token=s3cr3t-value")
            .arg("two words");
        assert_eq!(
            c.display(&r),
            "OS_PASSWORD=*** tool --token=*** 'two words'"
        );
    }

    #[test]
    fn failure_carries_masked_output() {
        let r = Redactor::new(["topsecret"]);
        let err = Cmd::new("sh")
            .args(["-c", "echo out-line; echo 'bad topsecret' >&2; exit 3"])
            .run(&r)
            .unwrap_err();
        assert_eq!(err.exit_code(), Some(3));
        let msg = err.to_string();
        assert!(msg.contains("bad ***"), "{msg}");
        assert!(msg.contains("exit code 3"), "{msg}");
        assert!(!msg.contains("topsecret"), "{msg}");
    }

    #[test]
    fn stdin_and_lines_are_passed() {
        let mut seen = Vec::new();
        let out = Cmd::new("cat")
            .stdin(b"a\nb\n".to_vec())
            .run_with(&Redactor::default(), |l| seen.push(l.to_owned()))
            .unwrap();
        assert_eq!(out.stdout, "a\nb\n");
        assert_eq!(seen, ["a", "b"]);
    }

    #[test]
    fn missing_program_is_explained() {
        let err = Cmd::new("/nonexistent/tool")
            .run(&Redactor::default())
            .unwrap_err();
        assert!(err.to_string().contains("Is it installed"), "{err}");
    }
}
