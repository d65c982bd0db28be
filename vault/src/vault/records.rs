//! Small mutable records beside the snapshots: the vault's protection policy, the settings a
//! Terraform resource manages, region pairs and drill reports. They are sealed like every
//! other object (they name paths and policies) and replaced whole, under `records/`.

use super::Vault;
use crate::crypto::{MasterKey, Passphrase};
use crate::error::{Error, ErrorKind, Result};
use crate::layout::{self, Kind};
use crate::locks::LockTiming;
use crate::repo::blob::seal_framed;
use crate::storage::Storage;
use bytes::Bytes;
use std::time::Duration;

const POLICY: &str = "policy";

/// What a destroy did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DestroySummary {
    pub snapshots_deleted: usize,
    /// Keys under the vault's directories that were not its own and so were left in place.
    pub foreign_objects_left: Vec<String>,
}

/// What the vault itself enforces, whoever operates on it (provider, drctl, prune).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Policy {
    /// Snapshots younger than this are deleted by nothing: not prune, not destroy.
    pub lock_for_seconds: Option<u64>,
}

impl Policy {
    pub fn lock_for(&self) -> Option<Duration> {
        self.lock_for_seconds.map(Duration::from_secs)
    }
}

fn check_name(name: &str) -> Result<()> {
    if layout::is_record_name(name) {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::InvalidInput,
            format!("{name:?} is not a valid record name"),
        )
        .hint("use letters, digits, '-', '_', '.', ':', '@', separated by '/'"))
    }
}

/// Records read at once by [`Vault::newest_records`] (each is a request on object stores).
const RECORD_READS_IN_FLIGHT: usize = 16;

impl Vault {
    /// Stores (or replaces) the record `name`, e.g. `pairs/prod` or `drills/nightly/2026…`.
    ///
    /// # Errors
    /// `InvalidInput` for a bad name; `Storage`.
    pub async fn put_record(&self, name: &str, value: &serde_json::Value) -> Result<()> {
        check_name(name)?;
        let raw =
            serde_json::to_vec(value).map_err(|e| Error::new(ErrorKind::Io, e.to_string()))?;
        let sealed = seal_framed(
            self.repo.key(),
            layout::label::record(name).as_bytes(),
            &raw,
        );
        self.storage()
            .put_replace(&layout::record(name), Bytes::from(sealed))
            .await
    }

