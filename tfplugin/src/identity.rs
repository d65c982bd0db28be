//! Resource identity (protocol 6.9, Terraform 1.12+): a small, versioned object that names
//! one managed object for good (a vault's URL, a pair's name and primary vault), stored beside
//! its state, compared across plans, and accepted by `import { identity = {…} }`.
//!
//! A resource derives its identity from its state ([`crate::Resource::identity`]); the SDK
//! sends it with every read, plan, apply and import. Terraform refuses an identity that
//! changes in place, so whatever the identity holds must force replacement when it changes.

use crate::value::Type;
use dr_proto::tfplugin6 as pb;

/// One attribute of an identity.
#[derive(Debug, Clone)]
pub struct IdentityAttribute {
    pub name: &'static str,
    pub ty: Type,
    pub description: &'static str,
    /// Must be given to import by identity (otherwise it is optional there).
    pub required_for_import: bool,
}

/// The shape of a resource type's identity, versioned apart from its state schema.
#[derive(Debug, Clone)]
pub struct IdentitySchema {
    pub version: i64,
    pub attributes: Vec<IdentityAttribute>,
}

impl IdentitySchema {
    /// The object type identity values have.
    pub fn ty(&self) -> Type {
        Type::Object(
            self.attributes
                .iter()
                .map(|a| (a.name.to_string(), a.ty.clone()))
                .collect(),
        )
    }

    pub(crate) fn to_proto(&self) -> pb::ResourceIdentitySchema {
        pb::ResourceIdentitySchema {
            version: self.version,
            identity_attributes: self
                .attributes
                .iter()
                .map(|a| pb::resource_identity_schema::IdentityAttribute {
                    name: a.name.to_string(),
                    r#type: a.ty.to_json_bytes(),
                    required_for_import: a.required_for_import,
                    optional_for_import: !a.required_for_import,
                    description: a.description.to_string(),
                })
                .collect(),
        }
    }
}
