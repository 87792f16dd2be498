//! Reading a muttrc the way mutt does at start-up: the file, and every file its `source`
//! commands include, in order, as one list of statements.
//!
//! - `source FILE` is resolved against `~` (`~/…`) or, when relative, against the directory of
//!   the including file, as neomutt does (mutt 2.x resolves it against its working directory,
//!   which is the home when it is started from there).
//! - An include whose real path (symbolic links resolved) lies outside the home is not read:
//!   mailmend runs with more rights than the user, so it neither reads nor changes such a file,
//!   and reports it as [`INCLUDE_OUTSIDE_HOME`](crate::INCLUDE_OUTSIDE_HOME).
//! - A file that is already being read (a cycle) is not read again, and includes nest at most
//!   [`MAX_INCLUDE_DEPTH`] deep; mutt itself would loop or fail on both.
//! - `source` of a command's output (`source "cmd |"`), of a path with `$variables` or
//!   `` `commands` ``, or of `~user/…`, is not followed: mailmend never runs commands.
//! - A missing include is skipped (mutt reports it at start-up and goes on).
//!
//! A file that cannot be read or parsed makes the whole evaluation unreadable: an account's
//! settings may be in it, so nothing from that configuration is used or changed.

use crate::muttrc::{MuttFile, StatementKind, SyntaxError, Value};
use crate::{finding_id, INCLUDE_OUTSIDE_HOME};
use mailmend_core::{Evidence, Finding, Severity};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// How deep `source` commands may nest.
pub const MAX_INCLUDE_DEPTH: usize = 16;

/// One file read during an evaluation.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The real path (symbolic links resolved).
    pub path: PathBuf,
    pub file: MuttFile,
}

/// One statement, in the order mutt runs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// Index into [`Evaluation::files`].
    pub file: usize,
    /// Index into that file's statements.
    pub stmt: usize,
}

/// Why an evaluation could not be used.
#[derive(Debug)]
pub enum Unreadable {
    /// A file could not be read: permissions, or a directory where a file was expected.
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    /// A file has a syntax error that mailmend refuses to guess around.
    Syntax { path: PathBuf, error: SyntaxError },
}

/// Everything one configuration root reads.
#[derive(Debug, Default)]
pub struct Evaluation {
    pub files: Vec<Loaded>,
    pub events: Vec<Event>,
    /// Findings about includes and unreadable files.
    pub findings: Vec<Finding>,
    /// The first file that could not be read or parsed; when set, nothing here may be used.
    pub unreadable: Option<Unreadable>,
}

/// Reads the configuration rooted at `root` (one of the start-up files in `home`). `None` when
/// the root file does not exist.
pub fn evaluate(home: &Path, root: &Path) -> Option<Evaluation> {
    match std::fs::symlink_metadata(root) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        _ => {}
    }
    let mut walker = Walker {
        home: home.to_path_buf(),
        home_canon: std::fs::canonicalize(home).ok(),
        eval: Evaluation::default(),
        by_path: HashMap::new(),
        stack: Vec::new(),
    };
    match std::fs::canonicalize(root) {
        Ok(canon) => {
            if walker.outside_home(&canon) {
                walker.eval.findings.push(outside_home(root, None, &canon));
            } else {
                walker.visit(canon, 0);
            }
        }
        // A dangling symbolic link is like a missing file.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(error) => walker.unreadable(Unreadable::Io {
            path: root.to_path_buf(),
            error,
        }),
    }
    Some(walker.eval)
}

struct Walker {
    home: PathBuf,
    home_canon: Option<PathBuf>,
    eval: Evaluation,
    by_path: HashMap<PathBuf, usize>,
    stack: Vec<PathBuf>,
}

impl Walker {
    fn outside_home(&self, canon: &Path) -> bool {
        self.home_canon
            .as_ref()
            .is_none_or(|home| !canon.starts_with(home))
    }

    fn unreadable(&mut self, u: Unreadable) {
        let finding = match &u {
            Unreadable::Io { path, error } => crate::unreadable(
                path,
                path.display().to_string(),
                error.to_string(),
                format!(
                    "mutt settings file {} cannot be read, so its accounts are not checked",
                    path.display()
                ),
            ),
            Unreadable::Syntax { path, error } => crate::unreadable(
                path,
                format!("{}:{}:{}", path.display(), error.line, error.column),
                error.message.clone(),
                format!(
                    "mutt settings file {} has a syntax error at line {}, column {}; mailmend \
                     neither checks nor changes this configuration until it is fixed",
                    path.display(),
                    error.line,
                    error.column
                ),
            ),
        };
        self.eval.findings.push(finding);
        if self.eval.unreadable.is_none() {
            self.eval.unreadable = Some(u);
        }
    }