    /// The record `name`, or `None` when there is none.
    ///
    /// # Errors
    /// `Corrupt` when it does not decrypt; `Storage`.
    pub async fn record(&self, name: &str) -> Result<Option<serde_json::Value>> {
        check_name(name)?;
        let key = layout::record(name);
        match self
            .repo
            .load_sealed_json(&key, &layout::label::record(name))
            .await
        {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.kind == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every record under `prefix` (e.g. `drills/nightly`), by name, in name order.
    ///
    /// # Errors
    /// As [`Vault::record`].
    pub async fn records(&self, prefix: &str) -> Result<Vec<(String, serde_json::Value)>> {
        check_name(prefix)?;
        let mut out = Vec::new();
        for listed in self.storage().list(&layout::record(prefix)).await? {
            let Some(object) = layout::parse(&listed.key).filter(|o| o.kind == Kind::Record) else {
                continue; // not a record: foreign, never read as one
            };
            let name = object.name.to_string();
            if let Some(v) = self.record(&name).await? {
                out.push((name, v));
            }
        }
        Ok(out)
    }

    /// The newest `at_most` records under `prefix` whose names end with the time they were
    /// written (drill reports, replications), by name, read a few at a time; one that does
    /// not open is skipped rather than failing the rest.
    ///
    /// # Errors
    /// `Storage` when listing fails.
    pub async fn newest_records(
        &self,
        prefix: &str,
        at_most: usize,
    ) -> Result<Vec<(String, serde_json::Value)>> {
        use futures_util::StreamExt as _;
        check_name(prefix)?;
        let mut names: Vec<String> = self
            .storage()
            .list(&layout::record(prefix))
            .await?
            .iter()
            .filter_map(|listed| layout::parse(&listed.key).filter(|o| o.kind == Kind::Record))
            .map(|o| o.name.to_string())
            .collect();
        names.sort();
        let newest = names.split_off(names.len().saturating_sub(at_most));
        let read: Vec<Option<(String, serde_json::Value)>> = futures_util::stream::iter(newest)
            .map(|name| async move {
                let value = self.record(&name).await.ok().flatten()?;
                Some((name, value))
            })
            .buffered(RECORD_READS_IN_FLIGHT)
            .collect()
            .await;
        Ok(read.into_iter().flatten().collect())
    }

    /// The protection policy recorded in the vault (none: nothing is locked).
    ///
    /// # Errors
    /// As [`Vault::record`].
    pub async fn policy(&self) -> Result<Policy> {
        match self.record(POLICY).await? {
            Some(v) => serde_json::from_value(v).map_err(|e| {
                Error::corrupt(
                    &format!("{}/{}", self.storage().url(), layout::record(POLICY)),
                    e,
                )
            }),
            None => Ok(Policy::default()),
        }
    }

    /// Records the protection policy; prune and destroy honour it from then on.
    ///
    /// # Errors
    /// `Storage`.
    pub async fn set_policy(&self, policy: &Policy) -> Result<()> {
        let value =
            serde_json::to_value(policy).map_err(|e| Error::new(ErrorKind::Io, e.to_string()))?;
        self.put_record(POLICY, &value).await
    }

    /// Bytes the vault's packs take in storage.
    ///
    /// # Errors
    /// `Storage`.
    pub async fn stored_bytes(&self) -> Result<u64> {
        Ok(self.pack_sizes().await?.values().sum())
    }

    /// Deletes the whole vault, refusing while any snapshot is younger than the recorded
    /// `lock_for` (measured at `now`). The config goes first, so an interrupted destroy
    /// leaves no half vault that looks whole. Only the vault's own objects are deleted
    /// (FORMAT.md, "Layout"): anything else at its location stays, and is named in the result.
    ///
    /// # Errors
    /// `Locked` naming the protected snapshots; `Storage`.
    pub async fn destroy(&self, now: time::OffsetDateTime) -> Result<DestroySummary> {
        // Exclusive: no snapshot (or replication into this vault) may land after the check.
        let lock = self.lock(true).await?;
        let result = self.destroy_locked(now, &lock).await;
        lock.release().await?;
        if result.is_ok() {
            self.storage().remove_empty_local_dirs();
        }
        result
    }

    async fn destroy_locked(
        &self,
        now: time::OffsetDateTime,
        lock: &crate::locks::LockGuard,
    ) -> Result<DestroySummary> {
        let own_lock = lock.key();
        let super::SnapshotListing {
            snapshots,
            unreadable,
        } = self.snapshot_listing().await?;
        if let (Some(lock_for), false) = (self.policy().await?.lock_for(), unreadable.is_empty()) {
            // What cannot be dated may be younger than lock_for.
            let names: Vec<&str> = unreadable.iter().map(|p| p.object.as_str()).collect();
            return Err(Error::new(
                ErrorKind::Locked,
                format!(
                    "the vault at {} has a lock_for ({}) and {} manifest(s) that do not open, so their age is unknown: {}",
                    self.storage().url(),
                    humantime::format_duration(lock_for),
                    names.len(),
                    names.join(", ")
                ),
            )
            .hint("run `drctl vault verify` to see why; remove the objects by hand if they are not the vault's"));
        }
        if let Some(lock_for) = self.policy().await?.lock_for() {
            let locked: Vec<&str> = snapshots
                .iter()
                .filter(|s| s.age(now) < lock_for)
                .map(|s| s.id.as_str())
                .collect();
            if !locked.is_empty() {
                return Err(Error::new(
                    ErrorKind::Locked,
                    format!(
                        "{} snapshot(s) of the vault at {} are younger than its lock_for ({}) and can be deleted by nothing: {}",
                        locked.len(),
                        self.storage().url(),
                        humantime::format_duration(lock_for),
                        locked.join(", ")
                    ),
                )
                .hint("wait until they are older than lock_for; lowering lock_for applies only to later changes"));
            }
        }
        lock.check_held()?;
        self.storage().delete(layout::CONFIG).await?;
        // The crash campaign's narrowest window: no config, every manifest still there.
        crate::hooks::stop_point("destroy-config-deleted");
        delete_own_objects(self.storage(), own_lock).await?;
        Ok(DestroySummary {
            snapshots_deleted: snapshots.len(),
            foreign_objects_left: self.foreign_objects().await?,
        })
    }

    /// What is left at a location that has no config: what a destroy killed part way leaves
    /// (or a config lost some other way). Nothing where a config is.
    ///
    /// # Errors
    /// `Storage` when the location cannot be listed.
    pub async fn leftovers(storage: &Storage) -> Result<Leftovers> {
        if storage.exists(layout::CONFIG).await? {
            // Written since the caller looked (a create racing this read): a vault again.
            return Ok(Leftovers {
                config: true,
                ..Leftovers::default()
            });
        }
        let listed = match storage.list(layout::SNAPSHOTS).await {
            Ok(listed) => listed,
            // The bucket or container is gone with everything in it: nothing is left.
            Err(e) if crate::storage::is_missing_bucket(&e) => return Ok(Leftovers::default()),
            Err(e) => return Err(e),
        };
        let manifests = listed
            .iter()
            .filter(|o| layout::parse(&o.key).is_some())
            .count();
        Ok(Leftovers {
            config: false,
            manifests,
            anything: manifests > 0 || storage.first_object().await?.is_some(),
        })
    }

    /// Finishes a destroy that was interrupted (a killed `terraform destroy`): the config is
    /// gone, so the vault no longer opens, but some of its objects are left, and nothing new
    /// can be created at the location. Destroy deletes the config, then the manifests, then
    /// the data, the key files last; so what is left is deleted only when it is provably the
    /// vault's whose passphrase this is and protects nothing:
    ///
    /// - a key file left there opens with `passphrase` (or only locks are left, and every
    ///   holder is gone: the exclusive lock is granted);
    /// - no snapshot manifest is left, or `force` is given (the resource's `force_destroy`)
    ///   and no retention policy (`lock_for`) is recorded: a config lost some other way must not turn
    ///   a protected vault into one that anybody's destroy wipes.
    ///
    /// Otherwise nothing is deleted and [`Remains::Kept`] says why.
    ///
    /// When no object of the vault is left, a local location may still hold what a destroy
    /// killed at its very end leaves: the vault's directories emptied, and the staging file of
    /// a lock refresh cut short. When the location holds nothing else, they are removed (they
    /// hold no data) as soon as the lock's writer is provably gone, and [`Remains::Debris`]
    /// says so.
    ///
    /// # Errors
    /// `Locked` while a holder may be alive; `Storage`.
    pub async fn finish_interrupted_destroy(
        storage: &Storage,
        passphrase: &Passphrase,
        force: bool,
    ) -> Result<Remains> {
        if storage.exists(layout::CONFIG).await? {
            return Ok(Remains::Kept {
                reason: format!("{} holds a vault, not the remains of one", storage.url()),
                holds_snapshots: false,
            });
        }
        let mut left: std::collections::BTreeMap<&str, usize> = Default::default();
        for dir in layout::DIRS {
            let own = storage
                .list(dir)
                .await?
                .iter()
                .filter(|o| layout::parse(&o.key).is_some())
                .count();
            if own > 0 {
                left.insert(dir, own);
            }
        }
        if left.is_empty() {
            return finish_debris(storage).await;
        }
        let url = storage.url();
        let manifests = left.get(layout::SNAPSHOTS).copied().unwrap_or(0);
        if manifests > 0 && !force {
            return Ok(Remains::Kept {
                reason: format!("{url} has no config but still holds {manifests} snapshot manifest(s); they are kept without force_destroy"),
                holds_snapshots: true,
            });
        }
        let keys = crate::repo::list_own(storage, layout::Kind::Key).await?;
        if keys.is_empty() && left.keys().any(|dir| *dir != layout::LOCKS) {
            return Ok(Remains::Kept {
                reason: format!("{url} holds objects of a vault layout but no config and no key file: they are not provably this vault's"),
                holds_snapshots: false,
            });
        }
        let mut master = None;
        for listed in &keys {
            let raw = storage.get(&listed.key).await?;
            let Ok(file) = super::parse_key_file(&raw, &listed.key) else {
                continue;
            };
            if let Ok(Some((key, _))) = MasterKey::unwrap(&file, &listed.key, passphrase) {
                master = Some(key);
                break;
            }
        }
        if master.is_none() && !keys.is_empty() {
            return Ok(Remains::Kept {
                reason: format!("{url} holds what is left of a vault, but none of its {} key file(s) opens with this passphrase: it is not provably this vault's", keys.len()),
                holds_snapshots: false,
            });
        }
        if let (Some(key), true) = (master, manifests > 0) {
            if let Some(reason) = locked_remains(storage, key).await? {
                return Ok(Remains::Kept {
                    reason,
                    holds_snapshots: true,
                });
            }
        }
        let lock = crate::locks::acquire(storage, true, LockTiming::for_this_process()).await?;
        let result = delete_own_objects(storage, lock.key()).await;
        lock.release().await?;
        result?;
        storage.remove_empty_local_dirs();
        Ok(Remains::Finished(DestroySummary {
            snapshots_deleted: manifests,
            foreign_objects_left: crate::repo::foreign_objects(storage).await?,
        }))
    }
}

/// Why remains holding manifests must stay, if they must: a retention policy (`lock_for`,
/// sealed with the vault's key like the manifests) under which a manifest is too young to
/// delete, or cannot be dated. The same rule as a destroy's with the config there: the
/// destroy that was interrupted had passed it, so only a config lost some other way, or a
/// policy raised since, keeps them.
async fn locked_remains(storage: &Storage, key: MasterKey) -> Result<Option<String>> {
    let repo = crate::repo::Repo::new(storage.clone(), key);
    let policy: Policy = match repo
        .load_sealed_json(&layout::record(POLICY), &layout::label::record(POLICY))
        .await
    {
        Ok(policy) => policy,
        Err(e) if e.kind == ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Ok(Some(format!(
                "{} holds a retention policy that does not read ({e}): its snapshots may be locked, so nothing is deleted",
                storage.url()
            )))
        }
    };
    let Some(lock_for) = policy.lock_for() else {
        return Ok(None);
    };
    let now = crate::clock::now();
    let (mut young, mut undated) = (Vec::new(), Vec::new());
    for manifest in crate::repo::list_own(storage, Kind::Snapshot).await? {
        let id = manifest.name;
        // The summary is small; a manifest without one (or whose summary does not open) is
        // dated from the manifest itself.
        let time = match repo
            .load_sealed_json::<crate::format::ManifestSummary>(
                &layout::summary(&id),
                &layout::label::summary(&id),
            )
            .await
        {
            Ok(summary) => Some(summary.time),
            Err(_) => repo.load_manifest(&id).await.ok().map(|m| m.time),
        };
        match time.as_deref().and_then(crate::clock::parse) {
            Some(t)
                if (now - t)
                    < time::Duration::try_from(lock_for).unwrap_or(time::Duration::MAX) =>
            {
                young.push(id)
            }
            Some(_) => {}
            None => undated.push(id),
        }
    }
    if young.is_empty() && undated.is_empty() {
        return Ok(None);
    }
    Ok(Some(format!(
        "{} has no config but holds {} snapshot(s) younger than its lock_for ({}) and {} that cannot be dated: they can be deleted by nothing",
        storage.url(),
        young.len(),
        humantime::format_duration(lock_for),
        undated.len()
    )))
}

/// What [`Vault::leftovers`] found at a location without a config.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Leftovers {
    /// A config is there after all (written since the caller found none): not remains.
    pub config: bool,
    /// Snapshot manifests of the vault layout: data a create never takes over, and that only
    /// a destroy with `force_destroy` deletes.
    pub manifests: usize,
    /// Whether the location holds anything at all (a file of any kind, staging files too).
    pub anything: bool,
}

