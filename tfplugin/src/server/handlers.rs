//! The RPCs the SDK answers, one method each: the request in, the response out (problems
//! travel in its diagnostics, never as a gRPC error).

use super::checks::{check_apply_result, check_plan_keeps_config};
use super::{
    catch, decode, encode, encode_object, keep_private, unsupported, validate, ProviderService,
};
use crate::diag::{AttributePath, Diagnostic, Diagnostics};
use crate::plan;
use crate::provider::{Plan, State};
use crate::schema::{Block, Schema};
use crate::value::{Type, Value};
use dr_proto::tfplugin6 as pb;
use std::collections::{BTreeMap, HashMap};

impl ProviderService {
    pub(super) async fn get_metadata(
        &self,
        _r: pb::get_metadata::Request,
    ) -> pb::get_metadata::Response {
        pb::get_metadata::Response {
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
            functions: self
                .functions
                .keys()
                .map(|n| pb::get_metadata::FunctionMetadata { name: n.clone() })
                .collect(),
            ephemeral_resources: self
                .ephemerals
                .keys()
                .map(|n| pb::get_metadata::EphemeralMetadata {
                    type_name: n.clone(),
                })
                .collect(),
            list_resources: self
                .lists
                .keys()
                .map(|n| pb::get_metadata::ListResourceMetadata {
                    type_name: n.clone(),
                })
                .collect(),
            state_stores: Vec::new(),
            actions: self
                .actions
                .keys()
                .map(|n| pb::get_metadata::ActionMetadata {
                    type_name: n.clone(),
                })
                .collect(),
        }
    }

    pub(super) async fn get_provider_schema(
        &self,
        _r: pb::get_provider_schema::Request,
    ) -> pb::get_provider_schema::Response {
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
        pb::get_provider_schema::Response {
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
            functions: self.function_definitions(),
            ephemeral_resource_schemas: self
                .ephemerals
                .iter()
                .map(|(n, e)| (n.clone(), e.schema.to_proto()))
                .collect(),
            list_resource_schemas: self
                .lists
                .iter()
                .map(|(n, e)| (n.clone(), e.schema.to_proto()))
                .collect(),
            state_store_schemas: HashMap::new(),
            action_schemas: self
                .actions
                .iter()
                .map(|(n, e)| {
                    (
                        n.clone(),
                        pb::ActionSchema {
                            schema: Some(e.schema.to_proto()),
                        },
                    )
                })
                .collect(),
        }
    }

    pub(super) async fn validate_provider_config(
        &self,
        r: pb::validate_provider_config::Request,
    ) -> pb::validate_provider_config::Response {
        let config = r.config.as_ref();
        let provider = &self.provider;
        let diags = validate(
            &self.provider_schema.block,
            &self.provider_ty,
            config,
            async |c, d| provider.validate(c, d).await,
        )
        .await;
        pb::validate_provider_config::Response {
            diagnostics: diags.to_proto(),
        }
    }

    pub(super) async fn validate_resource_config(
        &self,
        r: pb::validate_resource_config::Request,
    ) -> pb::validate_resource_config::Response {
        let write_only_allowed = r
            .client_capabilities
            .is_some_and(|c| c.write_only_attributes_allowed);
        let diags = match self.resource(&r.type_name) {
            Ok(e) => {
                validate(&e.schema.block, &e.ty, r.config.as_ref(), async |c, d| {
                    if !write_only_allowed {
                        refuse_write_only(&e.schema.block, c, d);
                    }
                    e.resource.validate(c, d).await
                })
                .await
            }
            Err(d) => d.into(),
        };
        pb::validate_resource_config::Response {
            diagnostics: diags.to_proto(),
        }
    }

    pub(super) async fn validate_data_resource_config(
        &self,
        r: pb::validate_data_resource_config::Request,
    ) -> pb::validate_data_resource_config::Response {
        let diags = match self.data_source(&r.type_name) {
            Ok(e) => {
                validate(&e.schema.block, &e.ty, r.config.as_ref(), async |c, d| {
                    e.data_source.validate(c, d).await
                })
                .await
            }
            Err(d) => d.into(),
        };
        pb::validate_data_resource_config::Response {
            diagnostics: diags.to_proto(),
        }
    }

