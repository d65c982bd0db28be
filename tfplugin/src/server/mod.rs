//! The `tfplugin6.Provider` service: decodes each RPC, runs the SDK's share of the work
//! (schema validation, the plan pipeline, result checks) and calls the provider's traits.
//!
//! - this file: the service, its lookups and codecs, and the gRPC trait impl, written by one
//!   macro from the list of RPCs;
//! - [`handlers`]: one method per RPC the SDK answers, request in, response out;
//! - [`checks`]: what Terraform would reject in a plan or an apply result, caught first with
//!   the attribute named.
//!
//! Every RPC answers with gRPC status OK and reports problems as diagnostics: Terraform turns a
//! gRPC error into an unhelpful "Plugin error". Provider code runs under `catch_unwind`, so even
//! a bug becomes a diagnostic instead of a dead plugin. Features this SDK does not offer
//! (list resources, state stores, actions) are answered with a clear error
//! diagnostic, as Terraform expects of a provider without them.

mod checks;
mod handlers;

use crate::diag::{AttributePath, Diagnostic, Diagnostics};
use crate::plan;
use crate::provider::{DataSource, Provider, Resource, State};
use crate::schema::{Block, Schema};
use crate::value::{Type, Value};
use dr_proto::tfplugin6::{self as pb, provider_server};
use futures_util::FutureExt as _;
use std::collections::BTreeMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

type Reply<T> = Result<Response<T>, Status>;
type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

pub(super) struct ResourceEntry {
    pub(super) resource: Arc<dyn Resource>,
    pub(super) schema: Schema,
    pub(super) ty: Type,
    /// Its identity schema and the identity's type, when it has one.
    pub(super) identity: Option<(crate::identity::IdentitySchema, Type)>,
}

impl ResourceEntry {
    /// The identity of the object `state` describes, encoded; `None` without an identity
    /// schema or an object.
    pub(super) fn identity_data(
        &self,
        state: &Value,
    ) -> Result<Option<pb::ResourceIdentityData>, Diagnostic> {
        let Some((_, ty)) = &self.identity else {
            return Ok(None);
        };
        if state.is_null() {
            return Ok(None);
        }
        let identity = self.resource.identity(state);
        Ok(Some(pb::ResourceIdentityData {
            identity_data: Some(encode(&identity, ty, "identity")?),
        }))
    }

    /// The identity a plan announces. Terraform refuses an update (or a no-op) whose planned
    /// identity is not wholly known, and an identity never changes in place (what it holds
    /// forces replacement), so an update whose planned state leaves it unknown (a vault id
    /// unknown while the provider block is) announces the prior one. A create or a
    /// replacement announces whatever is known.
    pub(super) fn planned_identity(
        &self,
        prior: &Value,
        planned: &Value,
        in_place: bool,
    ) -> Result<Option<pb::ResourceIdentityData>, Diagnostic> {
        if self.identity.is_some() && in_place && !prior.is_null() {
            let identity = self.resource.identity(planned);
            if !identity.is_wholly_known() {
                return self.identity_data(prior);
            }
        }
        self.identity_data(planned)
    }
}

pub(super) struct DataSourceEntry {
    pub(super) data_source: Arc<dyn DataSource>,
    pub(super) schema: Schema,
    pub(super) ty: Type,
}

pub(super) struct EphemeralEntry {
    pub(super) ephemeral: Arc<dyn crate::provider::EphemeralResource>,
    pub(super) schema: Schema,
    pub(super) ty: Type,
}

pub(super) struct ListEntry {
    pub(super) list: Arc<dyn crate::provider::ListResource>,
    pub(super) schema: Schema,
    pub(super) ty: Type,
}

pub(super) struct ActionEntry {
    pub(super) action: Arc<dyn crate::provider::Action>,
    pub(super) schema: Schema,
    pub(super) ty: Type,
}

pub(super) struct FunctionEntry {
    pub(super) function: Arc<dyn crate::function::Function>,
    pub(super) signature: crate::function::Signature,
}

pub(crate) struct ProviderService {
    pub(super) provider: Arc<dyn Provider>,
    pub(super) provider_schema: Schema,
    pub(super) provider_ty: Type,
    pub(super) resources: BTreeMap<String, ResourceEntry>,
    pub(super) data_sources: BTreeMap<String, DataSourceEntry>,
    pub(super) ephemerals: BTreeMap<String, EphemeralEntry>,
    pub(super) lists: BTreeMap<String, ListEntry>,
    pub(super) actions: BTreeMap<String, ActionEntry>,
    pub(super) functions: BTreeMap<String, FunctionEntry>,
    /// Mistakes in the schemas, reported from `GetProviderSchema`.
    pub(super) schema_problems: Vec<String>,
}

