//! The kubelet's atomic-writer layout of one Secret folder, read and written through a
//! [`Folder`] handle.
//!
//! ```text
//! NAME/..data        -> ..vN            the current version (one rename swaps it)
//! NAME/..vN/KEY                         regular files, 0600
//! NAME/..vN/..meta.json                 type, labels, annotations
//! NAME/KEY           -> ..data/KEY      what consumers open
//! ```
//!
//! A write is three calls, so that the directory store can make a batch of writes
//! durable with few syncs (see `DirStore`): [`SecretFolder::fill`] the new version folder,
//! [`SecretFolder::swap`] `..data`, [`SecretFolder::finish`] (key links, the previous
//! version removed).
//!
//! These two link shapes are the only links this module accepts; it never follows any
//! link itself (it reads `..vN/KEY` directly). Anything else where the layout expects its
//! own entries is refused with an error naming the path.
//!
//! Which top-level names of a Secret folder are the Secret's depends on the
//! [`DirLayout`]: in the kubelet layout every valid key name is (the folder is the
//! Secret's alone, as a mounted volume is); in the standalone layout only upstream's file
//! names ([`STANDALONE_FILES`]) and the keys of the current version are, because Envoy
//! Gateway keeps files of its own beside them (its SDS JSON files in `envoy/`), which are
//! never read, changed or removed here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use certrotate_core::Fingerprint;
use certrotate_core::plan::ObservedSecret;
use certrotate_core::profile::validate_secret_key;
use serde::{Deserialize, Serialize};

use super::confined::{Folder, Kind};
use super::{DirError, DirLayout, LayoutProblem, MAX_FILE_BYTES};

/// The files Envoy Gateway's standalone mode reads in a Secret's folder, and the only
/// names a plain folder (what `envoy-gateway certgen --local` writes) is read for in the
/// standalone layout: `ca.crt`, `tls.crt`, `tls.key` in `envoy-gateway/`, `envoy/` and
/// `envoy-rate-limit/`, and `hmac-secret` in `envoy-oidc-hmac/`
/// (github.com/envoyproxy/gateway v1.9.0, `internal/cmd/certgen.go:173-212`,
/// `outputCertsForLocal`; `internal/infrastructure/host/infra.go:161-171` and
/// `internal/gatewayapi/runner/runner.go:640`, the readers).
pub(super) const STANDALONE_FILES: [&str; 4] = ["ca.crt", "tls.crt", "tls.key", "hmac-secret"];

/// The link to the current version folder.
const DATA: &str = "..data";
/// Type, labels and annotations, in each version folder.
const META: &str = "..meta.json";
/// The new `..data` link before its rename.
const DATA_TMP: &str = "..data_tmp";
/// A new key link before its rename. One fixed name, not one per key: links are made one
/// at a time under the lock, and `..KEY_tmp` would exceed NAME_MAX (255) for the longest
/// keys Kubernetes allows (253 characters).
const LINK_TMP: &str = "..link_tmp";

#[derive(Serialize, Deserialize, Default)]
struct Meta {
    #[serde(rename = "type")]
    secret_type: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// One Secret's folder (`DIR/NAMESPACE/NAME` in the kubelet layout, `DIR/NAME` in the
/// standalone one), and which of its names are the Secret's.
#[derive(Debug)]
pub(super) struct SecretFolder(pub(super) Folder, pub(super) DirLayout);

impl SecretFolder {
    /// The Secret, or `None` if the folder holds neither the layout nor any key file.
    pub(super) fn read(&self) -> Result<Option<ObservedSecret>, DirError> {
        // A writer (holding the lock; readers do not take it) may swap `..data` and remove
        // the version being read: read again, from the new version.
        const ATTEMPTS: usize = 5;
        for _ in 1..ATTEMPTS {
            if let Some(read) = self.try_read()? {
                return Ok(read);
            }
        }
        self.try_read()?.ok_or_else(|| DirError::Layout {
            path: self.0.child(DATA),
            problem: LayoutProblem::KeptChanging { reads: ATTEMPTS },
        })
    }

