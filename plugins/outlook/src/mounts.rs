//! [`MountedRegistry`]: several registries seen as one, each under a key of its own, as Windows
//! shows every loaded user hive under `HKEY_USERS\<SID>`. Tests build a machine from `.reg`
//! exports with it: Alice's HKEY_CURRENT_USER export mounted at `HKEY_USERS\S-1-5-21-…-1001`,
//! Bob's at `…-1002`, the ProfileList export at its own place.

use mailmend_core::{RegPath, RegValue, Registry, RegistryError};
use std::sync::Arc;

struct Mount {
    at: RegPath,
    source_root: RegPath,
    store: Arc<dyn Registry>,
}

/// Registries mounted at keys; a key belongs to the mount with the longest matching path.
#[derive(Default)]
pub struct MountedRegistry {
    mounts: Vec<Mount>,
}

impl std::fmt::Debug for MountedRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.mounts.iter().map(|m| (&m.at, &m.source_root)))
            .finish()
    }
}

impl MountedRegistry {
    pub fn new() -> MountedRegistry {
        MountedRegistry::default()
    }

    /// Shows `source_root` of `store` (and everything below it) at `at`.
    pub fn mount(mut self, at: RegPath, store: Arc<dyn Registry>, source_root: RegPath) -> Self {
        self.mounts.push(Mount {
            at,
            source_root,
            store,
        });
        self
    }

    fn route(&self, key: &RegPath) -> Option<(&Mount, RegPath)> {
        self.mounts
            .iter()
            .filter_map(|m| key.strip_prefix(&m.at).map(|rel| (m, rel)))
            .max_by_key(|(m, _)| m.at.components().count())
            .map(|(m, rel)| {
                let inner = if rel.is_empty() {
                    m.source_root.clone()
                } else {
                    m.source_root.join(&rel)
                };
                (m, inner)
            })
    }
}

impl Registry for MountedRegistry {
    fn subkeys(&self, key: &RegPath) -> Result<Vec<String>, RegistryError> {
        // Mount points directly below the key show as its subkeys, as loaded hives do.
        let mut names: Vec<String> = self
            .mounts
            .iter()
            .filter(|m| m.at.parent().as_ref() == Some(key))
            .map(|m| m.at.name().to_string())
            .collect();
        let routed = self.route(key).map(|(m, inner)| m.store.subkeys(&inner));
        match routed {
            Some(Ok(more)) => {
                for n in more {
                    if !names
                        .iter()
                        .any(|x| mailmend_core::registry::names_equal(x, &n))
                    {
                        names.push(n);
                    }
                }
                Ok(names)
            }
            Some(Err(e)) if names.is_empty() => Err(e),
            _ if names.is_empty() && !key.path().is_empty() => {
                Err(RegistryError::KeyNotFound(key.to_string()))
            }
            _ => Ok(names),
        }
    }

    fn values(&self, key: &RegPath) -> Result<Vec<String>, RegistryError> {
        match self.route(key) {
            Some((m, inner)) => m.store.values(&inner),
            None => Err(RegistryError::KeyNotFound(key.to_string())),
        }
    }

    fn get(&self, key: &RegPath, name: &str) -> Result<Option<RegValue>, RegistryError> {
        match self.route(key) {
            Some((m, inner)) => m.store.get(&inner, name),
            None => Ok(None),
        }
    }

    fn set(&self, key: &RegPath, name: &str, value: &RegValue) -> Result<(), RegistryError> {
        match self.route(key) {
            Some((m, inner)) => m.store.set(&inner, name, value),
            None => Err(RegistryError::KeyNotFound(key.to_string())),
        }
    }

    fn delete_value(&self, key: &RegPath, name: &str) -> Result<(), RegistryError> {
        match self.route(key) {
            Some((m, inner)) => m.store.delete_value(&inner, name),
            None => Ok(()),
        }
    }
}