impl ProviderService {
    pub(crate) fn new(provider: Arc<dyn Provider>) -> Self {
        let provider_schema = provider.schema();
        let mut schema_problems: Vec<String> = provider_schema.block.problems("provider.");
        let resources: BTreeMap<_, _> = provider
            .resources()
            .into_iter()
            .map(|resource| {
                let schema = resource.schema();
                schema_problems
                    .extend(schema.block.problems(&format!("{}.", resource.type_name())));
                let ty = schema.block.implied_type();
                let identity = resource.identity_schema().map(|s| {
                    let ty = s.ty();
                    (s, ty)
                });
                (
                    resource.type_name().to_string(),
                    ResourceEntry {
                        resource,
                        schema,
                        ty,
                        identity,
                    },
                )
            })
            .collect();
        let data_sources: BTreeMap<_, _> = provider
            .data_sources()
            .into_iter()
            .map(|data_source| {
                let schema = data_source.schema();
                schema_problems.extend(
                    schema
                        .block
                        .problems(&format!("data.{}.", data_source.type_name())),
                );
                let ty = schema.block.implied_type();
                (
                    data_source.type_name().to_string(),
                    DataSourceEntry {
                        data_source,
                        schema,
                        ty,
                    },
                )
            })
            .collect();
        let ephemerals: BTreeMap<_, _> = provider
            .ephemeral_resources()
            .into_iter()
            .map(|ephemeral| {
                let schema = ephemeral.schema();
                schema_problems.extend(
                    schema
                        .block
                        .problems(&format!("ephemeral.{}.", ephemeral.type_name())),
                );
                let ty = schema.block.implied_type();
                (
                    ephemeral.type_name().to_string(),
                    EphemeralEntry {
                        ephemeral,
                        schema,
                        ty,
                    },
                )
            })
            .collect();
        let lists: BTreeMap<_, _> = provider
            .list_resources()
            .into_iter()
            .map(|list| {
                let schema = list.schema();
                let name = list.type_name().to_string();
                schema_problems.extend(schema.block.problems(&format!("list.{name}.")));
                if resources.get(&name).is_none_or(|r| r.identity.is_none()) {
                    schema_problems.push(format!(
                        "list.{name}: lists a type that is not a managed resource with an identity"
                    ));
                }
                let ty = schema.block.implied_type();
                (name, ListEntry { list, schema, ty })
            })
            .collect();
        let actions: BTreeMap<_, _> = provider
            .actions()
            .into_iter()
            .map(|action| {
                let schema = action.schema();
                let name = action.type_name().to_string();
                schema_problems.extend(schema.block.problems(&format!("action.{name}.")));
                let ty = schema.block.implied_type();
                (name, ActionEntry { action, schema, ty })
            })
            .collect();
        let functions: BTreeMap<_, _> = provider
            .functions()
            .into_iter()
            .map(|function| {
                let signature = function.signature();
                schema_problems.extend(
                    crate::function::signature_problems(&signature)
                        .into_iter()
                        .map(|p| {
                            format!(
                                "provider::{}::{}: {p}",
                                provider.type_name(),
                                function.name()
                            )
                        }),
                );
                (
                    function.name().to_string(),
                    FunctionEntry {
                        function,
                        signature,
                    },
                )
            })
            .collect();
        let provider_ty = provider_schema.block.implied_type();
        ProviderService {
            provider,
            provider_schema,
            provider_ty,
            resources,
            data_sources,
            ephemerals,
            lists,
            actions,
            functions,
            schema_problems,
        }
    }

    pub(super) fn resource(&self, type_name: &str) -> Result<&ResourceEntry, Diagnostic> {
        self.resources
            .get(type_name)
            .ok_or_else(|| unknown_type("resource", type_name, self.resources.keys()))
    }

    pub(super) fn data_source(&self, type_name: &str) -> Result<&DataSourceEntry, Diagnostic> {
        self.data_sources
            .get(type_name)
            .ok_or_else(|| unknown_type("data source", type_name, self.data_sources.keys()))
    }

    pub(super) fn ephemeral(&self, type_name: &str) -> Result<&EphemeralEntry, Diagnostic> {
        optional_feature(&self.ephemerals, type_name, "Ephemeral Resource")
    }