    /// One read; `None` if a writer swapped the version under it.
    fn try_read(&self) -> Result<Option<Option<ObservedSecret>>, DirError> {
        let Some(current) = self.current()? else {
            return self.read_plain().map(Some);
        };
        let Some(version) = self.0.open_folder(&current.name, false)? else {
            return self.raced(&current, "does not exist");
        };
        let Some(meta_bytes) = version.read_file(META, MAX_FILE_BYTES)? else {
            return self.raced(&current, "has no ..meta.json");
        };
        // serde_json's messages may quote the input: say where, never what.
        let meta: Meta = serde_json::from_slice(&meta_bytes).map_err(|e| DirError::Layout {
            path: version.child(META),
            problem: LayoutProblem::Meta {
                line: e.line(),
                column: e.column(),
            },
        })?;
        let Some(names) = version.names_if_present()? else {
            return self.raced(&current, "vanished while being read");
        };
        let keys = valid_keys(names);
        self.check_key_links(&keys)?;
        let mut data = BTreeMap::new();
        for key in keys {
            let Some(value) = version.read_file(&key, MAX_FILE_BYTES)? else {
                return self.raced(&current, "lost a key while being read");
            };
            data.insert(key, value);
        }
        let mut secret = ObservedSecret::new(meta.secret_type, data, current.number.to_string());
        secret.labels = meta.labels;
        secret.annotations = meta.annotations;
        // A writer removes the previous version only after swapping `..data`: if `..data`
        // still names this version, no removal began while it was listed and read, so the
        // read is whole. Otherwise it may be missing keys: read again.
        match self.current()? {
            Some(now) if now.name == current.name => Ok(Some(Some(secret))),
            _ => Ok(None),
        }
    }

    /// `None` (read again) if `..data` moved on since `read`; otherwise the layout is
    /// broken, and the error says how.
    fn raced<T>(&self, read: &Version, what: &'static str) -> Result<Option<T>, DirError> {
        match self.current()? {
            Some(now) if now.name != read.name => Ok(None),
            _ => Err(DirError::Layout {
                path: self.0.child(&read.name),
                problem: LayoutProblem::Missing { what },
            }),
        }
    }

    /// The number of the current version: 0 for a plain folder.
    pub(super) fn current_number(&self) -> Result<u64, DirError> {
        Ok(self.current()?.map_or(0, |c| c.number))
    }

    /// Fills the new version folder `..vN` (`N` = `next`) of the Secret, without making it
    /// durable (the caller syncs every folder of a batch at once, before any swap). Nothing
    /// current changes: until [`Self::swap`], the folder is a leftover any sweep removes.
    /// On failure the partial folder is removed at once (on a full disk, that gives the
    /// space back).
    pub(super) fn fill(&self, next: u64, secret: &ObservedSecret) -> Result<Filled, DirError> {
        for key in secret.data.keys() {
            validate_secret_key(key).map_err(|reason| DirError::Layout {
                path: self.0.child(key),
                problem: LayoutProblem::InvalidKey { reason },
            })?;
        }
        let previous = self.current()?.map(|p| p.name);
        let name = version_name(next);
        // Left by a crash before its swap: never current, safe to replace.
        self.0.remove(&name)?;
        let version = self
            .0
            .open_folder(&name, true)?
            .ok_or_else(|| DirError::Layout {
                path: self.0.child(&name),
                problem: LayoutProblem::Vanished,
            })?;
        let filled = (|| {
            for (key, value) in &secret.data {
                version.create_file(key, value)?;
            }
            let meta = Meta {
                secret_type: secret.secret_type.clone(),
                labels: secret.labels.clone(),
                annotations: secret.annotations.clone(),
            };
            let meta_bytes = serde_json::to_vec_pretty(&meta)
                .map_err(|e| DirError::io(&version.child(META), std::io::Error::other(e)))?;
            version.create_file(META, &meta_bytes)
        })();
        drop(version);
        if let Err(e) = filled {
            self.discard(&name);
            return Err(e);
        }
        Ok(Filled {
            name,
            number: next,
            previous: previous.filter(|p| *p != version_name(next)),
            keys: secret.data.keys().cloned().collect(),
        })
    }

    /// Removes a version folder that was filled but never swapped in (best effort: a sweep
    /// removes it otherwise).
    pub(super) fn discard(&self, name: &str) {
        let _ = self.0.remove(name);
    }

    /// Makes the filled version current with one rename of `..data`. The version folder
    /// must be durable already; the rename is durable once this folder is synced (the
    /// caller does it before the next Secret's swap).
    pub(super) fn swap(&self, filled: &Filled) -> Result<(), DirError> {
        self.0.remove(DATA_TMP)?;
        self.0.symlink(&filled.name, DATA_TMP)?;
        self.0.rename(DATA_TMP, DATA)
    }