/// What [`Vault::finish_interrupted_destroy`] found at a location without a config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remains {
    /// Nothing of a vault.
    None,
    /// The remains of this vault, now deleted.
    Finished(DestroySummary),
    /// Objects left where they are, and why; `holds_snapshots` when manifests are among them.
    Kept {
        reason: String,
        holds_snapshots: bool,
    },
    /// No object of the vault was left, only what writes cut short leave in a local vault
    /// (staging files whose writer is gone, emptied directories): removed.
    Debris,
}

/// Removes the debris of a local vault that nothing else of is left: staging files of lock
/// writes whose holder is gone (or that hold nothing: killed between creating the file and
/// writing it), other staging files untouched for as long as a lock takes to go stale, then
/// the vault's directories, once empty. Only a location that holds nothing but the vault's
/// directories and staging files is touched: a user's file anywhere in it, or a symlink,
/// and nothing is. No config means no vault writer can be at work here; the age bound covers
/// a writer of another machine all the same.
async fn finish_debris(storage: &Storage) -> Result<Remains> {
    if storage.first_object().await?.is_none() || !storage.holds_only_interrupted_writes() {
        return Ok(Remains::None);
    }
    let stale_after = LockTiming::for_this_process().stale_after;
    let (files, _) = storage
        .sweep_interrupted_writes_where(move |write| {
            let a_lock = layout::parse(&write.object).is_some_and(|o| o.kind == Kind::Lock);
            write.age.is_some_and(|age| age >= stale_after)
                || (a_lock
                    && (write.size == 0 || crate::locks::staged_by_a_gone_holder(&write.path)))
        })
        .await?;
    // A staging file still there is a writer's that may be alive: then the directories stay
    // as they are too.
    if !storage.holds_only_empty_dirs() {
        return Ok(if files > 0 {
            Remains::Debris
        } else {
            Remains::None
        });
    }
    storage.remove_empty_local_dirs();
    Ok(Remains::Debris)
}

