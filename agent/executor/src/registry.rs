//! Registry edits as the executor applies and undoes them, with the promises it keeps for
//! files: a value is written only while it still holds what the plan was made from, and restored
//! only while it still holds what the fix wrote, so the agent never overwrites a change it did
//! not make.

use mailmend_core::{Edit, RegPath, RegValue, Registry, RegistryEdit, RegistryError};

/// The registry edits of a plan that change something, each without its unchanged values.
pub(crate) fn planned(edits: &[Edit]) -> Vec<RegistryEdit> {
    edits
        .iter()
        .filter_map(|e| match e {
            Edit::Registry(r) => Some(r),
            _ => None,
        })
        .map(|r| RegistryEdit {
            key: r.key.clone(),
            values: r
                .values
                .iter()
                .filter(|v| v.before != v.after)
                .cloned()
                .collect(),
        })
        .filter(|r| !r.values.is_empty())
        .collect()
}

/// Why writing or restoring registry values failed. Messages name keys and values, never data.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RegError {
    #[error("registry value {name:?} of {key}: {source}")]
    Registry {
        key: RegPath,
        name: String,
        source: Box<RegistryError>,
    },
    /// The value holds something the plan did not expect (someone changed it meanwhile).
    #[error("registry value {name:?} of {key} {what}")]
    Changed {
        key: RegPath,
        name: String,
        what: &'static str,
    },
}

impl RegError {
    pub(crate) fn key_and_name(&self) -> (String, String) {
        match self {
            RegError::Registry { key, name, .. } | RegError::Changed { key, name, .. } => {
                (key.to_string(), name.clone())
            }
        }
    }
}

fn read(reg: &dyn Registry, key: &RegPath, name: &str) -> Result<Option<RegValue>, RegError> {
    reg.get(key, name).map_err(|source| RegError::Registry {
        key: key.clone(),
        name: name.to_string(),
        source: Box::new(source),
    })
}

/// Makes `name` hold `value`, or removes it for `None`.
fn put(
    reg: &dyn Registry,
    key: &RegPath,
    name: &str,
    value: Option<&RegValue>,
) -> Result<(), RegError> {
    let r = match value {
        Some(v) => reg.set(key, name, v),
        None => reg.delete_value(key, name),
    };
    r.map_err(|source| RegError::Registry {
        key: key.clone(),
        name: name.to_string(),
        source: Box::new(source),
    })
}

/// Writes every value's "after", but only when every value still holds its "before": a value
/// changed since planning refuses the whole fix before anything is written.
pub(crate) fn write_after(reg: &dyn Registry, edits: &[RegistryEdit]) -> Result<(), RegError> {
    for e in edits {
        for v in &e.values {
            if read(reg, &e.key, &v.name)? != v.before {
                return Err(RegError::Changed {
                    key: e.key.clone(),
                    name: v.name.clone(),
                    what: "changed since the fix was planned",
                });
            }
        }
    }
    for e in edits {
        for v in &e.values {
            put(reg, &e.key, &v.name, v.after.as_ref())?;
        }
    }
    Ok(())
}

/// Puts every value's "before" back. A value that already holds it is left alone (so this is
/// idempotent, and safe for a fix that was never applied); a value that holds neither "before"
/// nor "after" was changed by someone else and is not overwritten. Every value is tried; the
/// first problem is returned.
pub(crate) fn restore(reg: &dyn Registry, edits: &[RegistryEdit]) -> Result<(), RegError> {
    let mut first = None;
    for e in edits.iter().rev() {
        for v in e.values.iter().rev() {
            let r = read(reg, &e.key, &v.name).and_then(|current| {
                if current == v.before {
                    Ok(())
                } else if current == v.after {
                    put(reg, &e.key, &v.name, v.before.as_ref())
                } else {
                    Err(RegError::Changed {
                        key: e.key.clone(),
                        name: v.name.clone(),
                        what: "holds neither the value before nor after the fix; left as it is",
                    })
                }
            });
            if let Err(err) = r {
                first.get_or_insert(err);
            }
        }
    }
    first.map_or(Ok(()), Err)
}

/// Before a rollback by id: every value must still hold what the fix wrote (or already what was
/// there before); otherwise someone changed it since, and the rollback is refused whole.
pub(crate) fn check_unchanged(reg: &dyn Registry, edits: &[RegistryEdit]) -> Result<(), RegError> {
    for e in edits {
        for v in &e.values {
            let current = read(reg, &e.key, &v.name)?;
            if current != v.after && current != v.before {
                return Err(RegError::Changed {
                    key: e.key.clone(),
                    name: v.name.clone(),
                    what: "changed after the fix",
                });
            }
        }
    }
    Ok(())
}
