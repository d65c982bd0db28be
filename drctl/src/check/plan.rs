//! The parts of Terraform's JSON plan format the rules read.

use serde_json::Value;
use std::path::Path;

/// One dr resource as the plan leaves it.
pub struct Change {
    pub address: String,
    pub kind: String,
    pub actions: Vec<String>,
    pub before: Value,
    pub after: Value,
    pub after_unknown: Value,
    /// What each attribute's expression refers to in the configuration, e.g.
    /// `primary_vault_id` → `["dr_backup_vault.primary.id", "dr_backup_vault.primary"]`.
    pub references: Value,
}

impl Change {
    pub fn deletes(&self) -> bool {
        self.actions.iter().any(|a| a == "delete")
    }

    pub fn is_removed(&self) -> bool {
        self.deletes() && !self.actions.iter().any(|a| a == "create")
    }

    /// The planned value, or `None` while it is unknown or unset.
    pub fn after(&self, name: &str) -> Option<&Value> {
        if self.unknown(name) {
            return None;
        }
        self.after.get(name).filter(|v| !v.is_null())
    }

    pub fn after_str(&self, name: &str) -> Option<&str> {
        self.after(name).and_then(Value::as_str)
    }

    pub fn unknown(&self, name: &str) -> bool {
        self.after_unknown
            .get(name)
            .is_some_and(|u| u == &Value::Bool(true))
    }

    /// The dr resource address an attribute refers to (`dr_backup_vault.primary`).
    pub fn reference(&self, name: &str, kind: &str) -> Option<String> {
        self.references[name]["references"]
            .as_array()?
            .iter()
            .filter_map(Value::as_str)
            .find(|r| r.starts_with(&format!("{kind}.")) && r.matches('.').count() == 1)
            .map(str::to_string)
    }
}

pub struct Plan {
    pub changes: Vec<Change>,
}

impl Plan {
    /// Reads and checks a plan file; the error says what was expected.
    pub fn load(path: &Path, max_bytes: u64) -> Result<Plan, String> {
        let shown = path.display();
        let size = std::fs::metadata(path)
            .map_err(|e| format!("cannot read {shown}: {e}"))?
            .len();
        if size > max_bytes {
            return Err(format!(
                "{shown} is {size} bytes, more than the {max_bytes} a plan may have here"
            ));
        }
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
        Plan::parse(&bytes, &shown.to_string())
    }

    /// Reads the JSON of a plan (`terraform show -json PLANFILE`) read from `shown`.
    pub fn parse(bytes: &[u8], shown: &str) -> Result<Plan, String> {
        let doc: Value = serde_json::from_slice(bytes).map_err(|e| {
            format!("{shown} is not JSON ({e}); expected `terraform show -json PLANFILE` output")
        })?;
        if doc.get("values").is_some() && doc.get("resource_changes").is_none() {
            return Err(format!("{shown} is Terraform state, not a plan"));
        }
        if doc.get("format_version").is_none() || doc.get("planned_values").is_none() {
            return Err(format!(
                "{shown} is JSON but not a Terraform plan (no format_version / planned_values)"
            ));
        }
        let config_resources = doc["configuration"]["root_module"]["resources"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let references = |address: &str| {
            config_resources
                .iter()
                .find(|r| r["address"] == address)
                .map_or(Value::Null, |r| r["expressions"].clone())
        };
        let changes: Vec<Change> = doc["resource_changes"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter(|rc| {
                rc["mode"] == "managed" && rc["type"].as_str().is_some_and(|t| t.starts_with("dr_"))
            })
            .map(|rc| {
                let address = rc["address"].as_str().unwrap_or_default().to_string();
                let module_free = rc["module_address"].is_null();
                Change {
                    references: if module_free {
                        references(&address)
                    } else {
                        Value::Null
                    },
                    address,
                    kind: rc["type"].as_str().unwrap_or_default().to_string(),
                    actions: rc["change"]["actions"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|x| x.as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default(),
                    before: rc["change"]["before"].clone(),
                    after: rc["change"]["after"].clone(),
                    after_unknown: rc["change"]["after_unknown"].clone(),
                }
            })
            .collect();
        if changes.is_empty() {
            return Err(format!(
                "{shown} is a plan without dr_* resources: nothing to check (is it the plan of the right configuration?)"
            ));
        }
        Ok(Plan { changes })
    }

    pub fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Change> + 'a {
        self.changes
            .iter()
            .filter(move |c| c.kind == kind && !c.is_removed())
    }

    pub fn by_address(&self, address: &str) -> Option<&Change> {
        self.changes.iter().find(|c| c.address == address)
    }
}