    /// After the swap: points the key links consumers read at the new version (adding
    /// and removing links as keys come and go), then removes the previous version, which
    /// may hold keys just replaced (a CA key, a leaf key). Not durable until the caller
    /// syncs (once for the whole batch); a crash before that leaves what a sweep repairs
    /// (a missing key link, an old version folder).
    pub(super) fn finish(&self, filled: &Filled) -> Result<(), DirError> {
        let keys: BTreeSet<&str> = filled.keys.iter().map(String::as_str).collect();
        self.link_keys(&keys)?;
        if let Some(previous) = &filled.previous {
            self.0.remove(previous)?;
        }
        Ok(())
    }

    /// Removes every version folder `..data` does not point to (a crash's leftovers: a
    /// partial new version, or the previous one not yet removed) and our temporary links,
    /// then adds any key link a crash left missing. Run under the lock.
    pub(super) fn sweep(&self) -> Result<(), DirError> {
        let current = self.current()?;
        let mut removed = false;
        for name in self.0.names()? {
            let Some(name) = name.to_str() else {
                continue;
            };
            let stale_version =
                parse_version(name).is_some() && current.as_ref().is_none_or(|c| c.name != name);
            let temporary = name.starts_with("..") && name.ends_with("_tmp");
            if stale_version || temporary {
                removed |= self.0.remove(name)?;
            }
        }
        if removed {
            self.0.sync()?;
        }
        if let Some(current) = current {
            let Some(version) = self.0.open_folder(&current.name, false)? else {
                return Err(DirError::Layout {
                    path: self.0.child(DATA),
                    problem: LayoutProblem::Missing {
                        what: "the version ..data points to does not exist",
                    },
                });
            };
            let mut added = false;
            for key in key_names(&version)? {
                if self.0.kind(&key)?.is_none() {
                    self.link_key(&key)?;
                    added = true;
                }
            }
            if added {
                self.0.sync()?;
            }
        }
        Ok(())
    }

    /// `..data`'s version, checked for its exact shape; `None` for a plain folder.
    fn current(&self) -> Result<Option<Version>, DirError> {
        match self.0.kind(DATA)? {
            None => Ok(None),
            Some(Kind::Symlink) => {
                let target = self.0.read_link(DATA)?;
                let name = target.to_str().unwrap_or_default();
                match parse_version(name) {
                    Some(number) => Ok(Some(Version {
                        name: name.to_owned(),
                        number,
                    })),
                    None => Err(DirError::Layout {
                        path: self.0.child(DATA),
                        problem: LayoutProblem::DataTarget { target },
                    }),
                }
            }
            Some(other) => Err(DirError::Layout {
                path: self.0.child(DATA),
                problem: LayoutProblem::DataNotALink {
                    found: other.describe(),
                },
            }),
        }
    }

    /// Every top-level name that is the Secret's ([`Self::owns`], `keys` the current
    /// version's) is the layout's link to `..data/KEY`, or a regular file (a plain
    /// folder's, before its conversion finished).
    fn check_key_links(&self, keys: &[String]) -> Result<(), DirError> {
        for name in self.0.names()? {
            let Some(key) = name.to_str().filter(|k| self.owns(k, keys)) else {
                continue;
            };
            match self.0.kind(key)? {
                Some(Kind::Symlink) => match self.0.read_link_opt(key)? {
                    // Readers do not take the lock: a writer removed a key the Secret no
                    // longer has since the listing. The data is read from `..vN/`.
                    None => {}
                    Some(target) if target == Path::new(DATA).join(key) => {}
                    Some(target) => {
                        return Err(DirError::Layout {
                            path: self.0.child(key),
                            problem: LayoutProblem::KeyTarget {
                                key: key.to_owned(),
                                target,
                            },
                        });
                    }
                },
                Some(Kind::File) | None => {}
                Some(other) => {
                    return Err(DirError::Layout {
                        path: self.0.child(key),
                        problem: LayoutProblem::NotAKey {
                            found: other.describe(),
                        },
                    });
                }
            }
        }
        Ok(())
    }

    /// A plain folder (what `certgen --local` writes): one regular file per key (in the
    /// standalone layout, per name of [`STANDALONE_FILES`]), with a content hash as its
    /// version.
    fn read_plain(&self) -> Result<Option<ObservedSecret>, DirError> {
        let mut data = BTreeMap::new();
        let names = key_names(&self.0)?;
        for key in names.into_iter().filter(|k| self.owns(k, &[])) {
            if let Some(value) = self.0.read_file(&key, MAX_FILE_BYTES)? {
                data.insert(key, value);
            }
        }
        if data.is_empty() {
            return Ok(None);
        }
        let version = plain_version(&data);
        Ok(Some(ObservedSecret::new("Opaque", data, version)))
    }

