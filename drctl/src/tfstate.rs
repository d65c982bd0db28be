//! The managed resources of a Terraform state, read from either of the two JSON forms
//! Terraform writes: the state file itself (format version 4, what `terraform state pull`
//! prints) and `terraform show -json`. `status` and `rebuild` look only at the dr_* resources
//! and their attributes, which both forms carry.

use serde_json::Value;
use std::collections::BTreeMap;

/// The terraform binary drctl runs: $TERRAFORM, else `terraform` on PATH.
pub fn terraform_bin() -> String {
    std::env::var("TERRAFORM").unwrap_or_else(|_| "terraform".into())
}

/// One resource instance.
#[derive(Debug, Clone)]
pub struct Resource {
    /// The full address, e.g. `module.dr.dr_region_pair.pipelines` or `dr_drill.x["a"]`.
    pub address: String,
    pub kind: String,
    pub name: String,
    /// Empty for the root module.
    pub module: String,
    pub values: Value,
}

impl Resource {
    pub fn str(&self, attr: &str) -> Option<&str> {
        self.values.get(attr).and_then(Value::as_str)
    }

    /// A `map(string)` attribute (such as `storage_options`); null or absent gives an empty map.
    pub fn string_map(&self, attr: &str) -> BTreeMap<String, String> {
        string_map(&self.values[attr])
    }
}

/// A JSON object of strings as a map; anything else gives an empty map.
pub fn string_map(value: &Value) -> BTreeMap<String, String> {
    value
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
        .collect()
}

/// Reads the resources from the JSON of a state; the error says what was expected.
pub fn resources(bytes: &[u8], what: &str) -> Result<Vec<Resource>, String> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| {
        format!("{what} is not JSON ({e}); expected a Terraform state file or `terraform show -json` output")
    })?;
    if v.get("version").is_some() && v.get("lineage").is_some() {
        return Ok(from_state_file(&v));
    }
    if v.get("format_version").is_some() {
        if v.get("planned_values").is_some() || v.get("resource_changes").is_some() {
            return Err(format!(
                "{what} is a plan, not a state; run `terraform show -json` without a plan file (or use `drctl check` for plans)"
            ));
        }
        let mut out = Vec::new();
        if let Some(root) = v.pointer("/values/root_module") {
            from_show_module(root, &mut out);
        }
        return Ok(out);
    }
    Err(format!(
        "{what} is JSON but neither a state file (no \"version\" and \"lineage\") nor `terraform show -json` output (no \"format_version\")"
    ))
}

fn from_state_file(v: &Value) -> Vec<Resource> {
    let mut out = Vec::new();
    for r in v["resources"].as_array().into_iter().flatten() {
        if r["mode"].as_str() != Some("managed") {
            continue;
        }
        let module = r["module"].as_str().unwrap_or_default().to_string();
        let kind = r["type"].as_str().unwrap_or_default().to_string();
        let name = r["name"].as_str().unwrap_or_default().to_string();
        for instance in r["instances"].as_array().into_iter().flatten() {
            let mut address = if module.is_empty() {
                format!("{kind}.{name}")
            } else {
                format!("{module}.{kind}.{name}")
            };
            match &instance["index_key"] {
                Value::Number(n) => address.push_str(&format!("[{n}]")),
                Value::String(s) => address.push_str(&format!("[{}]", Value::from(s.as_str()))),
                _ => {}
            }
            out.push(Resource {
                address,
                kind: kind.clone(),
                name: name.clone(),
                module: module.clone(),
                values: instance["attributes"].clone(),
            });
        }
    }
    out
}

fn from_show_module(module: &Value, out: &mut Vec<Resource>) {
    let module_address = module["address"].as_str().unwrap_or_default().to_string();
    for r in module["resources"].as_array().into_iter().flatten() {
        if r["mode"].as_str() != Some("managed") {
            continue;
        }
        out.push(Resource {
            address: r["address"].as_str().unwrap_or_default().to_string(),
            kind: r["type"].as_str().unwrap_or_default().to_string(),
            name: r["name"].as_str().unwrap_or_default().to_string(),
            module: module_address.clone(),
            values: r["values"].clone(),
        });
    }
    for child in module["child_modules"].as_array().into_iter().flatten() {
        from_show_module(child, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_give_the_same_addresses() {
        let file = serde_json::json!({
            "version": 4, "lineage": "l", "serial": 3, "terraform_version": "1.0.3",
            "resources": [
                {"mode": "managed", "type": "dr_drill", "name": "d",
                 "instances": [{"index_key": "a", "attributes": {"status": "passed"}}]},
                {"module": "module.dr", "mode": "managed", "type": "dr_backup_vault", "name": "v",
                 "instances": [{"attributes": {"id": "file:///v"}}]},
                {"mode": "data", "type": "dr_vault", "name": "x", "instances": [{"attributes": {}}]}
            ]
        });
        let show = serde_json::json!({
            "format_version": "0.2",
            "values": {"root_module": {
                "resources": [{"address": "dr_drill.d[\"a\"]", "mode": "managed", "type": "dr_drill",
                               "name": "d", "values": {"status": "passed"}}],
                "child_modules": [{"address": "module.dr", "resources": [
                    {"address": "module.dr.dr_backup_vault.v", "mode": "managed",
                     "type": "dr_backup_vault", "name": "v", "values": {"id": "file:///v"}}]}]
            }}
        });
        for v in [file, show] {
            let rs = resources(v.to_string().as_bytes(), "x").unwrap();
            let addresses: Vec<_> = rs.iter().map(|r| r.address.as_str()).collect();
            assert_eq!(
                addresses,
                ["dr_drill.d[\"a\"]", "module.dr.dr_backup_vault.v"]
            );
            assert_eq!(rs[0].str("status"), Some("passed"));
            assert_eq!(rs[1].module, "module.dr");
        }
    }

    #[test]
    fn plans_and_other_json_are_refused_with_what_was_expected() {
        let plan = serde_json::json!({"format_version": "0.2", "planned_values": {}});
        assert!(resources(plan.to_string().as_bytes(), "p.json")
            .unwrap_err()
            .contains("is a plan"));
        assert!(resources(b"[1,2]", "x.json")
            .unwrap_err()
            .contains("neither a state file"));
        assert!(resources(b"nope", "x.json")
            .unwrap_err()
            .contains("not JSON"));
    }
}