    pub(super) fn action(&self, type_name: &str) -> Result<&ActionEntry, Diagnostic> {
        optional_feature(&self.actions, type_name, "Action")
    }

    pub(super) fn list(&self, type_name: &str) -> Result<&ListEntry, Diagnostic> {
        optional_feature(&self.lists, type_name, "List Resource")
    }

    pub(super) fn capabilities() -> pb::ServerCapabilities {
        pb::ServerCapabilities {
            plan_destroy: false,
            // The schema never changes within a release: Terraform may cache it.
            get_provider_schema_optional: true,
            move_resource_state: false,
            generate_resource_config: true,
        }
    }
}

/// An entry of a feature a provider may not offer at all (ephemeral and list resources,
/// actions): a provider without any answers as Terraform expects of one that never offered
/// them; one with some names what it offers.
fn optional_feature<'a, E>(
    entries: &'a BTreeMap<String, E>,
    type_name: &str,
    feature: &str,
) -> Result<&'a E, Diagnostic> {
    entries.get(type_name).ok_or_else(|| {
        if entries.is_empty() {
            unsupported(feature, type_name)
        } else {
            unknown_type(&feature.to_lowercase(), type_name, entries.keys())
        }
    })
}

pub(super) fn unknown_type<'a>(
    kind: &str,
    name: &str,
    known: impl Iterator<Item = &'a String>,
) -> Diagnostic {
    let known: Vec<&str> = known.map(String::as_str).collect();
    let offered = if known.is_empty() {
        "none".to_string()
    } else {
        known.join(", ")
    };
    Diagnostic::error(
        format!("Unknown {kind} Type"),
        format!("This provider has no {kind} type {name:?}. It offers: {offered}."),
    )
}

pub(super) fn unsupported(feature: &str, name: &str) -> Diagnostic {
    Diagnostic::error(
        format!("{feature} Not Supported"),
        format!("This provider offers no {feature}s, so {name:?} cannot be used. Check the provider's documentation."),
    )
}

/// Decodes a `DynamicValue`: msgpack when present, else JSON, else null.
pub(super) fn decode(
    dv: Option<&pb::DynamicValue>,
    ty: &Type,
    what: &str,
) -> Result<Value, Diagnostic> {
    let result = match dv {
        Some(dv) if !dv.msgpack.is_empty() => Value::from_msgpack(&dv.msgpack, ty),
        Some(dv) if !dv.json.is_empty() => serde_json::from_slice(&dv.json)
            .map_err(|e| crate::value::CodecError {
                path: "(root)".into(),
                message: e.to_string(),
            })
            .and_then(|json| Value::from_json(&json, ty)),
        _ => Ok(Value::Null),
    };
    result.map_err(|e| {
        Diagnostic::error(
            "Invalid Value From Terraform",
            format!("Cannot decode the {what}: {e}."),
        )
    })
}

pub(super) fn encode(value: &Value, ty: &Type, what: &str) -> Result<pb::DynamicValue, Diagnostic> {
    value.to_msgpack(ty).map(|msgpack| pb::DynamicValue { msgpack, json: Vec::new() }).map_err(|e| {
        Diagnostic::error(
            "Provider Produced An Invalid Value",
            format!("The provider's {what} does not fit its schema: {e}. This is a bug in the provider; please report it."),
        )
    })
}

/// Encodes a resource state or data source result, normalized to what Terraform expects of
/// nested blocks (see [`Block::normalize`]).
pub(super) fn encode_object(
    value: &Value,
    block: &Block,
    ty: &Type,
    what: &str,
) -> Result<pb::DynamicValue, Diagnostic> {
    let mut value = value.clone();
    block.normalize(&mut value);
    encode(&value, ty, what)
}

/// A returned state keeps the private bytes it was given unless the provider set new ones, so
/// a resource that ignores private data never wipes it.
pub(super) fn keep_private(mut returned: State, given: &[u8]) -> State {
    if returned.private.is_empty() {
        returned.private = given.to_vec();
    }
    returned
}

/// Decodes a configuration, runs the schema's validators, then the provider's own checks.
pub(super) async fn validate(
    block: &Block,
    ty: &Type,
    config: Option<&pb::DynamicValue>,
    own_checks: impl AsyncFnOnce(&Value, &mut Diagnostics),
) -> Diagnostics {
    let mut diags = Diagnostics::new();
    match decode(config, ty, "configuration") {
        Ok(config) => {
            plan::validate_config(block, &config, &AttributePath::root(), &mut diags);
            if let Err(d) = catch(own_checks(&config, &mut diags)).await {
                diags.push(d);
            }
        }
        Err(d) => diags.push(d),
    }
    diags
}