    /// Loads a file once per evaluation.
    fn load(&mut self, path: &Path) -> Option<usize> {
        if let Some(&i) = self.by_path.get(path) {
            return Some(i);
        }
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(error) => {
                self.unreadable(Unreadable::Io {
                    path: path.to_path_buf(),
                    error,
                });
                return None;
            }
        };
        match MuttFile::parse(&bytes) {
            Ok(file) => {
                let i = self.eval.files.len();
                self.eval.files.push(Loaded {
                    path: path.to_path_buf(),
                    file,
                });
                self.by_path.insert(path.to_path_buf(), i);
                Some(i)
            }
            Err(error) => {
                self.unreadable(Unreadable::Syntax {
                    path: path.to_path_buf(),
                    error,
                });
                None
            }
        }
    }

    fn visit(&mut self, canon: PathBuf, depth: usize) {
        if self.stack.contains(&canon) {
            tracing::debug!(path = %canon.display(), "mutt include cycle; not read again");
            return;
        }
        if depth > MAX_INCLUDE_DEPTH {
            tracing::debug!(path = %canon.display(), "mutt includes nest too deep; not read");
            return;
        }
        let Some(idx) = self.load(&canon) else {
            return;
        };
        self.stack.push(canon.clone());
        let count = self.eval.files[idx].file.statements().len();
        for stmt in 0..count {
            self.eval.events.push(Event { file: idx, stmt });
            let s = &self.eval.files[idx].file.statements()[stmt];
            let (line, target) = match &s.kind {
                StatementKind::Source { file } => (s.line, file.clone()),
                _ => continue,
            };
            let Some(target) = self.resolve(&canon, &target) else {
                continue;
            };
            match std::fs::canonicalize(&target) {
                Ok(t) if self.outside_home(&t) => {
                    let f = outside_home(&canon, Some(line), &t);
                    if !self.eval.findings.contains(&f) {
                        self.eval.findings.push(f);
                    }
                }
                Ok(t) => self.visit(t, depth + 1),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    tracing::debug!(path = %target.display(), "mutt include does not exist");
                }
                Err(error) => self.unreadable(Unreadable::Io {
                    path: target,
                    error,
                }),
            }
            if self.eval.unreadable.is_some() {
                break;
            }
        }
        self.stack.pop();
    }

    /// The path a `source` argument names, when mailmend can know it without running anything.
    fn resolve(&self, including: &Path, arg: &Value) -> Option<PathBuf> {
        let Value::Text(text) = arg else {
            tracing::debug!(file = %including.display(), "mutt source of a computed path; not followed");
            return None;
        };
        let text = text.trim();
        if text.ends_with('|') {
            tracing::debug!(file = %including.display(), "mutt source of a command's output; not run");
            return None;
        }
        if text.is_empty() {
            return None;
        }
        if text == "~" {
            return Some(self.home.clone());
        }
        if let Some(rest) = text.strip_prefix("~/") {
            return Some(self.home.join(rest));
        }
        if text.starts_with('~') {
            tracing::debug!(file = %including.display(), "mutt source of another user's file; not followed");
            return None;
        }
        let p = Path::new(text);
        if p.is_absolute() {
            return Some(p.to_path_buf());
        }
        Some(including.parent().unwrap_or(Path::new("/")).join(p))
    }
}

fn outside_home(including: &Path, line: Option<usize>, target: &Path) -> Finding {
    let place = match line {
        Some(l) => format!("{}:{l}", including.display()),
        None => including.display().to_string(),
    };
    Finding::new(
        INCLUDE_OUTSIDE_HOME,
        Severity::Warning,
        finding_id(target),
        None,
        format!(
            "mutt settings in {place} include {}, which lies outside the user's home; mailmend \
             neither reads nor changes it",
            target.display()
        ),
    )
    .with_evidence(Evidence::new(
        "config",
        place,
        format!("{} is outside the home directory", target.display()),
    ))
}