    pub(super) async fn upgrade_resource_state(
        &self,
        r: pb::upgrade_resource_state::Request,
    ) -> pb::upgrade_resource_state::Response {
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
        pb::upgrade_resource_state::Response {
            upgraded_state,
            diagnostics: diags.to_proto(),
        }
    }

    pub(super) async fn get_resource_identity_schemas(
        &self,
        _r: pb::get_resource_identity_schemas::Request,
    ) -> pb::get_resource_identity_schemas::Response {
        pb::get_resource_identity_schemas::Response {
            identity_schemas: self
                .resources
                .iter()
                .filter_map(|(n, e)| Some((n.clone(), e.identity.as_ref()?.0.to_proto())))
                .collect(),
            diagnostics: Vec::new(),
        }
    }

    pub(super) async fn configure_provider(
        &self,
        r: pb::configure_provider::Request,
    ) -> pb::configure_provider::Response {
        let mut diags = Diagnostics::new();
        match decode(
            r.config.as_ref(),
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
        pb::configure_provider::Response {
            diagnostics: diags.to_proto(),
        }
    }

    pub(super) async fn read_resource(
        &self,
        r: pb::read_resource::Request,
    ) -> pb::read_resource::Response {
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
            let mut new = keep_private(
                catch(entry.resource.read(&current, &mut diags)).await?,
                &current.private,
            );
            entry.schema.block.clear_write_only(&mut new.value);
            Ok::<_, Diagnostic>((
                encode_object(
                    &new.value,
                    &entry.schema.block,
                    &entry.ty,
                    "refreshed state",
                )?,
                new.private,
                entry.identity_data(&new.value)?,
            ))
        }
        .await;
        match result {
            Ok((state, private, identity)) => {
                reply.new_state = Some(state);
                reply.private = private;
                reply.new_identity = identity;
            }
            Err(d) => diags.push(d),
        }
        reply.diagnostics = diags.to_proto();
        reply
    }