/// Deletes every object of the vault's layout but `own_lock` (the caller releases it): until
/// the last data object is gone, a key file proves that what is left is this vault's
/// ([`Vault::finish_interrupted_destroy`]). Any other lock is stale: the
/// exclusive one the caller holds was granted, so no live holder is left.
async fn delete_own_objects(storage: &Storage, own_lock: &str) -> Result<()> {
    // Manifests first (once they are gone nothing is restorable, so no retention lock is
    // left to honour), the key files last.
    let order = [
        layout::SNAPSHOTS,
        layout::SUMMARIES,
        layout::INDEX,
        layout::DATA,
        layout::RECORDS,
        layout::LOCKS,
        layout::KEYS,
    ];
    debug_assert!(layout::DIRS.iter().all(|d| order.contains(d)));
    for dir in order {
        if dir == layout::KEYS {
            // What killed writers left in a local vault, while a key file still proves the
            // rest is this vault's: under the exclusive lock no other write is under way, so
            // every staging file of the layout goes, whatever its age, but that of a refresh
            // of this destroy's own lock.
            let own_lock = own_lock.to_string();
            storage
                .sweep_interrupted_writes_where(move |write| write.object != own_lock)
                .await?;
        }
        for listed in storage.list(dir).await? {
            match layout::parse(&listed.key) {
                Some(_) if listed.key == own_lock => {}
                Some(_) => storage.delete(&listed.key).await?,
                None => {}
            }
        }
        if dir == layout::SNAPSHOTS {
            // No config, no snapshot: what is left is only the vault's key, data and records.
            crate::hooks::stop_point("destroy-manifests-deleted");
        }
    }
    Ok(())
}
