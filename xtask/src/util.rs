//! Helpers shared by the tasks: where the repository is, how to call cargo, how to run and
//! print a command.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::json::Json;

/// The repository root (the parent of `xtask/`), found from `CARGO_MANIFEST_DIR` at build time.
pub(crate) fn root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

/// The cargo that started us (`$CARGO`), or `cargo` from `PATH`.
pub(crate) fn cargo() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// The build directory: `$CARGO_TARGET_DIR`, else what `cargo metadata` says, else `<root>/target`.
pub(crate) fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        let dir = PathBuf::from(dir);
        return if dir.is_absolute() {
            dir
        } else {
            root().join(dir)
        };
    }
    let from_metadata = Command::new(cargo())
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(root())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| Json::parse(&String::from_utf8_lossy(&out.stdout)).ok())
        .and_then(|meta| {
            meta.get("target_directory")
                .and_then(Json::as_str)
                .map(PathBuf::from)
        });
    from_metadata.unwrap_or_else(|| root().join("target"))
}

/// Shell-style rendering of a command line, for printing and for "run this to reproduce".
pub(crate) fn render(program: &OsString, args: &[OsString]) -> String {
    let mut words = vec![program.to_string_lossy().into_owned()];
    // `$CARGO` is a full path to the toolchain's cargo; people type `cargo`.
    if Path::new(&words[0])
        .file_name()
        .is_some_and(|n| n == "cargo")
    {
        words[0] = "cargo".into();
    }
    for arg in args {
        let a = arg.to_string_lossy();
        let plain = !a.is_empty()
            && a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+%".contains(c));
        words.push(if plain {
            a.into_owned()
        } else {
            format!("'{}'", a.replace('\'', r"'\''"))
        });
    }
    words.join(" ")
}

/// A command to run from the repository root, printed before it runs.
#[derive(Debug, Clone)]
pub(crate) struct Cmd {
    /// The program.
    pub(crate) program: OsString,
    /// Its arguments.
    pub(crate) args: Vec<OsString>,
    /// Extra environment for the child (on top of ours).
    pub(crate) envs: Vec<(String, String)>,
    /// Working directory; the repository root when `None`.
    pub(crate) cwd: Option<PathBuf>,
}

impl Cmd {
    /// A command for `program` with `args`.
    pub(crate) fn new<I, S>(program: impl Into<OsString>, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        Cmd {
            program: program.into(),
            args: args.into_iter().map(Into::into).collect(),
            envs: Vec::new(),
            cwd: None,
        }
    }

    /// A cargo command (`$CARGO`) with `args`.
    pub(crate) fn cargo<I, S>(args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        Cmd::new(cargo(), args)
    }

    /// Appends arguments.
    pub(crate) fn with_args<I, S>(mut self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Adds an environment variable for the child.
    pub(crate) fn with_env(mut self, key: &str, value: &str) -> Cmd {
        self.envs.push((key.into(), value.into()));
        self
    }

    /// The command line as a person would type it.
    pub(crate) fn display(&self) -> String {
        let line = render(&self.program, &self.args);
        match &self.cwd {
            Some(dir) => {
                let rel = dir.strip_prefix(root()).unwrap_or(dir);
                format!("(cd {} && {line})", rel.display())
            }
            None => line,
        }
    }

    /// Prints `$ <command>` and runs it with inherited stdio; `Ok(true)` when it exits with 0.
    pub(crate) fn run_status(&self) -> Result<bool> {
        eprintln!("$ {}", self.display());
        let started = Instant::now();
        let status = Command::new(&self.program)
            .args(&self.args)
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .current_dir(self.cwd.clone().unwrap_or_else(root))
            .stdin(std::process::Stdio::null())
            .status()
            .with_context(|| {
                format!(
                    "could not start `{}`: is it installed and on PATH?",
                    self.program.to_string_lossy()
                )
            })?;
        eprintln!(
            "  ({} after {:.1} s)",
            status,
            started.elapsed().as_secs_f64()
        );
        Ok(status.success())
    }

    /// Prints `$ <command>`, runs it with its output captured, and shows that output only when
    /// it fails (for chatty tools like `initdb`).
    pub(crate) fn run_quiet(&self) -> Result<()> {
        eprintln!("$ {}", self.display());
        let out = Command::new(&self.program)
            .args(&self.args)
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .current_dir(self.cwd.clone().unwrap_or_else(root))
            .stdin(std::process::Stdio::null())
            .output()
            .with_context(|| format!("could not start `{}`", self.program.to_string_lossy()))?;
        if !out.status.success() {
            eprintln!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            bail!("`{}` failed ({})", self.display(), out.status);
        }
        Ok(())
    }

    /// Like [`Cmd::run_status`], but a non-zero exit is an error.
    pub(crate) fn run(&self) -> Result<()> {
        if !self.run_status()? {
            bail!("`{}` failed; run it again to see why", self.display());
        }
        Ok(())
    }
}