    /// Whether the top-level `name` is the Secret's, `keys` being its current version's:
    /// in the kubelet layout every valid key name; in the standalone layout upstream's
    /// file names and `keys` (other files there are Envoy Gateway's own).
    fn owns(&self, name: &str, keys: &[String]) -> bool {
        match self.1 {
            DirLayout::Kubelet => validate_secret_key(name).is_ok(),
            DirLayout::Standalone => {
                STANDALONE_FILES.contains(&name) || keys.iter().any(|k| k == name)
            }
        }
    }

    /// Points `KEY` at `..data/KEY` for every key, and removes the links and plain files of
    /// keys the Secret no longer has (in the standalone layout, plain files only of
    /// upstream's names: others are not the Secret's).
    fn link_keys(&self, keys: &BTreeSet<&str>) -> Result<(), DirError> {
        for key in keys {
            if !self.is_key_link(key)? {
                self.link_key(key)?;
            }
        }
        for name in self.0.names()? {
            let Some(name) = name.to_str() else {
                continue;
            };
            if keys.contains(name) || validate_secret_key(name).is_err() {
                continue;
            }
            let stale = match self.0.kind(name)? {
                Some(Kind::File) => self.owns(name, &[]),
                Some(Kind::Symlink) => self.is_key_link(name)?,
                _ => false,
            };
            if stale {
                self.0.remove(name)?;
            }
        }
        Ok(())
    }

    /// Creates or replaces the link `KEY` -> `..data/KEY` with one rename.
    fn link_key(&self, key: &str) -> Result<(), DirError> {
        let tmp = LINK_TMP;
        self.0.remove(tmp)?;
        self.0.symlink(&format!("{DATA}/{key}"), tmp)?;
        if self.0.kind(key)? == Some(Kind::Folder) {
            return Err(DirError::Layout {
                path: self.0.child(key),
                problem: LayoutProblem::NotAKey { found: "a folder" },
            });
        }
        self.0.rename(tmp, key)
    }

    fn is_key_link(&self, key: &str) -> Result<bool, DirError> {
        if self.0.kind(key)? != Some(Kind::Symlink) {
            return Ok(false);
        }
        Ok(self.0.read_link(key)? == Path::new(DATA).join(key))
    }
}

/// A version folder filled by [`SecretFolder::fill`], not yet swapped in.
#[derive(Debug)]
pub(super) struct Filled {
    /// `..vN`.
    pub(super) name: String,
    /// `N`: the Secret's version once swapped in.
    pub(super) number: u64,
    /// The version folder current when it was filled, removed after the swap.
    previous: Option<String>,
    /// The Secret's keys.
    keys: BTreeSet<String>,
}

/// A version folder's name and number.
#[derive(Debug)]
struct Version {
    name: String,
    number: u64,
}

fn version_name(number: u64) -> String {
    format!("..v{number}")
}

/// The number of a version folder's name: `..v` and decimal digits, nothing else.
fn parse_version(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("..v")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let number = digits.parse().ok()?;
    // One spelling per number, so the name can be compared as a string.
    (version_name(number) == name).then_some(number)
}

/// The valid Secret keys among a folder's names (`..` names belong to the layout).
fn key_names(folder: &Folder) -> Result<Vec<String>, DirError> {
    Ok(valid_keys(folder.names()?))
}

/// The names that are valid Secret keys, sorted.
fn valid_keys(names: Vec<std::ffi::OsString>) -> Vec<String> {
    let mut keys: Vec<String> = names
        .into_iter()
        .filter_map(|n| n.into_string().ok())
        .filter(|n| validate_secret_key(n).is_ok())
        .collect();
    keys.sort();
    keys
}

fn plain_version(data: &BTreeMap<String, Vec<u8>>) -> String {
    let mut all = Vec::new();
    for (k, v) in data {
        all.extend_from_slice(k.as_bytes());
        all.push(0);
        all.extend_from_slice(Fingerprint::of(v).as_bytes());
    }
    format!("plain-{}", Fingerprint::of(&all).short())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_canonical_version_names_are_versions() {
        assert_eq!(parse_version("..v1"), Some(1));
        assert_eq!(parse_version("..v18446744073709551615"), Some(u64::MAX));
        for bad in [
            "..v",
            "..v01",
            "..v+1",
            "..v-1",
            "..v1 ",
            "..v1/..",
            "..v/../../outside",
            "..v18446744073709551616",
            "..data",
            "v1",
            "..V1",
        ] {
            assert_eq!(parse_version(bad), None, "{bad:?}");
        }
    }
}