/// Runs provider code, turning a panic into a diagnostic.
pub(super) async fn catch<T>(fut: impl Future<Output = T>) -> Result<T, Diagnostic> {
    AssertUnwindSafe(fut).catch_unwind().await.map_err(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_string());
        tracing::error!(%message, "provider panicked");
        Diagnostic::error(
            "Provider Panicked",
            format!("The provider hit an internal error and stopped this operation: {message}. Please report this bug."),
        )
    })
}

fn items_stream<T: Send + 'static>(items: Vec<T>) -> BoxStream<T> {
    Box::pin(tokio_stream::iter(items.into_iter().map(Ok)))
}

/// Writes the gRPC trait impl. `tonic` declares the trait with `async_trait`, which has to see
/// every method, so the macro writes the whole impl:
/// - `answered`: delegates to the handler of the same name;
/// - `streamed`: a handler's items, sent as a stream;
/// - `unsupported`: `RPC => response module (feature, the request field naming the type)`,
///   answered with the diagnostic [`unsupported`] writes.
macro_rules! provider_service {
    (
        answered { $($rpc:ident),* $(,)? }
        streamed { $($srpc:ident: $Stream:ident => $item:ty),* $(,)? }
        unsupported { $($stub:ident => $module:ident($feature:literal, $name:ident)),* $(,)? }
    ) => {
        #[tonic::async_trait]
        impl provider_server::Provider for ProviderService {
            $(
                async fn $rpc(&self, r: Request<pb::$rpc::Request>) -> Reply<pb::$rpc::Response> {
                    Ok(Response::new(self.$rpc(r.into_inner()).await))
                }
            )*

            $(
                type $Stream = BoxStream<$item>;

                async fn $srpc(&self, r: Request<pb::$srpc::Request>) -> Reply<Self::$Stream> {
                    Ok(Response::new(items_stream(self.$srpc(r.into_inner()).await)))
                }
            )*

            $(
                async fn $stub(&self, r: Request<pb::$module::Request>) -> Reply<pb::$module::Response> {
                    #[allow(clippy::needless_update)] // some responses hold only diagnostics
                    let reply = pb::$module::Response {
                        diagnostics: vec![unsupported($feature, &r.get_ref().$name).to_proto()],
                        ..Default::default()
                    };
                    Ok(Response::new(reply))
                }
            )*

            // The one client-streaming RPC: the chunks are drained for the type name.
            async fn write_state_bytes(
                &self,
                r: Request<Streaming<pb::write_state_bytes::RequestChunk>>,
            ) -> Reply<pb::write_state_bytes::Response> {
                let mut chunks = r.into_inner();
                let mut type_name = String::new();
                while let Ok(Some(chunk)) = chunks.message().await {
                    if let Some(meta) = chunk.meta {
                        type_name = meta.type_name;
                    }
                }
                Ok(Response::new(pb::write_state_bytes::Response {
                    diagnostics: vec![unsupported("State Store", &type_name).to_proto()],
                }))
            }
        }
    };
}

provider_service! {
    answered {
        get_metadata,
        get_provider_schema,
        validate_provider_config,
        validate_resource_config,
        validate_data_resource_config,
        upgrade_resource_state,
        get_resource_identity_schemas,
        upgrade_resource_identity,
        configure_provider,
        read_resource,
        plan_resource_change,
        apply_resource_change,
        import_resource_state,
        move_resource_state,
        read_data_source,
        generate_resource_config,
        validate_ephemeral_resource_config,
        open_ephemeral_resource,
        renew_ephemeral_resource,
        close_ephemeral_resource,
        validate_list_resource_config,
        validate_action_config,
        plan_action,
        get_functions,
        call_function,
        stop_provider,
    }
    streamed {
        list_resource: ListResourceStream => pb::list_resource::Event,
        read_state_bytes: ReadStateBytesStream => pb::read_state_bytes::Response,
        invoke_action: InvokeActionStream => pb::invoke_action::Event,
    }
    unsupported {
        validate_state_store_config => validate_state_store("State Store", type_name),
        configure_state_store => configure_state_store("State Store", type_name),
        lock_state => lock_state("State Store", type_name),
        unlock_state => unlock_state("State Store", type_name),
        get_states => get_states("State Store", type_name),
        delete_state => delete_state("State Store", type_name),
    }
}
