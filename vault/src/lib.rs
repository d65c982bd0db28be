//! `dr-vault`: an encrypted, deduplicated snapshot store of pipeline configuration, scripts
//! and environment state, on a local directory or an object store. It knows nothing of
//! Terraform; the provider and `drctl` are thin layers over it.
//!
//! Layers, top down: `vault` (the operations: snapshot, restore, verify, prune, replicate,
//! records), `repo` (object keys and labels, sealing, the index, packing, reading blobs back),
//! [`storage`] (object_store backends), with [`crypto`], [`format`], [`sources`] and
//! [`locks`] beside them. The on-storage format is described in `vault/FORMAT.md`; errors
//! follow the policy in [`error`].

pub mod chunker;
pub mod clock;
pub mod crypto;
pub mod error;
pub mod format;
#[doc(hidden)]
pub mod fuzzing;
mod hooks;
mod repo;
pub use repo::layout;
pub mod locks;
mod manifest;
pub mod sources;
pub mod storage;
mod vault;

pub use crypto::{KdfParams, Passphrase};
pub use error::{Error, ErrorKind, Result};
pub use sources::SourceSpec;
pub use storage::Storage;
pub use vault::{
    latest_of, parse_duration, DestroySummary, InitOptions, Leftovers, NoProgress, PendingScan,
    Policy, Problem, Progress, PrunePlan, PruneSummary, Remains, ReplicationPlan,
    ReplicationRecord, ReplicationSummary, RestoreSummary, Retention, SnapshotInfo,
    SnapshotListing, SnapshotSummary, Vault, VerifyReport, SERIES_LABEL,
};
