//! The `tfplugin6.Provider` service: decodes each RPC, runs the SDK's share of the work
//! (schema validation, the plan pipeline, result checks) and calls the provider's traits.
//!
//! Every RPC answers with gRPC status OK and reports problems as diagnostics: Terraform turns a
//! gRPC error into an unhelpful "Plugin error". Provider code runs under `catch_unwind`, so even
//! a bug becomes a diagnostic instead of a dead plugin. Features this SDK does not offer
//! (functions, ephemeral and list resources, state stores, actions, moves) are answered with
//! empty lists or a clear error diagnostic, as Terraform expects of a provider without them.

use crate::diag::{AttributePath, Diagnostic, Diagnostics};
use crate::plan;
use crate::provider::{DataSource, Plan, Provider, Resource, State};
use crate::schema::{Block, Schema};
use crate::value::{Type, Value};
use dr_proto::tfplugin6::{self as pb, provider_server};
use futures_util::FutureExt as _;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

type Reply<T> = Result<Response<T>, Status>;
type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

struct ResourceEntry {
    resource: Arc<dyn Resource>,
    schema: Schema,
    ty: Type,
}

struct DataSourceEntry {
    data_source: Arc<dyn DataSource>,
    schema: Schema,
    ty: Type,
}

pub(crate) struct ProviderService {
    provider: Arc<dyn Provider>,
    provider_schema: Schema,
    provider_ty: Type,
    resources: BTreeMap<String, ResourceEntry>,
    data_sources: BTreeMap<String, DataSourceEntry>,
    /// Mistakes in the schemas, reported from `GetProviderSchema`.
    schema_problems: Vec<String>,
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
                (
                    resource.type_name().to_string(),
                    ResourceEntry {
                        resource,
                        schema,
                        ty,
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
        let provider_ty = provider_schema.block.implied_type();
        ProviderService {
            provider,
            provider_schema,
            provider_ty,
            resources,
            data_sources,
            schema_problems,
        }
    }

    fn resource(&self, type_name: &str) -> Result<&ResourceEntry, Diagnostic> {
        self.resources
            .get(type_name)
            .ok_or_else(|| unknown_type("resource", type_name, self.resources.keys()))
    }

    fn data_source(&self, type_name: &str) -> Result<&DataSourceEntry, Diagnostic> {
        self.data_sources
            .get(type_name)
            .ok_or_else(|| unknown_type("data source", type_name, self.data_sources.keys()))
    }

    fn capabilities() -> pb::ServerCapabilities {
        pb::ServerCapabilities {
            plan_destroy: false,
            // The schema never changes within a release: Terraform may cache it.
            get_provider_schema_optional: true,
            move_resource_state: false,
            generate_resource_config: true,
        }
    }
}

fn unknown_type<'a>(kind: &str, name: &str, known: impl Iterator<Item = &'a String>) -> Diagnostic {
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

fn unsupported(feature: &str, name: &str) -> Diagnostic {
    Diagnostic::error(
        format!("{feature} Not Supported"),
        format!("This provider offers no {feature}s, so {name:?} cannot be used. Check the provider's documentation."),
    )
}

/// Decodes a `DynamicValue`: msgpack when present, else JSON, else null.
fn decode(dv: Option<&pb::DynamicValue>, ty: &Type, what: &str) -> Result<Value, Diagnostic> {
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

fn encode(value: &Value, ty: &Type, what: &str) -> Result<pb::DynamicValue, Diagnostic> {
    value.to_msgpack(ty).map(|msgpack| pb::DynamicValue { msgpack, json: Vec::new() }).map_err(|e| {
        Diagnostic::error(
            "Provider Produced An Invalid Value",
            format!("The provider's {what} does not fit its schema: {e}. This is a bug in the provider; please report it."),
        )
    })
}

/// Encodes a resource state or data source result, normalized to what Terraform expects of
/// nested blocks (see [`Block::normalize`]).
fn encode_object(
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
fn keep_private(mut returned: State, given: &[u8]) -> State {
    if returned.private.is_empty() {
        returned.private = given.to_vec();
    }
    returned
}

/// Decodes a configuration, runs the schema's validators, then the provider's own checks.
async fn validate(
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
async fn catch<T>(fut: impl Future<Output = T>) -> Result<T, Diagnostic> {
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

fn ok<T>(t: T) -> Reply<T> {
    Ok(Response::new(t))
}

/// Terraform rejects an apply whose result still holds unknowns or differs from a known
/// planned value; checking here names the attribute and blames the provider, not the user.
fn check_apply_result(planned: &Value, new: &Value, diags: &mut Diagnostics) {
    if let Some(path) = first_unknown(new, &AttributePath::root()) {
        diags.push(
            Diagnostic::error(
                "Provider Returned An Unknown Value",
                format!(
                    "After apply, {} is still unknown. This is a bug in the provider.",
                    path_name(&path)
                ),
            )
            .at(path),
        );
        return;
    }
    check_matches_plan(planned, new, &AttributePath::root(), diags);
}

/// Terraform requires every attribute the provider may not set to be planned exactly as
/// configured; a `modify_plan` that breaks this is caught here with the attribute named.
fn check_plan_keeps_config(
    block: &Block,
    config: &Value,
    planned: &Value,
    diags: &mut Diagnostics,
) {
    for attr in block.attributes.iter().filter(|a| !a.is_computed_on_wire()) {
        if planned.attr(&attr.name) != config.attr(&attr.name) {
            diags.push(
                Diagnostic::error(
                    "Provider Produced Invalid Plan",
                    format!("The plan changed {}, which only configuration may set. This is a bug in the provider.", attr.name),
                )
                .at(AttributePath::attr(&attr.name)),
            );
        }
    }
}

/// The path of the first unknown inside `value` (a set with unknowns counts as a whole).
fn first_unknown(value: &Value, path: &AttributePath) -> Option<AttributePath> {
    match value {
        Value::Unknown => Some(path.clone()),
        Value::Object(m) => m
            .iter()
            .find_map(|(k, v)| first_unknown(v, &path.clone().attribute(k))),
        Value::Map(m) => m
            .iter()
            .find_map(|(k, v)| first_unknown(v, &path.clone().key(k))),
        Value::List(e) | Value::Tuple(e) => e
            .iter()
            .enumerate()
            .find_map(|(i, v)| first_unknown(v, &path.clone().index(i))),
        Value::Set(_) => (!value.is_wholly_known()).then(|| path.clone()),
        Value::Dynamic(_, v) => first_unknown(v, path),
        _ => None,
    }
}

fn check_matches_plan(planned: &Value, new: &Value, path: &AttributePath, diags: &mut Diagnostics) {
    if planned.is_unknown() {
        return;
    }
    match (planned, new) {
        (Value::Object(p), Value::Object(n)) => {
            for (k, pv) in p {
                check_matches_plan(
                    pv,
                    n.get(k).unwrap_or(&Value::Null),
                    &path.clone().attribute(k),
                    diags,
                );
            }
            return;
        }
        (Value::List(p), Value::List(n)) | (Value::Tuple(p), Value::Tuple(n))
            if p.len() == n.len() =>
        {
            for (i, (pv, nv)) in p.iter().zip(n).enumerate() {
                check_matches_plan(pv, nv, &path.clone().index(i), diags);
            }
            return;
        }
        (Value::Map(p), Value::Map(n)) if p.keys().eq(n.keys()) => {
            for ((k, pv), nv) in p.iter().zip(n.values()) {
                check_matches_plan(pv, nv, &path.clone().key(k), diags);
            }
            return;
        }
        (Value::Dynamic(pt, pv), Value::Dynamic(nt, nv)) if pt == nt => {
            check_matches_plan(pv, nv, path, diags);
            return;
        }
        // Set elements with unknowns have no identity to match on; the known ones must
        // still be there after apply.
        (Value::Set(p), Value::Set(n))
            if !planned.is_wholly_known()
                && p.len() == n.len()
                && p.iter()
                    .filter(|e| e.is_wholly_known())
                    .all(|e| n.contains(e)) =>
        {
            return;
        }
        (p, n) if p == n => return,
        _ => {}
    }
    diags.push(
        Diagnostic::error(
            "Provider Produced Inconsistent Result",
            format!(
                "After apply, {} differs from the planned value. This is a bug in the provider.",
                path_name(path)
            ),
        )
        .at(path.clone()),
    );
}

fn path_name(path: &AttributePath) -> String {
    if path.is_root() {
        "the object".to_string()
    } else {
        path.to_string()
    }
}

/// Drops attributes the schema no longer has, as HashiCorp's framework does for same-version
/// state, so removing an optional attribute does not strand existing state.
fn prune_to_type(json: &mut serde_json::Value, ty: &Type) {
    match (json, ty) {
        (serde_json::Value::Object(obj), Type::Object(attrs)) => {
            obj.retain(|k, _| attrs.contains_key(k));
            for (k, v) in obj.iter_mut() {
                prune_to_type(v, &attrs[k]);
            }
        }
        (serde_json::Value::Object(obj), Type::Map(elem)) => {
            obj.values_mut().for_each(|v| prune_to_type(v, elem))
        }
        (serde_json::Value::Array(items), Type::List(elem) | Type::Set(elem)) => {
            items.iter_mut().for_each(|v| prune_to_type(v, elem));
        }
        _ => {}
    }
}

/// The configuration a resource's state implies: what a user writes, at every depth. Values
/// the provider computes are dropped, as are optional sensitive values (the user supplies
/// those); required ones stay, or the configuration would not be valid.
fn config_from_state(block: &Block, state: &Value) -> Value {
    let Value::Object(attrs) = state else {
        return state.clone();
    };
    let mut out = BTreeMap::new();
    for attr in &block.attributes {
        let v = attrs.get(&attr.name).cloned().unwrap_or(Value::Null);
        let keep = attr.kind.is_required()
            || (attr.kind.is_optional() && !attr.sensitive && attr.default.as_ref() != Some(&v));
        out.insert(attr.name.clone(), if keep { v } else { Value::Null });
    }
    for nested in &block.blocks {
        let value = attrs.get(&nested.type_name).unwrap_or(&Value::Null);
        out.insert(
            nested.type_name.clone(),
            value.map_elements(|v| config_from_state(&nested.block, v)),
        );
    }
    Value::Object(out)
}

fn single_item_stream<T: Send + 'static>(item: T) -> BoxStream<T> {
    Box::pin(tokio_stream::once(Ok(item)))
}

#[tonic::async_trait]
impl provider_server::Provider for ProviderService {
    async fn get_metadata(
        &self,
        _r: Request<pb::get_metadata::Request>,
    ) -> Reply<pb::get_metadata::Response> {
        ok(pb::get_metadata::Response {
            server_capabilities: Some(Self::capabilities()),
            diagnostics: Vec::new(),
            data_sources: self
                .data_sources
                .keys()
                .map(|n| pb::get_metadata::DataSourceMetadata {
                    type_name: n.clone(),
                })
                .collect(),
            resources: self
                .resources
                .keys()
                .map(|n| pb::get_metadata::ResourceMetadata {
                    type_name: n.clone(),
                })
                .collect(),
            functions: Vec::new(),
            ephemeral_resources: Vec::new(),
            list_resources: Vec::new(),
            state_stores: Vec::new(),
            actions: Vec::new(),
        })
    }

    async fn get_provider_schema(
        &self,
        _r: Request<pb::get_provider_schema::Request>,
    ) -> Reply<pb::get_provider_schema::Response> {
        let diagnostics = self
            .schema_problems
            .iter()
            .map(|p| {
                Diagnostic::error(
                    "Invalid Provider Schema",
                    format!("{p}. This is a bug in the provider."),
                )
                .to_proto()
            })
            .collect();
        ok(pb::get_provider_schema::Response {
            provider: Some(self.provider_schema.to_proto()),
            resource_schemas: self
                .resources
                .iter()
                .map(|(n, e)| (n.clone(), e.schema.to_proto()))
                .collect(),
            data_source_schemas: self
                .data_sources
                .iter()
                .map(|(n, e)| (n.clone(), e.schema.to_proto()))
                .collect(),
            diagnostics,
            // An empty block, never a null one: Terraform 1.0 crashes on a schema without a block.
            provider_meta: Some(Schema::default().to_proto()),
            server_capabilities: Some(Self::capabilities()),
            functions: HashMap::new(),
            ephemeral_resource_schemas: HashMap::new(),
            list_resource_schemas: HashMap::new(),
            state_store_schemas: HashMap::new(),
            action_schemas: HashMap::new(),
        })
    }

    async fn validate_provider_config(
        &self,
        r: Request<pb::validate_provider_config::Request>,
    ) -> Reply<pb::validate_provider_config::Response> {
        let config = r.get_ref().config.as_ref();
        let provider = &self.provider;
        let diags = validate(
            &self.provider_schema.block,
            &self.provider_ty,
            config,
            async |c, d| provider.validate(c, d).await,
        )
        .await;
        ok(pb::validate_provider_config::Response {
            diagnostics: diags.to_proto(),
        })
    }

    async fn validate_resource_config(
        &self,
        r: Request<pb::validate_resource_config::Request>,
    ) -> Reply<pb::validate_resource_config::Response> {
        let r = r.get_ref();
        let diags = match self.resource(&r.type_name) {
            Ok(e) => {
                validate(&e.schema.block, &e.ty, r.config.as_ref(), async |c, d| {
                    e.resource.validate(c, d).await
                })
                .await
            }
            Err(d) => d.into(),
        };
        ok(pb::validate_resource_config::Response {
            diagnostics: diags.to_proto(),
        })
    }

    async fn validate_data_resource_config(
        &self,
        r: Request<pb::validate_data_resource_config::Request>,
    ) -> Reply<pb::validate_data_resource_config::Response> {
        let r = r.get_ref();
        let diags = match self.data_source(&r.type_name) {
            Ok(e) => {
                validate(&e.schema.block, &e.ty, r.config.as_ref(), async |c, d| {
                    e.data_source.validate(c, d).await
                })
                .await
            }
            Err(d) => d.into(),
        };
        ok(pb::validate_data_resource_config::Response {
            diagnostics: diags.to_proto(),
        })
    }

    async fn upgrade_resource_state(
        &self,
        r: Request<pb::upgrade_resource_state::Request>,
    ) -> Reply<pb::upgrade_resource_state::Response> {
        let r = r.into_inner();
        let mut diags = Diagnostics::new();
        let upgraded = async {
            let entry = self.resource(&r.type_name)?;
            let raw = r.raw_state.unwrap_or_default();
            if raw.json.is_empty() {
                if !raw.flatmap.is_empty() {
                    return Err(Diagnostic::error(
                        "Unsupported State Format",
                        "This state was written in the flatmap format of Terraform 0.11 and older; apply it with a \
                         Terraform 0.12+ provider release first.",
                    ));
                }
                return encode(&Value::Null, &entry.ty, "upgraded state");
            }
            let json: serde_json::Value = serde_json::from_slice(&raw.json)
                .map_err(|e| Diagnostic::error("Invalid Stored State", format!("The stored state is not JSON: {e}.")))?;
            let mut json = if r.version == entry.schema.version {
                json
            } else {
                catch(async { entry.resource.upgrade_state(r.version, json, &mut diags) }).await?
            };
            prune_to_type(&mut json, &entry.ty);
            let value = Value::from_json(&json, &entry.ty).map_err(|e| {
                Diagnostic::error(
                    "Cannot Read Stored State",
                    format!("The state of this {} does not fit the schema (version {}): {e}.", r.type_name, entry.schema.version),
                )
            })?;
            encode_object(&value, &entry.schema.block, &entry.ty, "upgraded state")
        }
        .await;
        let upgraded_state = upgraded.map_err(|d| diags.push(d)).ok();
        ok(pb::upgrade_resource_state::Response {
            upgraded_state,
            diagnostics: diags.to_proto(),
        })
    }

    async fn get_resource_identity_schemas(
        &self,
        _r: Request<pb::get_resource_identity_schemas::Request>,
    ) -> Reply<pb::get_resource_identity_schemas::Response> {
        // No resource declares an identity; Terraform falls back to import IDs.
        ok(pb::get_resource_identity_schemas::Response {
            identity_schemas: HashMap::new(),
            diagnostics: Vec::new(),
        })
    }

    async fn upgrade_resource_identity(
        &self,
        r: Request<pb::upgrade_resource_identity::Request>,
    ) -> Reply<pb::upgrade_resource_identity::Response> {
        let d = unsupported("Resource Identity", &r.get_ref().type_name);
        ok(pb::upgrade_resource_identity::Response {
            upgraded_identity: None,
            diagnostics: vec![d.to_proto()],
        })
    }

    async fn configure_provider(
        &self,
        r: Request<pb::configure_provider::Request>,
    ) -> Reply<pb::configure_provider::Response> {
        let mut diags = Diagnostics::new();
        match decode(
            r.get_ref().config.as_ref(),
            &self.provider_ty,
            "provider configuration",
        ) {
            Ok(config) => {
                if let Err(d) = catch(self.provider.configure(&config, &mut diags)).await {
                    diags.push(d);
                }
            }
            Err(d) => diags.push(d),
        }
        ok(pb::configure_provider::Response {
            diagnostics: diags.to_proto(),
        })
    }

    async fn read_resource(
        &self,
        r: Request<pb::read_resource::Request>,
    ) -> Reply<pb::read_resource::Response> {
        let r = r.into_inner();
        let mut diags = Diagnostics::new();
        let mut reply = pb::read_resource::Response {
            private: r.private.clone(),
            ..Default::default()
        };
        let result = async {
            let entry = self.resource(&r.type_name)?;
            let current = State {
                value: decode(r.current_state.as_ref(), &entry.ty, "current state")?,
                private: r.private,
            };
            let new = keep_private(
                catch(entry.resource.read(&current, &mut diags)).await?,
                &current.private,
            );
            Ok::<_, Diagnostic>((
                encode_object(
                    &new.value,
                    &entry.schema.block,
                    &entry.ty,
                    "refreshed state",
                )?,
                new.private,
            ))
        }
        .await;
        match result {
            Ok((state, private)) => {
                reply.new_state = Some(state);
                reply.private = private;
            }
            Err(d) => diags.push(d),
        }
        reply.diagnostics = diags.to_proto();
        ok(reply)
    }

    async fn plan_resource_change(
        &self,
        r: Request<pb::plan_resource_change::Request>,
    ) -> Reply<pb::plan_resource_change::Response> {
        let r = r.into_inner();
        let mut diags = Diagnostics::new();
        let mut reply = pb::plan_resource_change::Response::default();
        let result = async {
            let entry = self.resource(&r.type_name)?;
            let prior = State {
                value: decode(r.prior_state.as_ref(), &entry.ty, "prior state")?,
                private: r.prior_private,
            };
            let proposed = decode(
                r.proposed_new_state.as_ref(),
                &entry.ty,
                "proposed new state",
            )?;
            let config = decode(r.config.as_ref(), &entry.ty, "configuration")?;
            if proposed.is_null() {
                // A destroy: nothing to plan.
                return Ok((
                    encode(&Value::Null, &entry.ty, "plan")?,
                    Vec::new(),
                    prior.private,
                ));
            }
            let (planned, requires_replace) =
                plan::plan_from_schema(&entry.schema.block, &prior.value, &proposed, &config);
            let mut plan = Plan {
                prior: &prior,
                config: &config,
                planned,
                planned_private: prior.private.clone(),
                requires_replace,
            };
            catch(entry.resource.modify_plan(&mut plan, &mut diags)).await?;
            check_plan_keeps_config(&entry.schema.block, &config, &plan.planned, &mut diags);
            plan::normalize_replace_paths(&mut plan.requires_replace);
            let paths = plan
                .requires_replace
                .iter()
                .map(AttributePath::to_proto)
                .collect();
            Ok::<_, Diagnostic>((
                encode(&plan.planned, &entry.ty, "plan")?,
                paths,
                plan.planned_private,
            ))
        }
        .await;
        match result {
            Ok((planned, paths, private)) => {
                reply.planned_state = Some(planned);
                reply.requires_replace = paths;
                reply.planned_private = private;
            }
            Err(d) => diags.push(d),
        }
        reply.diagnostics = diags.to_proto();
        ok(reply)
    }

    async fn apply_resource_change(
        &self,
        r: Request<pb::apply_resource_change::Request>,
    ) -> Reply<pb::apply_resource_change::Response> {
        let r = r.into_inner();
        let mut diags = Diagnostics::new();
        let mut reply = pb::apply_resource_change::Response::default();
        let result = async {
            let entry = self.resource(&r.type_name)?;
            let prior_value = decode(r.prior_state.as_ref(), &entry.ty, "prior state")?;
            let planned = State { value: decode(r.planned_state.as_ref(), &entry.ty, "planned state")?, private: r.planned_private };
            let config = decode(r.config.as_ref(), &entry.ty, "configuration")?;
            let new = if planned.value.is_null() {
                let prior = State { value: prior_value, private: planned.private.clone() };
                catch(entry.resource.delete(&prior, &mut diags)).await?;
                // A failed delete leaves the object in place: keep it in state.
                if diags.has_errors() { prior } else { State::default() }
            } else if prior_value.is_null() {
                keep_private(catch(entry.resource.create(&planned, &config, &mut diags)).await?, &planned.private)
            } else {
                let prior = State { value: prior_value, private: planned.private.clone() };
                keep_private(catch(entry.resource.update(&prior, &planned, &config, &mut diags)).await?, &planned.private)
            };
            if !diags.has_errors() {
                if !planned.value.is_null() && new.value.is_null() {
                    diags.error(
                        "Provider Returned No Object",
                        format!("Applying {} returned nothing and reported no error. This is a bug in the provider.", r.type_name),
                    );
                } else {
                    check_apply_result(&planned.value, &new.value, &mut diags);
                }
            }
            Ok::<_, Diagnostic>((encode_object(&new.value, &entry.schema.block, &entry.ty, "new state")?, new.private))
        }
        .await;
        match result {
            Ok((state, private)) => {
                reply.new_state = Some(state);
                reply.private = private;
            }
            Err(d) => diags.push(d),
        }
        reply.diagnostics = diags.to_proto();
        ok(reply)
    }

    async fn import_resource_state(
        &self,
        r: Request<pb::import_resource_state::Request>,
    ) -> Reply<pb::import_resource_state::Response> {
        let r = r.into_inner();
        let mut diags = Diagnostics::new();
        let mut reply = pb::import_resource_state::Response::default();
        let result = async {
            let entry = self.resource(&r.type_name)?;
            let imported = catch(entry.resource.import(&r.id, &mut diags)).await?;
            if imported.value.is_null() {
                return Ok(None);
            }
            Ok::<_, Diagnostic>(Some(pb::import_resource_state::ImportedResource {
                type_name: r.type_name.clone(),
                state: Some(encode_object(
                    &imported.value,
                    &entry.schema.block,
                    &entry.ty,
                    "imported state",
                )?),
                private: imported.private,
                identity: None,
            }))
        }
        .await;
        match result {
            Ok(Some(imported)) => reply.imported_resources.push(imported),
            Ok(None) if !diags.has_errors() => diags.error(
                "Nothing To Import",
                format!("No {} was found for import ID {:?}.", r.type_name, r.id),
            ),
            Ok(None) => {}
            Err(d) => diags.push(d),
        }
        reply.diagnostics = diags.to_proto();
        ok(reply)
    }

    async fn move_resource_state(
        &self,
        r: Request<pb::move_resource_state::Request>,
    ) -> Reply<pb::move_resource_state::Response> {
        let r = r.into_inner();
        let d = Diagnostic::error(
            "Move Not Supported",
            format!(
                "{} cannot be moved into {}. Use `terraform import` for the target instead.",
                r.source_type_name, r.target_type_name
            ),
        );
        ok(pb::move_resource_state::Response {
            diagnostics: vec![d.to_proto()],
            ..Default::default()
        })
    }

    async fn read_data_source(
        &self,
        r: Request<pb::read_data_source::Request>,
    ) -> Reply<pb::read_data_source::Response> {
        let r = r.into_inner();
        let mut diags = Diagnostics::new();
        let mut reply = pb::read_data_source::Response::default();
        let result = async {
            let entry = self.data_source(&r.type_name)?;
            let config = decode(r.config.as_ref(), &entry.ty, "configuration")?;
            let state = catch(entry.data_source.read(&config, &mut diags)).await?;
            if !diags.has_errors() && (state.is_null() || !state.is_wholly_known()) {
                diags.error(
                    "Provider Returned An Incomplete Result",
                    format!(
                        "Reading data.{} left values unknown. This is a bug in the provider.",
                        r.type_name
                    ),
                );
            }
            encode_object(&state, &entry.schema.block, &entry.ty, "data source result")
        }
        .await;
        match result {
            Ok(state) => reply.state = Some(state),
            Err(d) => diags.push(d),
        }
        reply.diagnostics = diags.to_proto();
        ok(reply)
    }

    async fn generate_resource_config(
        &self,
        r: Request<pb::generate_resource_config::Request>,
    ) -> Reply<pb::generate_resource_config::Response> {
        let r = r.into_inner();
        let result = self.resource(&r.type_name).and_then(|entry| {
            let state = decode(r.state.as_ref(), &entry.ty, "state")?;
            encode(
                &config_from_state(&entry.schema.block, &state),
                &entry.ty,
                "generated configuration",
            )
        });
        let (config, diagnostics) = match result {
            Ok(c) => (Some(c), Vec::new()),
            Err(d) => (None, vec![d.to_proto()]),
        };
        ok(pb::generate_resource_config::Response {
            config,
            diagnostics,
        })
    }

    async fn validate_ephemeral_resource_config(
        &self,
        r: Request<pb::validate_ephemeral_resource_config::Request>,
    ) -> Reply<pb::validate_ephemeral_resource_config::Response> {
        let d = unsupported("Ephemeral Resource", &r.get_ref().type_name);
        ok(pb::validate_ephemeral_resource_config::Response {
            diagnostics: vec![d.to_proto()],
        })
    }

    async fn open_ephemeral_resource(
        &self,
        r: Request<pb::open_ephemeral_resource::Request>,
    ) -> Reply<pb::open_ephemeral_resource::Response> {
        let d = unsupported("Ephemeral Resource", &r.get_ref().type_name);
        ok(pb::open_ephemeral_resource::Response {
            diagnostics: vec![d.to_proto()],
            ..Default::default()
        })
    }

    async fn renew_ephemeral_resource(
        &self,
        r: Request<pb::renew_ephemeral_resource::Request>,
    ) -> Reply<pb::renew_ephemeral_resource::Response> {
        let d = unsupported("Ephemeral Resource", &r.get_ref().type_name);
        ok(pb::renew_ephemeral_resource::Response {
            diagnostics: vec![d.to_proto()],
            ..Default::default()
        })
    }

    async fn close_ephemeral_resource(
        &self,
        r: Request<pb::close_ephemeral_resource::Request>,
    ) -> Reply<pb::close_ephemeral_resource::Response> {
        let d = unsupported("Ephemeral Resource", &r.get_ref().type_name);
        ok(pb::close_ephemeral_resource::Response {
            diagnostics: vec![d.to_proto()],
        })
    }

    type ListResourceStream = BoxStream<pb::list_resource::Event>;

    async fn list_resource(
        &self,
        r: Request<pb::list_resource::Request>,
    ) -> Reply<Self::ListResourceStream> {
        let d = unsupported("List Resource", &r.get_ref().type_name);
        ok(single_item_stream(pb::list_resource::Event {
            diagnostic: vec![d.to_proto()],
            ..Default::default()
        }))
    }

    async fn validate_list_resource_config(
        &self,
        r: Request<pb::validate_list_resource_config::Request>,
    ) -> Reply<pb::validate_list_resource_config::Response> {
        let d = unsupported("List Resource", &r.get_ref().type_name);
        ok(pb::validate_list_resource_config::Response {
            diagnostics: vec![d.to_proto()],
        })
    }

    async fn get_functions(
        &self,
        _r: Request<pb::get_functions::Request>,
    ) -> Reply<pb::get_functions::Response> {
        ok(pb::get_functions::Response {
            functions: HashMap::new(),
            diagnostics: Vec::new(),
        })
    }

    async fn call_function(
        &self,
        r: Request<pb::call_function::Request>,
    ) -> Reply<pb::call_function::Response> {
        let error = pb::FunctionError {
            text: format!(
                "This provider offers no functions, so {:?} cannot be called.",
                r.get_ref().name
            ),
            function_argument: None,
        };
        ok(pb::call_function::Response {
            result: None,
            error: Some(error),
        })
    }

    async fn validate_state_store_config(
        &self,
        r: Request<pb::validate_state_store::Request>,
    ) -> Reply<pb::validate_state_store::Response> {
        let d = unsupported("State Store", &r.get_ref().type_name);
        ok(pb::validate_state_store::Response {
            diagnostics: vec![d.to_proto()],
        })
    }

    async fn configure_state_store(
        &self,
        r: Request<pb::configure_state_store::Request>,
    ) -> Reply<pb::configure_state_store::Response> {
        let d = unsupported("State Store", &r.get_ref().type_name);
        ok(pb::configure_state_store::Response {
            diagnostics: vec![d.to_proto()],
            capabilities: None,
        })
    }

    type ReadStateBytesStream = BoxStream<pb::read_state_bytes::Response>;

    async fn read_state_bytes(
        &self,
        r: Request<pb::read_state_bytes::Request>,
    ) -> Reply<Self::ReadStateBytesStream> {
        let d = unsupported("State Store", &r.get_ref().type_name);
        ok(single_item_stream(pb::read_state_bytes::Response {
            diagnostics: vec![d.to_proto()],
            ..Default::default()
        }))
    }

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
        let d = unsupported("State Store", &type_name);
        ok(pb::write_state_bytes::Response {
            diagnostics: vec![d.to_proto()],
        })
    }

    async fn lock_state(
        &self,
        r: Request<pb::lock_state::Request>,
    ) -> Reply<pb::lock_state::Response> {
        let d = unsupported("State Store", &r.get_ref().type_name);
        ok(pb::lock_state::Response {
            lock_id: String::new(),
            diagnostics: vec![d.to_proto()],
        })
    }

    async fn unlock_state(
        &self,
        r: Request<pb::unlock_state::Request>,
    ) -> Reply<pb::unlock_state::Response> {
        let d = unsupported("State Store", &r.get_ref().type_name);
        ok(pb::unlock_state::Response {
            diagnostics: vec![d.to_proto()],
        })
    }

    async fn get_states(
        &self,
        r: Request<pb::get_states::Request>,
    ) -> Reply<pb::get_states::Response> {
        let d = unsupported("State Store", &r.get_ref().type_name);
        ok(pb::get_states::Response {
            state_id: Vec::new(),
            diagnostics: vec![d.to_proto()],
        })
    }

    async fn delete_state(
        &self,
        r: Request<pb::delete_state::Request>,
    ) -> Reply<pb::delete_state::Response> {
        let d = unsupported("State Store", &r.get_ref().type_name);
        ok(pb::delete_state::Response {
            diagnostics: vec![d.to_proto()],
        })
    }

    async fn plan_action(
        &self,
        r: Request<pb::plan_action::Request>,
    ) -> Reply<pb::plan_action::Response> {
        let d = unsupported("Action", &r.get_ref().action_type);
        ok(pb::plan_action::Response {
            diagnostics: vec![d.to_proto()],
            deferred: None,
        })
    }

    type InvokeActionStream = BoxStream<pb::invoke_action::Event>;

    async fn invoke_action(
        &self,
        r: Request<pb::invoke_action::Request>,
    ) -> Reply<Self::InvokeActionStream> {
        use pb::invoke_action::event::{Completed, Type as EventType};
        let d = unsupported("Action", &r.get_ref().action_type);
        let completed = Completed {
            diagnostics: vec![d.to_proto()],
        };
        ok(single_item_stream(pb::invoke_action::Event {
            r#type: Some(EventType::Completed(completed)),
        }))
    }

    async fn validate_action_config(
        &self,
        r: Request<pb::validate_action_config::Request>,
    ) -> Reply<pb::validate_action_config::Response> {
        let d = unsupported("Action", &r.get_ref().type_name);
        ok(pb::validate_action_config::Response {
            diagnostics: vec![d.to_proto()],
        })
    }

    async fn stop_provider(
        &self,
        _r: Request<pb::stop_provider::Request>,
    ) -> Reply<pb::stop_provider::Response> {
        let error = match catch(self.provider.stop()).await {
            Ok(()) => String::new(),
            Err(d) => d.detail,
        };
        ok(pb::stop_provider::Response { error })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_results_must_be_known_and_match_known_planned_values() {
        let planned = Value::object([("a", Value::from("x")), ("b", Value::Unknown)]);
        let mut diags = Diagnostics::new();
        check_apply_result(
            &planned,
            &Value::object([("a", "x".into()), ("b", "y".into())]),
            &mut diags,
        );
        assert!(diags.is_empty());
        check_apply_result(
            &planned,
            &Value::object([("a", "x".into()), ("b", Value::Unknown)]),
            &mut diags,
        );
        check_apply_result(
            &planned,
            &Value::object([("a", "z".into()), ("b", "y".into())]),
            &mut diags,
        );
        let unknown_in_set =
            Value::object([("a", "x".into()), ("b", Value::Set(vec![Value::Unknown]))]);
        check_apply_result(&planned, &unknown_in_set, &mut diags);
        let got: Vec<(String, &str)> = diags
            .iter()
            .map(|d| {
                (
                    d.attribute.as_ref().unwrap().to_string(),
                    d.summary.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("b".to_string(), "Provider Returned An Unknown Value"),
                ("a".to_string(), "Provider Produced Inconsistent Result"),
                ("b".to_string(), "Provider Returned An Unknown Value"),
            ]
        );
    }

    #[test]
    fn typed_nulls_and_unknowns_in_dynamic_slots_are_seen_through() {
        let planned =
            Value::object([("d", Value::Dynamic(Type::String, Box::new(Value::Unknown)))]);
        let new = Value::object([("d", Value::Dynamic(Type::String, Box::new("filled".into())))]);
        let mut diags = Diagnostics::new();
        check_apply_result(&planned, &new, &mut diags);
        assert!(diags.is_empty(), "{diags:?}");
        assert!(Value::Dynamic(Type::String, Box::new(Value::Null)).is_null());
    }

    #[test]
    fn same_version_state_drops_removed_attributes() {
        let ty = Type::object([("keep", Type::String)]);
        let mut json = serde_json::json!({"keep": "x", "gone": 1});
        prune_to_type(&mut json, &ty);
        assert_eq!(json, serde_json::json!({"keep": "x"}));
    }
}
