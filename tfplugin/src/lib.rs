//! `tfplugin`: a provider-agnostic SDK for Terraform plugin protocol 6.
//!
//! - [`serve::main`] runs a provider binary: go-plugin handshake, AutoMTLS, debug mode.
//! - [`value`] holds cty types and values with their msgpack and JSON codecs.
//! - [`schema`] declares attributes once; [`plan`] derives validation and plans from them.
//! - [`model`] reads values into typed structs and writes them back.
//! - [`provider`] has the traits a provider implements; [`diag`] the diagnostics it returns;
//!   [`function`] the trait of provider functions (Terraform 1.8+).

pub mod client;
pub mod conn;
pub mod diag;
pub mod docs;
pub mod function;
pub mod identity;
pub mod logging;
pub mod model;
pub mod plan;
mod plugin_services;
pub mod provider;
pub mod schema;
pub mod serve;
mod server;
pub mod tls;
pub mod value;

pub use async_trait::async_trait;
pub use diag::{AttributePath, Diagnostic, Diagnostics, Severity};
pub use function::{Function, FunctionError, Param, Signature};
pub use identity::{IdentityAttribute, IdentitySchema};
pub use model::{Attr, Model};
pub use provider::{
    Action, DataSource, EphemeralResource, ListResource, Listed, Opened, Plan, Provider, Resource,
    State,
};
pub use schema::{
    validators, AttrKind, Attribute, Block, NestedBlock, Nesting, PlanModifier, Schema,
};
pub use value::{Number, Type, Value};
