//! The provider block over gRPC, in-process: validation names the attribute, configuration
//! with unknowns (as during `plan`) is accepted.

use dr_proto::tfplugin6::{self as pb, provider_client::ProviderClient};
use std::sync::Arc;
use terraform_provider_dr::DrProvider;
use tfplugin::{AttributePath, Provider, Type, Value};

async fn client() -> (ProviderClient<tonic::transport::Channel>, Type) {
    let provider = DrProvider::default();
    let ty = provider.schema().block.implied_type();
    (
        tfplugin::serve::client_for_tests(Arc::new(provider)).await,
        ty,
    )
}

fn config(ty: &Type, passphrase: Value, options: Value) -> pb::DynamicValue {
    let v = Value::object([
        ("passphrase", passphrase),
        ("work_dir", Value::Null),
        ("storage_options", options),
    ]);
    pb::DynamicValue {
        msgpack: v.to_msgpack(ty).unwrap(),
        json: Vec::new(),
    }
}

fn paths(diags: &[pb::Diagnostic]) -> Vec<String> {
    diags
        .iter()
        .map(|d| AttributePath::from_proto(d.attribute.as_ref().unwrap()).to_string())
        .collect()
}

#[tokio::test]
async fn validation_errors_name_the_attribute_and_never_echo_secrets() {
    let (mut c, ty) = client().await;
    let empty = c
        .validate_provider_config(pb::validate_provider_config::Request {
            config: Some(config(&ty, "".into(), Value::Null)),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(paths(&empty.diagnostics), ["passphrase"]);
    assert_eq!(empty.diagnostics[0].summary, "Empty Passphrase");

    let options = Value::Map(
        [(
            "azure_storage_account_key".to_string(),
            Value::from("c2VjcmV0"),
        )]
        .into(),
    );
    let cred = c
        .validate_provider_config(pb::validate_provider_config::Request {
            config: Some(config(&ty, Value::Null, options)),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        paths(&cred.diagnostics),
        ["storage_options[\"azure_storage_account_key\"]"]
    );
    assert!(
        !cred.diagnostics[0].detail.contains("c2VjcmV0"),
        "the secret value is never echoed"
    );
}

#[tokio::test]
async fn configure_accepts_unknown_values_during_plan_and_known_ones_after() {
    let (mut c, ty) = client().await;
    for passphrase in [Value::Unknown, Value::from("correct horse")] {
        let reply = c
            .configure_provider(pb::configure_provider::Request {
                terraform_version: "1.0.3".into(),
                config: Some(config(&ty, passphrase, Value::Null)),
                client_capabilities: None,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(reply.diagnostics.is_empty(), "{:?}", reply.diagnostics);
    }
}

fn argument(value: &Value, ty: &Type) -> pb::DynamicValue {
    pb::DynamicValue {
        msgpack: value.to_msgpack(ty).unwrap(),
        json: Vec::new(),
    }
}

/// Functions as Terraform 1.8+ sees them: listed in the schema and the metadata with their
/// types, called with msgpack arguments, a null where none is allowed refused naming the
/// argument, an unknown function named, a result of the declared type.
#[tokio::test]
async fn functions_are_declared_called_and_refuse_what_their_signature_does() {
    let (mut c, _) = client().await;
    let schema = c
        .get_provider_schema(pb::get_provider_schema::Request {})
        .await
        .unwrap()
        .into_inner();
    assert!(schema.diagnostics.is_empty(), "{:?}", schema.diagnostics);
    let mut names: Vec<&String> = schema.functions.keys().collect();
    names.sort();
    assert_eq!(names, ["duration_seconds", "parse_vault_url", "within"]);
    let within = &schema.functions["within"];
    let params: Vec<&str> = within.parameters.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(params, ["timestamp", "duration", "now"]);
    assert_eq!(within.r#return.as_ref().unwrap().r#type, b"\"bool\"");
    let metadata = c
        .get_metadata(pb::get_metadata::Request {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(metadata.functions.len(), 3);

    let call = |name: &str, args: Vec<pb::DynamicValue>| pb::call_function::Request {
        name: name.to_string(),
        arguments: args,
    };
    let secs = c
        .call_function(call(
            "duration_seconds",
            vec![argument(&"2h".into(), &Type::String)],
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(secs.error.is_none(), "{:?}", secs.error);
    let result = Value::from_msgpack(&secs.result.unwrap().msgpack, &Type::Number).unwrap();
    assert_eq!(result, Value::from(7200u64));

    let null = c
        .call_function(call(
            "within",
            vec![
                argument(&"2026-12-01T10:00:00Z".into(), &Type::String),
                argument(&Value::Null, &Type::String),
                argument(&"2026-12-01T11:00:00Z".into(), &Type::String),
            ],
        ))
        .await
        .unwrap()
        .into_inner();
    let error = null.error.expect("a null duration is refused");
    assert_eq!(error.function_argument, Some(1));
    assert!(
        error.text.contains("\"duration\" must not be null"),
        "{}",
        error.text
    );

    let missing = c
        .call_function(call("no_such_function", Vec::new()))
        .await
        .unwrap()
        .into_inner();
    let error = missing.error.unwrap();
    assert!(
        error.text.contains("no function \"no_such_function\"") && error.text.contains("within"),
        "{}",
        error.text
    );
}

/// `dr_restore` is declared as an ephemeral resource, and closing it with private bytes that
/// name a directory it did not make (forged, or a path reused since) deletes nothing.
#[tokio::test]
async fn closing_a_restore_deletes_only_what_it_made() {
    let (mut c, _) = client().await;
    let schema = c
        .get_provider_schema(pb::get_provider_schema::Request {})
        .await
        .unwrap()
        .into_inner();
    assert!(schema.ephemeral_resource_schemas.contains_key("dr_restore"));
    let stranger = tempfile::tempdir().unwrap();
    std::fs::write(stranger.path().join("precious"), "data").unwrap();
    let closed = c
        .close_ephemeral_resource(pb::close_ephemeral_resource::Request {
            type_name: "dr_restore".into(),
            private: Some(stranger.path().display().to_string().into_bytes()),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(stranger.path().join("precious").is_file());
    assert_eq!(closed.diagnostics.len(), 1);
    assert_eq!(
        closed.diagnostics[0].summary,
        "Restore Directory Left Alone"
    );
}

/// Resource identity (protocol 6.9, Terraform 1.12+), in-process: every resource declares
/// one; a vault imported by identity comes back with that identity, refreshes keep it, and a
/// stored identity of the current version is upgraded as it is, of another refused.
#[tokio::test]
async fn vaults_are_imported_by_identity_and_identities_survive_refresh_and_upgrade() {
    let (mut c, ty) = client().await;
    let schemas = c
        .get_resource_identity_schemas(pb::get_resource_identity_schemas::Request {})
        .await
        .unwrap()
        .into_inner();
    let mut names: Vec<&String> = schemas.identity_schemas.keys().collect();
    names.sort();
    assert_eq!(names, ["dr_backup_vault", "dr_drill", "dr_region_pair"]);
    let attrs = |t: &str| -> Vec<String> {
        schemas.identity_schemas[t]
            .identity_attributes
            .iter()
            .map(|a| a.name.clone())
            .collect()
    };
    assert_eq!(attrs("dr_backup_vault"), ["url"]);
    assert_eq!(attrs("dr_region_pair"), ["name", "primary_vault_url"]);
    assert_eq!(attrs("dr_drill"), ["name", "vault_url"]);

    // A vault made outside Terraform, then imported by its identity alone.
    let dir = tempfile::tempdir().unwrap();
    let mut opts = dr_vault::InitOptions::new("ci", "eu-west-1");
    opts.kdf = dr_vault::KdfParams::INSECURE_FOR_TESTS;
    let storage = dr_vault::Storage::local(&dir.path().join("vault"), true).unwrap();
    dr_vault::Vault::init(storage, &opts, &dr_vault::Passphrase::new("identity pass"))
        .await
        .unwrap();
    let configured = c
        .configure_provider(pb::configure_provider::Request {
            terraform_version: "1.12.0".into(),
            config: Some(config(&ty, "identity pass".into(), Value::Null)),
            client_capabilities: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        configured.diagnostics.is_empty(),
        "{:?}",
        configured.diagnostics
    );
    let identity_ty = Type::Object([("url".to_string(), Type::String)].into());
    let url = format!("file://{}", dir.path().join("vault").display());
    let identity = Value::object([("url", Value::from(url.as_str()))]);
    let identity_data = || pb::ResourceIdentityData {
        identity_data: Some(pb::DynamicValue {
            msgpack: identity.to_msgpack(&identity_ty).unwrap(),
            json: Vec::new(),
        }),
    };
    let imported = c
        .import_resource_state(pb::import_resource_state::Request {
            type_name: "dr_backup_vault".into(),
            id: String::new(),
            client_capabilities: None,
            identity: Some(identity_data()),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        imported.diagnostics.is_empty(),
        "{:?}",
        imported.diagnostics
    );
    let object = &imported.imported_resources[0];
    let decode_identity = |data: &Option<pb::ResourceIdentityData>| {
        let dv = data.as_ref().unwrap().identity_data.as_ref().unwrap();
        Value::from_msgpack(&dv.msgpack, &identity_ty).unwrap()
    };
    assert_eq!(decode_identity(&object.identity), identity);

    let refreshed = c
        .read_resource(pb::read_resource::Request {
            type_name: "dr_backup_vault".into(),
            current_state: object.state.clone(),
            private: object.private.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        refreshed.diagnostics.is_empty(),
        "{:?}",
        refreshed.diagnostics
    );
    assert_eq!(decode_identity(&refreshed.new_identity), identity);

    let upgrade = |version: i64| pb::upgrade_resource_identity::Request {
        type_name: "dr_backup_vault".into(),
        version,
        raw_identity: Some(pb::RawState {
            json: format!(r#"{{"url":"{url}"}}"#).into_bytes(),
            flatmap: Default::default(),
        }),
    };
    let same = c
        .upgrade_resource_identity(upgrade(0))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(decode_identity(&same.upgraded_identity), identity);
    let newer = c
        .upgrade_resource_identity(upgrade(7))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(newer.diagnostics[0].summary, "Unsupported Identity Version");

    // A plan made while the provider block is still unknown leaves the vault's id unknown;
    // Terraform (1.12+) refuses an update whose identity is not known, so the prior one is
    // announced (the identity never changes in place).
    let (mut during_plan, _) = client().await;
    during_plan
        .configure_provider(pb::configure_provider::Request {
            terraform_version: "1.12.0".into(),
            config: Some(config(&ty, Value::Unknown, Value::Null)),
            client_capabilities: None,
        })
        .await
        .unwrap();
    let vault_schema = {
        let provider = DrProvider::default();
        provider
            .resources()
            .into_iter()
            .find(|r| r.type_name() == "dr_backup_vault")
            .unwrap()
            .schema()
    };
    let vault_ty = vault_schema.block.implied_type();
    let state = Value::from_msgpack(&object.state.as_ref().unwrap().msgpack, &vault_ty).unwrap();
    let mut configured = state.clone();
    if let Value::Object(fields) = &mut configured {
        for a in &vault_schema.block.attributes {
            if a.kind == tfplugin::AttrKind::Computed {
                fields.insert(a.name.clone(), Value::Null);
            }
        }
    }
    let planned = during_plan
        .plan_resource_change(pb::plan_resource_change::Request {
            type_name: "dr_backup_vault".into(),
            prior_state: object.state.clone(),
            proposed_new_state: object.state.clone(),
            config: Some(argument(&configured, &vault_ty)),
            prior_private: object.private.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(planned.diagnostics.is_empty(), "{:?}", planned.diagnostics);
    let planned_state =
        Value::from_msgpack(&planned.planned_state.as_ref().unwrap().msgpack, &vault_ty).unwrap();
    assert!(
        planned_state.attr("id").is_unknown(),
        "the scenario: {planned_state:?}"
    );
    assert_eq!(decode_identity(&planned.planned_identity), identity);
}

/// `list "dr_backup_vault"` (Terraform 1.14+), in-process: the vaults under a directory are
/// found at any level up to `depth` (and nothing that is not a vault), each with its identity,
/// a display name and, when asked, its state; `limit` is honoured; a place that does not exist
/// is an error on `under`.
#[tokio::test]
async fn the_vaults_under_a_directory_are_listed_with_identity_and_state() {
    let (mut c, ty) = client().await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("vaults");
    for (place, name) in [("eu", "primary"), ("us/ci", "standby")] {
        let mut opts = dr_vault::InitOptions::new(name, place);
        opts.kdf = dr_vault::KdfParams::INSECURE_FOR_TESTS;
        let storage = dr_vault::Storage::local(&root.join(place), true).unwrap();
        dr_vault::Vault::init(storage, &opts, &dr_vault::Passphrase::new("list pass"))
            .await
            .unwrap();
    }
    // Another team's vault, which this passphrase does not open: listed, without its state.
    let mut theirs = dr_vault::InitOptions::new("theirs", "zz");
    theirs.kdf = dr_vault::KdfParams::INSECURE_FOR_TESTS;
    dr_vault::Vault::init(
        dr_vault::Storage::local(&root.join("zz"), true).unwrap(),
        &theirs,
        &dr_vault::Passphrase::new("someone else's"),
    )
    .await
    .unwrap();
    std::fs::create_dir_all(root.join("notes/deeper")).unwrap();
    std::fs::write(root.join("notes/readme.txt"), "not a vault").unwrap();
    let configured = c
        .configure_provider(pb::configure_provider::Request {
            terraform_version: "1.14.0".into(),
            config: Some(config(&ty, "list pass".into(), Value::Null)),
            client_capabilities: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        configured.diagnostics.is_empty(),
        "{:?}",
        configured.diagnostics
    );
    let schema = c
        .get_provider_schema(pb::get_provider_schema::Request {})
        .await
        .unwrap()
        .into_inner();
    assert!(schema.diagnostics.is_empty(), "{:?}", schema.diagnostics);
    let list_ty = Type::Object(
        [
            ("under".to_string(), Type::String),
            ("storage_options".to_string(), Type::map(Type::String)),
            ("depth".to_string(), Type::Number),
        ]
        .into(),
    );
    assert!(schema.list_resource_schemas.contains_key("dr_backup_vault"));
    let list = |under: &str, limit: i64| pb::list_resource::Request {
        type_name: "dr_backup_vault".into(),
        config: Some(argument(
            &Value::object([
                ("under", Value::from(under)),
                ("storage_options", Value::Null),
                ("depth", Value::Null),
            ]),
            &list_ty,
        )),
        include_resource_object: true,
        limit,
    };
    let mut stream = c
        .list_resource(list(&root.display().to_string(), 10))
        .await
        .unwrap()
        .into_inner();
    let mut events = Vec::new();
    while let Some(event) = stream.message().await.unwrap() {
        events.push(event);
    }
    // The last event carries the warning about the vault that did not open.
    let warnings = events.pop().unwrap().diagnostic;
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0].summary, "Vault Listed Without Its State");
    assert!(warnings[0].detail.contains("/vaults/zz"), "{warnings:?}");
    assert!(events.iter().all(|e| e.diagnostic.is_empty()), "{events:?}");
    let identity_ty = Type::Object([("url".to_string(), Type::String)].into());
    let urls: Vec<Value> = events
        .iter()
        .map(|e| {
            let dv = e.identity.as_ref().unwrap().identity_data.as_ref().unwrap();
            Value::from_msgpack(&dv.msgpack, &identity_ty)
                .unwrap()
                .attr("url")
                .clone()
        })
        .collect();
    assert_eq!(
        urls,
        [
            Value::from(format!("file://{}", root.join("eu").display())),
            Value::from(format!("file://{}", root.join("zz").display())),
            Value::from(format!("file://{}", root.join("us/ci").display())),
        ]
    );
    assert!(
        events[1].resource_object.is_none(),
        "no state for a vault that does not open"
    );
    assert!(
        events[0]
            .display_name
            .starts_with("primary (eu) at file://"),
        "{}",
        events[0].display_name
    );
    let vault_ty = {
        let provider = DrProvider::default();
        let vault = provider
            .resources()
            .into_iter()
            .find(|r| r.type_name() == "dr_backup_vault")
            .unwrap();
        vault.schema().block.implied_type()
    };
    let state = Value::from_msgpack(
        &events[2].resource_object.as_ref().unwrap().msgpack,
        &vault_ty,
    )
    .unwrap();
    assert_eq!(state.attr("name"), &Value::from("standby"));

    let mut one = c
        .list_resource(list(&root.display().to_string(), 1))
        .await
        .unwrap()
        .into_inner();
    let mut count = 0;
    while one.message().await.unwrap().is_some() {
        count += 1;
    }
    assert_eq!(count, 1, "limit is honoured");

    let mut missing = c
        .list_resource(list(&dir.path().join("nowhere").display().to_string(), 10))
        .await
        .unwrap()
        .into_inner();
    let event = missing.message().await.unwrap().unwrap();
    let paths: Vec<String> = event
        .diagnostic
        .iter()
        .filter_map(|d| d.attribute.as_ref())
        .map(|a| AttributePath::from_proto(a).to_string())
        .collect();
    assert!(event.identity.is_none());
    assert_eq!(paths, ["under"], "{:?}", event.diagnostic);
}

/// Collects an InvokeAction stream: its progress lines and the final diagnostics' summaries.
async fn invoke(
    c: &mut ProviderClient<tonic::transport::Channel>,
    action: &str,
    config: Value,
    ty: &Type,
) -> (Vec<String>, Vec<String>) {
    use pb::invoke_action::event::Type as EventType;
    let mut stream = c
        .invoke_action(pb::invoke_action::Request {
            action_type: action.into(),
            config: Some(argument(&config, ty)),
            client_capabilities: None,
        })
        .await
        .unwrap()
        .into_inner();
    let (mut progress, mut completed) = (Vec::new(), Vec::new());
    while let Some(event) = stream.message().await.unwrap() {
        match event.r#type {
            Some(EventType::Progress(p)) => progress.push(p.message),
            Some(EventType::Completed(done)) => {
                completed = done
                    .diagnostics
                    .iter()
                    .map(|d| format!("{}: {}", d.summary, d.detail))
                    .collect()
            }
            None => {}
        }
    }
    (progress, completed)
}

/// The actions (Terraform 1.14+), in-process: `dr_snapshot_now` snapshots a vault's recorded
/// sources (and says so when it records none); `dr_run_drill` restores, checks and writes its
/// report into the vault, and a failing check fails the action with the reason.
#[tokio::test]
async fn actions_take_a_snapshot_and_run_a_drill_now() {
    let (mut c, ty) = client().await;
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("ci.yml"), "stages: [build]\n").unwrap();
    let vault_dir = dir.path().join("vault");
    let mut opts = dr_vault::InitOptions::new("ci", "eu-west-1");
    opts.kdf = dr_vault::KdfParams::INSECURE_FOR_TESTS;
    let storage = dr_vault::Storage::local(&vault_dir, true).unwrap();
    let passphrase = dr_vault::Passphrase::new("action pass");
    let vault = dr_vault::Vault::init(storage, &opts, &passphrase)
        .await
        .unwrap();
    let configured = c
        .configure_provider(pb::configure_provider::Request {
            terraform_version: "1.14.0".into(),
            config: Some(config(&ty, "action pass".into(), Value::Null)),
            client_capabilities: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        configured.diagnostics.is_empty(),
        "{:?}",
        configured.diagnostics
    );
    let schema = c
        .get_provider_schema(pb::get_provider_schema::Request {})
        .await
        .unwrap()
        .into_inner();
    let mut actions: Vec<&String> = schema.action_schemas.keys().collect();
    actions.sort();
    assert_eq!(actions, ["dr_run_drill", "dr_snapshot_now"]);
    let vault_id = format!("file://{}", vault_dir.display());
    let snapshot_ty = Type::Object(
        [
            ("vault_id".to_string(), Type::String),
            ("storage_options".to_string(), Type::map(Type::String)),
        ]
        .into(),
    );
    let snapshot_now = Value::object([("vault_id", Value::from(vault_id.as_str()))]);

    // Made outside Terraform: no recorded sources to snapshot.
    let (_, done) = invoke(
        &mut c,
        "dr_snapshot_now",
        snapshot_now.clone(),
        &snapshot_ty,
    )
    .await;
    assert!(done[0].starts_with("No Recorded Sources"), "{done:?}");
    assert!(vault.snapshots().await.unwrap().is_empty());

    // What a dr_backup_vault records, with one source: now it snapshots.
    vault
        .put_record(
            "terraform/dr_backup_vault",
            &serde_json::json!({
                "name": "ci", "region": "eu-west-1", "url": vault_id,
                "source": [{"name": "pipeline", "path": src.display().to_string()}],
            }),
        )
        .await
        .unwrap();
    let (progress, done) = invoke(&mut c, "dr_snapshot_now", snapshot_now, &snapshot_ty).await;
    assert!(done.is_empty(), "{done:?}");
    assert!(progress[0].starts_with("snapshot "), "{progress:?}");
    assert_eq!(vault.snapshots().await.unwrap().len(), 1);

    let drill_ty = Type::Object(
        [
            ("name".to_string(), Type::String),
            ("vault_id".to_string(), Type::String),
            ("snapshot_id".to_string(), Type::String),
            ("verify_command".to_string(), Type::list(Type::String)),
            ("rpo".to_string(), Type::String),
            ("rto".to_string(), Type::String),
            ("verify_timeout".to_string(), Type::String),
        ]
        .into(),
    );
    let drill = |check: &str| {
        Value::object([
            ("name", Value::from("adhoc")),
            ("vault_id", Value::from(vault_id.as_str())),
            (
                "verify_command",
                Value::List(vec!["sh".into(), "-c".into(), check.into()]),
            ),
            ("rto", Value::from("1h")),
        ])
    };
    let (progress, done) = invoke(
        &mut c,
        "dr_run_drill",
        drill("test -f pipeline/ci.yml"),
        &drill_ty,
    )
    .await;
    assert!(done.is_empty(), "{done:?}");
    assert!(
        progress[0].starts_with("drill \"adhoc\" passed"),
        "{progress:?}"
    );
    assert!(progress[0].contains("(1 files verified)"), "{progress:?}");
    assert_eq!(
        vault.records("drills/adhoc").await.unwrap().len(),
        1,
        "the report is in the vault"
    );

    let (progress, done) = invoke(&mut c, "dr_run_drill", drill("exit 4"), &drill_ty).await;
    assert!(
        progress[0].starts_with("drill \"adhoc\" failed"),
        "{progress:?}"
    );
    assert!(
        done[0].starts_with("Drill Failed: verify_command exited with 4"),
        "{done:?}"
    );

    // The action's reports are its own: a dr_drill of that name is not imported from them.
    let imported = c
        .import_resource_state(pb::import_resource_state::Request {
            type_name: "dr_drill".into(),
            id: format!("adhoc@{vault_id}"),
            client_capabilities: None,
            identity: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        imported.diagnostics[0].summary, "Drill Not Found",
        "{:?}",
        imported.diagnostics
    );
}