    pub(super) async fn plan_resource_change(
        &self,
        r: pb::plan_resource_change::Request,
    ) -> pb::plan_resource_change::Response {
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
                    None,
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
                entry.planned_identity(
                    &prior.value,
                    &plan.planned,
                    plan.requires_replace.is_empty(),
                )?,
            ))
        }
        .await;
        match result {
            Ok((planned, paths, private, identity)) => {
                reply.planned_state = Some(planned);
                reply.requires_replace = paths;
                reply.planned_private = private;
                reply.planned_identity = identity;
            }
            Err(d) => diags.push(d),
        }
        reply.diagnostics = diags.to_proto();
        reply
    }

    pub(super) async fn apply_resource_change(
        &self,
        r: pb::apply_resource_change::Request,
    ) -> pb::apply_resource_change::Response {
        let mut diags = Diagnostics::new();
        let mut reply = pb::apply_resource_change::Response::default();
        let result = async {
            let entry = self.resource(&r.type_name)?;
            let prior_value = decode(r.prior_state.as_ref(), &entry.ty, "prior state")?;
            let planned = State { value: decode(r.planned_state.as_ref(), &entry.ty, "planned state")?, private: r.planned_private };
            let config = decode(r.config.as_ref(), &entry.ty, "configuration")?;
            let mut new = if planned.value.is_null() {
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
            // Whatever the resource returned, a write-only value never reaches the state.
            entry.schema.block.clear_write_only(&mut new.value);
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
            let identity = entry.identity_data(&new.value)?;
            Ok::<_, Diagnostic>((encode_object(&new.value, &entry.schema.block, &entry.ty, "new state")?, new.private, identity))
        }
        .await;
        match result {
            Ok((state, private, identity)) => {
                reply.new_state = Some(state);
                reply.private = private;
                reply.new_identity = identity;
            }
            Err(d) => diags.push(d),
        }
        reply.diagnostics = diags.to_proto();
        reply
    }

    pub(super) async fn import_resource_state(
        &self,
        r: pb::import_resource_state::Request,
    ) -> pb::import_resource_state::Response {
        let mut diags = Diagnostics::new();
        let mut reply = pb::import_resource_state::Response::default();
        let result = async {
            let entry = self.resource(&r.type_name)?;
            let id = match (&r.identity, &entry.identity) {
                (Some(given), Some((_, ty))) => {
                    let identity = decode(given.identity_data.as_ref(), ty, "identity")?;
                    match entry.resource.import_id_of(&identity, &mut diags) {
                        Some(id) => id,
                        None => return Ok(None),
                    }
                }
                _ => r.id.clone(),
            };
            let imported = catch(entry.resource.import(&id, &mut diags)).await?;
            if imported.value.is_null() {
                return Ok(None);
            }
            let mut imported = imported;
            entry.schema.block.clear_write_only(&mut imported.value);
            Ok::<_, Diagnostic>(Some(pb::import_resource_state::ImportedResource {
                type_name: r.type_name.clone(),
                state: Some(encode_object(
                    &imported.value,
                    &entry.schema.block,
                    &entry.ty,
                    "imported state",
                )?),
                identity: entry.identity_data(&imported.value)?,
                private: imported.private,
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
        reply
    }

    pub(super) async fn move_resource_state(
        &self,
        r: pb::move_resource_state::Request,
    ) -> pb::move_resource_state::Response {
        let d = Diagnostic::error(
            "Move Not Supported",
            format!(
                "{} cannot be moved into {}. Use `terraform import` for the target instead.",
                r.source_type_name, r.target_type_name
            ),
        );
        pb::move_resource_state::Response {
            diagnostics: vec![d.to_proto()],
            ..Default::default()
        }
    }

    pub(super) async fn read_data_source(
        &self,
        r: pb::read_data_source::Request,
    ) -> pb::read_data_source::Response {
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
        reply
    }

    pub(super) async fn generate_resource_config(
        &self,
        r: pb::generate_resource_config::Request,
    ) -> pb::generate_resource_config::Response {
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
        pb::generate_resource_config::Response {
            config,
            diagnostics,
        }
    }

    pub(super) async fn validate_ephemeral_resource_config(
        &self,
        r: pb::validate_ephemeral_resource_config::Request,
    ) -> pb::validate_ephemeral_resource_config::Response {
        let diags = match self.ephemeral(&r.type_name) {
            Ok(e) => {
                validate(&e.schema.block, &e.ty, r.config.as_ref(), async |c, d| {
                    e.ephemeral.validate(c, d).await
                })
                .await
            }
            Err(d) => d.into(),
        };
        pb::validate_ephemeral_resource_config::Response {
            diagnostics: diags.to_proto(),
        }
    }

    pub(super) async fn open_ephemeral_resource(
        &self,
        r: pb::open_ephemeral_resource::Request,
    ) -> pb::open_ephemeral_resource::Response {
        let mut diags = Diagnostics::new();
        let mut reply = pb::open_ephemeral_resource::Response::default();
        let result = async {
            let entry = self.ephemeral(&r.type_name)?;
            let config = decode(r.config.as_ref(), &entry.ty, "configuration")?;
            let opened = catch(entry.ephemeral.open(&config, &mut diags)).await?;
            if !diags.has_errors() && (opened.result.is_null() || !opened.result.is_wholly_known())
            {
                diags.error(
                    "Provider Returned An Incomplete Result",
                    format!(
                        "Opening ephemeral.{} left values unknown. This is a bug in the provider.",
                        r.type_name
                    ),
                );
            }
            let result = encode_object(
                &opened.result,
                &entry.schema.block,
                &entry.ty,
                "ephemeral resource result",
            )?;
            Ok::<_, Diagnostic>((result, opened.private))
        }
        .await;
        match result {
            Ok((result, private)) => {
                reply.result = Some(result);
                reply.private = Some(private);
            }
            Err(d) => diags.push(d),
        }
        reply.diagnostics = diags.to_proto();
        reply
    }

    /// Nothing here asks to be renewed (`renew_at` is never set), so Terraform never calls
    /// this; answered anyway, keeping the private bytes as they are.
    pub(super) async fn renew_ephemeral_resource(
        &self,
        r: pb::renew_ephemeral_resource::Request,
    ) -> pb::renew_ephemeral_resource::Response {
        let diagnostics = match self.ephemeral(&r.type_name) {
            Ok(_) => Vec::new(),
            Err(d) => vec![d.to_proto()],
        };
        pb::renew_ephemeral_resource::Response {
            diagnostics,
            renew_at: None,
            private: r.private,
        }
    }

    pub(super) async fn close_ephemeral_resource(
        &self,
        r: pb::close_ephemeral_resource::Request,
    ) -> pb::close_ephemeral_resource::Response {
        let mut diags = Diagnostics::new();
        match self.ephemeral(&r.type_name) {
            Ok(entry) => {
                let private = r.private.unwrap_or_default();
                if let Err(d) = catch(entry.ephemeral.close(&private, &mut diags)).await {
                    diags.push(d);
                }
            }
            Err(d) => diags.push(d),
        }
        pb::close_ephemeral_resource::Response {
            diagnostics: diags.to_proto(),
        }
    }

    pub(super) async fn get_functions(
        &self,
        _r: pb::get_functions::Request,
    ) -> pb::get_functions::Response {
        pb::get_functions::Response {
            functions: self.function_definitions(),
            diagnostics: Vec::new(),
        }
    }

    fn function_definitions(&self) -> HashMap<String, pb::Function> {
        self.functions
            .iter()
            .map(|(n, e)| (n.clone(), e.signature.to_proto()))
            .collect()
    }

    pub(super) async fn call_function(
        &self,
        r: pb::call_function::Request,
    ) -> pb::call_function::Response {
        let (result, error) = match self.call(&r).await {
            Ok(result) => (Some(result), None),
            Err(e) => (
                None,
                Some(pb::FunctionError {
                    text: e.message,
                    function_argument: e.argument.map(|i| i as i64),
                }),
            ),
        };
        pb::call_function::Response { result, error }
    }

    /// Decodes the arguments by the signature, checks them, runs the function (a panic is
    /// an error, not a dead plugin) and checks its result against the declared type.
    async fn call(
        &self,
        r: &pb::call_function::Request,
    ) -> Result<pb::DynamicValue, crate::function::FunctionError> {
        use crate::function::{check_arguments, FunctionError};
        let entry = self.functions.get(&r.name).ok_or_else(|| {
            let offered: Vec<&str> = self.functions.keys().map(String::as_str).collect();
            FunctionError::call(format!(
                "this provider has no function {:?}; it offers: {}",
                r.name,
                if offered.is_empty() {
                    "none".to_string()
                } else {
                    offered.join(", ")
                }
            ))
        })?;
        let signature = &entry.signature;
        let mut args = Vec::with_capacity(r.arguments.len());
        for (i, dv) in r.arguments.iter().enumerate() {
            let ty = signature.params.get(i).map_or(&Type::Dynamic, |p| &p.ty);
            let value = decode(Some(dv), ty, "argument")
                .map_err(|d| FunctionError::argument(i, d.detail))?;
            args.push(value);
        }
        check_arguments(signature, &args)?;
        let function = entry.function.clone();
        let result = catch(async move { function.call(&args) })
            .await
            .map_err(|d| FunctionError::call(d.detail))??;
        encode(&result, &signature.returns, "function result")
            .map_err(|d| FunctionError::call(d.detail))
    }

    pub(super) async fn stop_provider(
        &self,
        _r: pb::stop_provider::Request,
    ) -> pb::stop_provider::Response {
        let error = match catch(self.provider.stop()).await {
            Ok(()) => String::new(),
            Err(d) => d.detail,
        };
        pb::stop_provider::Response { error }
    }

    pub(super) async fn upgrade_resource_identity(
        &self,
        r: pb::upgrade_resource_identity::Request,
    ) -> pb::upgrade_resource_identity::Response {
        let upgraded = (|| {
            let entry = self.resource(&r.type_name)?;
            let Some((schema, ty)) = &entry.identity else {
                return Err(unsupported("Resource Identity", &r.type_name));
            };
            if r.version != schema.version {
                return Err(Diagnostic::error(
                    "Unsupported Identity Version",
                    format!(
                        "The identity of this {} was stored at version {}; this provider reads version {}. \
                         Use the provider release that wrote it.",
                        r.type_name, r.version, schema.version
                    ),
                ));
            }
            let raw = r
                .raw_identity
                .as_ref()
                .map(|raw| raw.json.as_slice())
                .unwrap_or_default();
            let json: serde_json::Value = serde_json::from_slice(raw).map_err(|e| {
                Diagnostic::error(
                    "Invalid Stored Identity",
                    format!("The stored identity is not JSON: {e}."),
                )
            })?;
            let value = Value::from_json(&json, ty).map_err(|e| {
                Diagnostic::error(
                    "Invalid Stored Identity",
                    format!("The stored identity does not fit its schema: {e}."),
                )
            })?;
            Ok(pb::ResourceIdentityData {
                identity_data: Some(encode(&value, ty, "identity")?),
            })
        })();
        match upgraded {
            Ok(identity) => pb::upgrade_resource_identity::Response {
                upgraded_identity: Some(identity),
                diagnostics: Vec::new(),
            },
            Err(d) => pb::upgrade_resource_identity::Response {
                upgraded_identity: None,
                diagnostics: vec![d.to_proto()],
            },
        }
    }

    pub(super) async fn validate_list_resource_config(
        &self,
        r: pb::validate_list_resource_config::Request,
    ) -> pb::validate_list_resource_config::Response {
        let diags = match self.list(&r.type_name) {
            Ok(e) => {
                validate(&e.schema.block, &e.ty, r.config.as_ref(), async |c, d| {
                    e.list.validate(c, d).await
                })
                .await
            }
            Err(d) => d.into(),
        };
        pb::validate_list_resource_config::Response {
            diagnostics: diags.to_proto(),
        }
    }

    /// One event per object found, each with its identity (and its state when asked for);
    /// problems travel as an event of diagnostics alone.
    pub(super) async fn list_resource(
        &self,
        r: pb::list_resource::Request,
    ) -> Vec<pb::list_resource::Event> {
        let problem = |d: Diagnostic| pb::list_resource::Event {
            diagnostic: vec![d.to_proto()],
            ..Default::default()
        };
        let (list, resource) = match self
            .list(&r.type_name)
            .and_then(|l| Ok((l, self.resource(&r.type_name)?)))
        {
            Ok(found) => found,
            Err(d) => return vec![problem(d)],
        };
        let config = match decode(r.config.as_ref(), &list.ty, "configuration") {
            Ok(config) => config,
            Err(d) => return vec![problem(d)],
        };
        let limit = usize::try_from(r.limit)
            .ok()
            .filter(|l| *l > 0)
            .unwrap_or(usize::MAX);
        let mut diags = Diagnostics::new();
        let found =
            match catch(
                list.list
                    .list(&config, r.include_resource_object, limit, &mut diags),
            )
            .await
            {
                Ok(found) => found,
                Err(d) => return vec![problem(d)],
            };
        let Some((_, identity_ty)) = &resource.identity else {
            return vec![problem(unsupported("List Resource", &r.type_name))];
        };
        let mut events: Vec<pb::list_resource::Event> = Vec::new();
        for listed in found.into_iter().take(limit) {
            let encoded = encode(&listed.identity, identity_ty, "identity").and_then(|identity| {
                let object = match &listed.object {
                    Some(object) if r.include_resource_object => Some(encode_object(
                        object,
                        &resource.schema.block,
                        &resource.ty,
                        "listed object",
                    )?),
                    _ => None,
                };
                Ok((identity, object))
            });
            events.push(match encoded {
                Ok((identity, object)) => pb::list_resource::Event {
                    identity: Some(pb::ResourceIdentityData {
                        identity_data: Some(identity),
                    }),
                    display_name: listed.display_name,
                    resource_object: object,
                    diagnostic: Vec::new(),
                },
                Err(d) => problem(d),
            });
        }
        if !diags.is_empty() {
            events.push(pb::list_resource::Event {
                diagnostic: diags.to_proto(),
                ..Default::default()
            });
        }
        events
    }

    pub(super) async fn read_state_bytes(
        &self,
        r: pb::read_state_bytes::Request,
    ) -> Vec<pb::read_state_bytes::Response> {
        vec![pb::read_state_bytes::Response {
            diagnostics: vec![unsupported("State Store", &r.type_name).to_proto()],
            ..Default::default()
        }]
    }

    pub(super) async fn validate_action_config(
        &self,
        r: pb::validate_action_config::Request,
    ) -> pb::validate_action_config::Response {
        let diags = match self.action(&r.type_name) {
            Ok(e) => {
                validate(&e.schema.block, &e.ty, r.config.as_ref(), async |c, d| {
                    e.action.validate(c, d).await
                })
                .await
            }
            Err(d) => d.into(),
        };
        pb::validate_action_config::Response {
            diagnostics: diags.to_proto(),
        }
    }

    pub(super) async fn plan_action(
        &self,
        r: pb::plan_action::Request,
    ) -> pb::plan_action::Response {
        let mut diags = Diagnostics::new();
        let planned = async {
            let entry = self.action(&r.action_type)?;
            let config = decode(r.config.as_ref(), &entry.ty, "configuration")?;
            catch(entry.action.plan(&config, &mut diags)).await
        }
        .await;
        if let Err(d) = planned {
            diags.push(d);
        }
        pb::plan_action::Response {
            diagnostics: diags.to_proto(),
            deferred: None,
        }
    }

    /// The action's progress lines, in order, then one Completed event with its diagnostics.
    pub(super) async fn invoke_action(
        &self,
        r: pb::invoke_action::Request,
    ) -> Vec<pb::invoke_action::Event> {
        use pb::invoke_action::event::{Completed, Progress, Type as EventType};
        let mut diags = Diagnostics::new();
        let mut progress = Vec::new();
        let invoked = async {
            let entry = self.action(&r.action_type)?;
            let config = decode(r.config.as_ref(), &entry.ty, "configuration")?;
            if !config.is_wholly_known() {
                return Err(Diagnostic::error(
                    "Unknown Action Configuration",
                    format!("{} was invoked with values still unknown. This is a bug in Terraform or the provider.", r.action_type),
                ));
            }
            catch(entry.action.invoke(&config, &mut progress, &mut diags)).await
        }
        .await;
        if let Err(d) = invoked {
            diags.push(d);
        }
        let mut events: Vec<pb::invoke_action::Event> = progress
            .into_iter()
            .map(|message| pb::invoke_action::Event {
                r#type: Some(EventType::Progress(Progress { message })),
            })
            .collect();
        events.push(pb::invoke_action::Event {
            r#type: Some(EventType::Completed(Completed {
                diagnostics: diags.to_proto(),
            })),
        });
        events
    }
}

/// Drops attributes the schema no longer has, as HashiCorp's framework does for same-version
/// state, so removing an optional attribute does not strand existing state.
pub(super) fn prune_to_type(json: &mut serde_json::Value, ty: &Type) {
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
pub(super) fn config_from_state(block: &Block, state: &Value) -> Value {
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

/// A Terraform that does not know write-only attributes (before 1.11) would write their
/// values into the plan and the state: refused on each attribute set, before anything runs.
fn refuse_write_only(block: &Block, config: &Value, diags: &mut Diagnostics) {
    for path in block.write_only_set(config, &AttributePath::root()) {
        diags.push(
            Diagnostic::error(
                "Write-Only Attribute Not Supported",
                format!(
                    "{path} is write-only: its value is used during apply and never stored. This Terraform does not \
                     support write-only attributes and would write the value into the plan and the state. Use \
                     Terraform 1.11 or newer, or leave {path} unset."
                ),
            )
            .at(path),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_version_state_drops_removed_attributes() {
        let ty = Type::object([("keep", Type::String)]);
        let mut json = serde_json::json!({"keep": "x", "gone": 1});
        prune_to_type(&mut json, &ty);
        assert_eq!(json, serde_json::json!({"keep": "x"}));
    }
}
