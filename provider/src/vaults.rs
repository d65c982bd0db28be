//! How resources reach vaults: URLs resolved against the root module, storage options merged
//! over the provider's, the passphrase, engine errors turned into diagnostics, and one open
//! vault per URL per provider process (opening derives a key with argon2id, deliberately
//! slow, and one `terraform apply` touches the same vault many times).

use crate::config::ProviderConfig;
use dr_vault::{ErrorKind, Passphrase, Storage, Vault};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use tfplugin::{Attr, AttributePath, Diagnostic};

/// Checks a `storage_options` attribute of the provider block, a resource or a data source
/// with the engine's own allowlist ([`dr_vault::storage::check_options`], which
/// `Storage::open` enforces again when a value was not known at validation): one error per key
/// refused, on that key.
pub fn storage_options_validator() -> impl tfplugin::schema::Validator {
    |value: &tfplugin::Value, path: &AttributePath, diags: &mut tfplugin::Diagnostics| {
        for (key, value) in value.entries().into_iter().flatten() {
            let one = BTreeMap::from([(key.clone(), value.as_str().unwrap_or_default().into())]);
            if let Err(e) = dr_vault::storage::check_options(&one) {
                let detail = match &e.guidance {
                    Some(hint) => format!("{}. {}.", e.message, capitalised(hint)),
                    None => format!("{}.", e.message),
                };
                diags.error_at(path.clone().key(key), "Storage Option Not Allowed", detail);
            }
        }
    }
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// Shared by the provider and every resource.
#[derive(Default)]
pub struct Vaults {
    config: RwLock<Option<ProviderConfig>>,
    open: Mutex<HashMap<String, Arc<Vault>>>,
    /// One opening at a time per vault: Terraform plans resources concurrently, and several
    /// reading one vault at once each derived its key before the first was cached.
    opening: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Vaults {
    pub(crate) fn set_config(&self, config: ProviderConfig) {
        if let Ok(mut slot) = self.config.write() {
            *slot = Some(config);
        }
    }

    /// The provider configuration; an error when Terraform has not sent a known one yet.
    pub fn config(&self) -> Result<ProviderConfig, Diagnostic> {
        self.config.read().ok().and_then(|c| c.clone()).ok_or_else(|| {
            Diagnostic::error(
                "Provider Not Configured",
                "The provider \"dr\" block is not known yet (it depends on values known only after apply). \
                 Give it known values, or apply what it depends on first.",
            )
        })
    }

    /// The storage a vault URL or id names. Options layer: the provider's defaults, then the
    /// ones the id carries, then `options` (a resource's own `storage_options`). Relative
    /// paths resolve against the root module (Terraform's working directory).
    pub fn storage(
        &self,
        url: &str,
        options: &BTreeMap<String, String>,
        create: bool,
        at: &AttributePath,
    ) -> Result<Storage, Diagnostic> {
        self.engine_storage(url, options, create)?
            .map_err(|e| engine_diagnostic("Cannot Open Vault Storage", &e).at(at.clone()))
    }

    fn engine_storage(
        &self,
        url: &str,
        options: &BTreeMap<String, String>,
        create: bool,
    ) -> Result<dr_vault::Result<Storage>, Diagnostic> {
        let config = self.config()?;
        let base = root_module_dir();
        Ok(Storage::open_with_defaults(
            url,
            &config.storage_options,
            options,
            &base,
            create,
        ))
    }

    /// Opens the vault at `url`; `Ok(None)` when there is no vault there.
    pub async fn open(
        &self,
        url: &str,
        options: &BTreeMap<String, String>,
        at: &AttributePath,
    ) -> Result<Option<Arc<Vault>>, Diagnostic> {
        let storage = match self.engine_storage(url, options, false)? {
            Ok(s) => s,
            Err(e) if e.kind == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(engine_diagnostic("Cannot Open Vault Storage", &e).at(at.clone())),
        };
        let key = storage.id();
        let turn = self
            .opening
            .lock()
            .map(|mut o| o.entry(key.clone()).or_default().clone())
            .unwrap_or_default();
        let _turn = turn.lock().await;
        if let Some(v) = self.cached(&key) {
            // Still there? A deleted vault must read as gone, not as the cached one.
            return match Vault::read_config(v.storage()).await {
                Ok(_) => Ok(Some(v)),
                Err(e) if e.kind == ErrorKind::NotFound => {
                    self.forget(&key);
                    Ok(None)
                }
                Err(e) => Err(engine_diagnostic("Cannot Read Vault", &e).at(at.clone())),
            };
        }
        let passphrase = self.passphrase()?;
        tracing::debug!(vault = %key, "opening the vault: deriving its key (argon2id)");
        match Vault::open(storage, &passphrase).await {
            Ok(v) => {
                let v = Arc::new(v);
                self.remember(&key, v.clone());
                Ok(Some(v))
            }
            Err(e) if e.kind == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(engine_diagnostic("Cannot Open Vault", &e).at(at.clone())),
        }
    }

    /// Finishes a destroy of the vault at `url` that was interrupted (its config deleted, some
    /// objects left): see [`Vault::finish_interrupted_destroy`].
    pub async fn finish_interrupted_destroy(
        &self,
        url: &str,
        options: &BTreeMap<String, String>,
        force: bool,
        at: &AttributePath,
    ) -> Result<dr_vault::Remains, Diagnostic> {
        let storage = match self.engine_storage(url, options, false)? {
            Ok(s) => s,
            Err(e) if e.kind == ErrorKind::NotFound => return Ok(dr_vault::Remains::None),
            Err(e) => return Err(engine_diagnostic("Cannot Open Vault Storage", &e).at(at.clone())),
        };
        let passphrase = self.passphrase()?;
        Vault::finish_interrupted_destroy(&storage, &passphrase, force)
            .await
            .map_err(|e| {
                engine_diagnostic("Cannot Finish An Interrupted Destroy", &e).at(at.clone())
            })
    }

    /// What is left at `url` without a config: see [`Vault::leftovers`].
    pub async fn leftovers(
        &self,
        url: &str,
        options: &BTreeMap<String, String>,
        at: &AttributePath,
    ) -> Result<dr_vault::Leftovers, Diagnostic> {
        let storage = match self.engine_storage(url, options, false)? {
            Ok(s) => s,
            Err(e) if e.kind == ErrorKind::NotFound => return Ok(Default::default()),
            Err(e) => return Err(engine_diagnostic("Cannot Open Vault Storage", &e).at(at.clone())),
        };
        Vault::leftovers(&storage)
            .await
            .map_err(|e| engine_diagnostic("Cannot Read Vault", &e).at(at.clone()))
    }

    /// Like [`Vaults::open`], but a missing vault is an error on `at`.
    pub async fn open_existing(
        &self,
        url: &str,
        options: &BTreeMap<String, String>,
        at: &AttributePath,
    ) -> Result<Arc<Vault>, Diagnostic> {
        self.open(url, options, at).await?.ok_or_else(|| {
            Diagnostic::error(
                "Vault Not Found",
                format!(
                    "There is no vault at {url}. Check the URL, or create the vault with a dr_backup_vault resource \
                     or `drctl vault init`."
                ),
            )
            .at(at.clone())
        })
    }

    /// Creates a vault at `storage` (sharing `primary`'s key when given) and keeps it open.
    pub async fn init(
        &self,
        storage: Storage,
        opts: &dr_vault::InitOptions,
        primary: Option<&Vault>,
    ) -> Result<Arc<Vault>, dr_vault::Error> {
        let passphrase = self.passphrase().map_err(|d| {
            dr_vault::Error::new(ErrorKind::InvalidInput, d.detail).hint("set the passphrase")
        })?;
        let vault = match primary {
            None => Vault::init(storage, opts, &passphrase).await?,
            Some(primary) => Vault::init_sharing_key(storage, opts, &passphrase, primary).await?,
        };
        let vault = Arc::new(vault);
        self.remember(&vault.storage().id(), vault.clone());
        Ok(vault)
    }

    pub fn passphrase(&self) -> Result<Passphrase, Diagnostic> {
        let config = self.config()?;
        Ok(config.passphrase()?.clone())
    }

    pub fn forget(&self, url: &str) {
        if let Ok(mut open) = self.open.lock() {
            open.remove(url);
        }
    }

    fn cached(&self, url: &str) -> Option<Arc<Vault>> {
        self.open.lock().ok().and_then(|o| o.get(url).cloned())
    }

    fn remember(&self, url: &str, vault: Arc<Vault>) {
        if let Ok(mut open) = self.open.lock() {
            open.insert(url.to_string(), vault);
        }
    }
}

/// Terraform's working directory: the root module, where relative vault paths resolve.
pub fn root_module_dir() -> std::path::PathBuf {
    std::env::current_dir().unwrap_or_else(|_| Path::new(".").to_path_buf())
}

/// Whether two vault URLs or ids name the same vault, however spelled (see
/// [`dr_vault::storage::same_place`]).
pub fn same_place(a: &str, b: &str) -> bool {
    dr_vault::storage::same_place(a, b, &root_module_dir())
}

/// Where a vault id points, as identities hold it (`file:///abs/path`, `s3://bucket/prefix`,
/// with `?endpoint=…` or `?account_name=…` when the id says which store): not the other
/// options, which may change in place while the vault stays the same. Unknown while the id
/// is; the text itself if it does not parse.
pub fn location_attr(id: &Attr<String>) -> Attr<String> {
    match id {
        Attr::Known(text) => Attr::Known(
            dr_vault::storage::identity_url(text, &root_module_dir())
                .unwrap_or_else(|_| text.clone()),
        ),
        Attr::Unknown => Attr::Unknown,
        Attr::Null => Attr::Null,
    }
}

/// An identity attribute holding where a vault is (see [`location_attr`]).
pub fn vault_identity_attribute(
    name: &'static str,
    what: &'static str,
) -> tfplugin::IdentityAttribute {
    tfplugin::IdentityAttribute {
        name,
        ty: tfplugin::Type::String,
        description: what,
        required_for_import: true,
    }
}

/// The summary of every diagnostic about a store that did not answer. Refresh turns those
/// into warnings and keeps the prior state: a dark region is not a deleted vault.
pub const UNREACHABLE: &str = "Vault Unreachable";

/// Whether a diagnostic says a vault's store did not answer.
pub fn is_unreachable(d: &Diagnostic) -> bool {
    d.summary == UNREACHABLE
}

/// The warning a refresh gives instead of `d` for a vault that did not answer.
pub fn unreachable_warning(d: &Diagnostic, what: &str) -> Diagnostic {
    let mut w = Diagnostic::warning(UNREACHABLE, format!("{}\n{what}", d.detail));
    w.attribute = d.attribute.clone();
    w
}

/// An engine error as a diagnostic: its message, then what to do. Every error of a store
/// that did not answer gets the summary [`UNREACHABLE`], whatever the operation.
pub fn engine_diagnostic(summary: &str, e: &dr_vault::Error) -> Diagnostic {
    let mut detail = e.to_string();
    if let Some(g) = &e.guidance {
        detail.push_str(".\n");
        detail.push_str(g);
    }
    let summary = if e.kind == ErrorKind::Unreachable {
        UNREACHABLE
    } else {
        summary
    };
    Diagnostic::error(summary, detail)
}

/// A duration attribute (`15m`, `7d`); `None` when unset, unknown or invalid (validation
/// reports invalid ones on the attribute, named `name`).
pub fn duration(value: &Attr<String>, name: &str) -> Option<std::time::Duration> {
    value
        .as_str()
        .and_then(|t| dr_vault::parse_duration(t, name).ok())
}

/// RFC 3339 UTC, seconds precision.
pub fn format_time(t: time::OffsetDateTime) -> String {
    // One spelling for a drill's times (its report's name holds them) and the attributes'.
    dr_drill::format_time(t)
}

/// A time as the attributes show it: RFC 3339 UTC, to the second.
pub fn time_attr(t: time::OffsetDateTime) -> Attr<String> {
    Attr::Known(format_time(t))
}

/// A time the vault keeps as text (its creation, a manifest's time) as the attributes show it;
/// text that does not parse is shown as it is.
pub fn recorded_time_attr(text: &str) -> Attr<String> {
    dr_vault::clock::parse(text).map_or_else(|| Attr::Known(text.to_string()), time_attr)
}
