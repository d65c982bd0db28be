//! RPCs that Terraform 1.0.3 never sends (protocol 6.4–6.10), called in-process through the
//! generated client against a server on 127.0.0.1:0, plus wire details of newer Terraform
//! (refined unknowns) and the panic guard.

use acceptance_tests::tftest::TestProvider;
use dr_proto::tfplugin6::{self as pb, provider_client::ProviderClient};
use std::sync::Arc;
use tfplugin::{Provider, Type, Value};
use tonic::transport::Channel;

async fn client() -> (ProviderClient<Channel>, Type) {
    let provider = TestProvider::default();
    let ty = provider.resources()[0].schema().block.implied_type();
    (
        tfplugin::serve::client_for_tests(Arc::new(provider)).await,
        ty,
    )
}

fn summaries(diags: &[pb::Diagnostic]) -> Vec<&str> {
    diags.iter().map(|d| d.summary.as_str()).collect()
}

fn dv(value: &Value, ty: &Type) -> Option<pb::DynamicValue> {
    Some(pb::DynamicValue {
        msgpack: value.to_msgpack(ty).unwrap(),
        json: Vec::new(),
    })
}

/// A tftest_thing object with everything null but `name`.
fn thing(ty: &Type, name: Value) -> Value {
    let Type::Object(attrs) = ty else {
        unreachable!()
    };
    let mut v = Value::Object(attrs.keys().map(|k| (k.clone(), Value::Null)).collect());
    for (block, empty) in [
        ("endpoint", Value::List(vec![])),
        ("rule", Value::Set(vec![])),
        ("label", Value::Map(Default::default())),
    ] {
        v.set_attr(block, empty);
    }
    v.set_attr(
        "limits",
        Value::object([("cpu", Value::Null), ("memory", Value::Null)]),
    );
    v.set_attr("name", name);
    v
}

#[tokio::test]
async fn metadata_and_schema_list_what_the_provider_offers() {
    let (mut c, _) = client().await;
    let meta = c
        .get_metadata(pb::get_metadata::Request {})
        .await
        .unwrap()
        .into_inner();
    let resources: Vec<_> = meta
        .resources
        .iter()
        .map(|r| r.type_name.as_str())
        .collect();
    let data_sources: Vec<_> = meta
        .data_sources
        .iter()
        .map(|r| r.type_name.as_str())
        .collect();
    assert_eq!(resources, ["tftest_thing"]);
    assert_eq!(data_sources, ["tftest_thing_info"]);
    assert!(
        meta.functions.is_empty()
            && meta.ephemeral_resources.is_empty()
            && meta.list_resources.is_empty()
    );
    assert!(meta.state_stores.is_empty() && meta.actions.is_empty() && meta.diagnostics.is_empty());
    let caps = meta.server_capabilities.unwrap();
    assert!(caps.get_provider_schema_optional && !caps.plan_destroy && !caps.move_resource_state);

    let schema = c
        .get_provider_schema(pb::get_provider_schema::Request {})
        .await
        .unwrap()
        .into_inner();
    assert!(schema.diagnostics.is_empty(), "{:?}", schema.diagnostics);
    assert!(
        schema.provider_meta.unwrap().block.is_some(),
        "never a null block: Terraform 1.0 crashes on it"
    );
    assert_eq!(schema.resource_schemas["tftest_thing"].version, 1);
    assert!(schema.functions.is_empty() && schema.action_schemas.is_empty());

    let ids = c
        .get_resource_identity_schemas(pb::get_resource_identity_schemas::Request {})
        .await
        .unwrap()
        .into_inner();
    assert!(ids.identity_schemas.is_empty() && ids.diagnostics.is_empty());
    let fns = c
        .get_functions(pb::get_functions::Request {})
        .await
        .unwrap()
        .into_inner();
    assert!(fns.functions.is_empty() && fns.diagnostics.is_empty());
}

#[tokio::test]
async fn features_not_offered_answer_with_clear_errors() {
    let (mut c, _) = client().await;
    let call = c
        .call_function(pb::call_function::Request {
            name: "nope".into(),
            arguments: vec![],
        })
        .await
        .unwrap()
        .into_inner();
    assert!(call.error.unwrap().text.contains("\"nope\""));

    let moved = c
        .move_resource_state(pb::move_resource_state::Request {
            source_type_name: "other_thing".into(),
            target_type_name: "tftest_thing".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(summaries(&moved.diagnostics), ["Move Not Supported"]);

    let upgraded_id = c
        .upgrade_resource_identity(pb::upgrade_resource_identity::Request {
            type_name: "tftest_thing".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        summaries(&upgraded_id.diagnostics),
        ["Resource Identity Not Supported"]
    );

    let eph = c
        .open_ephemeral_resource(pb::open_ephemeral_resource::Request {
            type_name: "tftest_token".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        summaries(&eph.diagnostics),
        ["Ephemeral Resource Not Supported"]
    );
    let v = c
        .validate_ephemeral_resource_config(pb::validate_ephemeral_resource_config::Request {
            type_name: "x".into(),
            config: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(v.diagnostics.len(), 1);

    let mut list = c
        .list_resource(pb::list_resource::Request {
            type_name: "tftest_thing".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let event = list.message().await.unwrap().unwrap();
    assert_eq!(
        summaries(&event.diagnostic),
        ["List Resource Not Supported"]
    );
    assert!(list.message().await.unwrap().is_none(), "the stream ends");

    let states = c
        .get_states(pb::get_states::Request {
            type_name: "tftest_store".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        summaries(&states.diagnostics),
        ["State Store Not Supported"]
    );
    let chunk = pb::write_state_bytes::RequestChunk {
        meta: Some(pb::RequestChunkMeta {
            type_name: "tftest_store".into(),
            state_id: "default".into(),
        }),
        bytes: b"{}".to_vec(),
        total_length: 2,
        range: None,
    };
    let written = c
        .write_state_bytes(tokio_stream::iter(vec![chunk]))
        .await
        .unwrap()
        .into_inner();
    assert!(written.diagnostics[0].detail.contains("tftest_store"));

    let mut invoked = c
        .invoke_action(pb::invoke_action::Request {
            action_type: "tftest_go".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    match invoked.message().await.unwrap().unwrap().r#type {
        Some(pb::invoke_action::event::Type::Completed(done)) => {
            assert_eq!(summaries(&done.diagnostics), ["Action Not Supported"])
        }
        other => panic!("expected a completed event, got {other:?}"),
    }

    let stop = c
        .stop_provider(pb::stop_provider::Request {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stop.error, "");
}

#[tokio::test]
async fn generated_config_keeps_what_users_write_and_drops_computed_and_sensitive_values() {
    let (mut c, ty) = client().await;
    let mut state = thing(&ty, "alpha".into());
    state.set_attr("id", "alpha-1".into());
    state.set_attr("revision", 3i64.into());
    state.set_attr("secret", "hunter2".into());
    state.set_attr("enabled", true.into());
    state.set_attr(
        "tags",
        Value::Map([("team".to_string(), Value::from("platform"))].into()),
    );
    let reply = c
        .generate_resource_config(pb::generate_resource_config::Request {
            type_name: "tftest_thing".into(),
            state: dv(&state, &ty),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(reply.diagnostics.is_empty(), "{:?}", reply.diagnostics);
    let config = Value::from_msgpack(&reply.config.unwrap().msgpack, &ty).unwrap();
    assert_eq!(config.attr("name"), &Value::from("alpha"));
    assert_eq!(config.attr("tags").entries().unwrap().len(), 1);
    for dropped in ["id", "revision", "secret", "enabled"] {
        assert!(
            config.attr(dropped).is_null(),
            "{dropped} must not be generated"
        );
    }
}

#[tokio::test]
async fn refined_unknowns_from_newer_terraform_plan_as_unknown() {
    let (mut c, ty) = client().await;
    // Terraform >= 1.6 marks unknowns with extension 12 and a refinement payload.
    let mut config = thing(&ty, Value::Null).to_msgpack(&ty).unwrap();
    let null_name = [0xa4, b'n', b'a', b'm', b'e', 0xc0];
    let at = config
        .windows(null_name.len())
        .position(|w| w == null_name)
        .unwrap()
        + null_name.len()
        - 1;
    config.splice(at..=at, [0xc7, 0x03, 0x0c, 0x81, 0x01, 0xc3]);
    let config = pb::DynamicValue {
        msgpack: config,
        json: Vec::new(),
    };
    let reply = c
        .plan_resource_change(pb::plan_resource_change::Request {
            type_name: "tftest_thing".into(),
            prior_state: dv(&Value::Null, &ty),
            proposed_new_state: Some(config.clone()),
            config: Some(config),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(reply.diagnostics.is_empty(), "{:?}", reply.diagnostics);
    let planned = Value::from_msgpack(&reply.planned_state.unwrap().msgpack, &ty).unwrap();
    assert!(planned.attr("name").is_unknown());
    assert!(
        planned.attr("summary").is_unknown(),
        "derived from an unknown name"
    );
    assert_eq!(planned.attr("enabled"), &Value::Bool(true));
}

#[tokio::test]
async fn a_panicking_provider_returns_a_diagnostic_and_keeps_serving() {
    let (mut c, ty, _store) = configured_client().await;
    let mut planned = thing(&ty, "trigger-panic".into());
    planned.set_attr("enabled", true.into());
    for computed in ["id", "created_at", "revision", "summary"] {
        planned.set_attr(computed, Value::Unknown);
    }
    let reply = c
        .apply_resource_change(pb::apply_resource_change::Request {
            type_name: "tftest_thing".into(),
            prior_state: dv(&Value::Null, &ty),
            planned_state: dv(&planned, &ty),
            config: dv(&thing(&ty, "trigger-panic".into()), &ty),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(summaries(&reply.diagnostics), ["Provider Panicked"]);
    assert!(reply.diagnostics[0].detail.contains("asked to panic"));
    // Still alive.
    c.get_metadata(pb::get_metadata::Request {}).await.unwrap();
}

async fn configured_client() -> (ProviderClient<Channel>, Type, tempfile::TempDir) {
    let (mut c, ty) = client().await;
    let store = tempfile::tempdir().unwrap();
    let provider_ty = Type::object([("store_dir", Type::String)]);
    let provider_config =
        Value::object([("store_dir", Value::from(store.path().display().to_string()))]);
    c.configure_provider(pb::configure_provider::Request {
        config: dv(&provider_config, &provider_ty),
        ..Default::default()
    })
    .await
    .unwrap();
    (c, ty, store)
}

#[tokio::test]
async fn private_state_travels_from_apply_through_read() {
    let (mut c, ty, _store) = configured_client().await;
    let mut planned = thing(&ty, "alpha".into());
    planned.set_attr("enabled", true.into());
    planned.set_attr("summary", "alpha:none".into());
    for computed in ["id", "created_at", "revision"] {
        planned.set_attr(computed, Value::Unknown);
    }
    let applied = c
        .apply_resource_change(pb::apply_resource_change::Request {
            type_name: "tftest_thing".into(),
            prior_state: dv(&Value::Null, &ty),
            planned_state: dv(&planned, &ty),
            config: dv(&thing(&ty, "alpha".into()), &ty),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(applied.diagnostics.is_empty(), "{:?}", applied.diagnostics);
    assert_eq!(applied.private, b"created");
    let read = c
        .read_resource(pb::read_resource::Request {
            type_name: "tftest_thing".into(),
            current_state: applied.new_state.clone(),
            private: applied.private.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read.private, b"created", "private bytes are echoed back");
    assert_eq!(read.new_state, applied.new_state);
}

#[tokio::test]
async fn messages_beyond_tonics_default_4_mib_are_accepted() {
    let (mut c, ty) = client().await;
    let tags: std::collections::BTreeMap<String, Value> = (0..6000)
        .map(|i| (format!("tag{i:05}"), Value::from("x".repeat(1024))))
        .collect();
    let mut config = thing(&ty, "big".into());
    config.set_attr("tags", Value::Map(tags));
    let reply = c
        .validate_resource_config(pb::validate_resource_config::Request {
            type_name: "tftest_thing".into(),
            config: dv(&config, &ty),
            client_capabilities: None,
        })
        .await
        .expect("a 6 MiB configuration is accepted")
        .into_inner();
    assert!(reply.diagnostics.is_empty(), "{:?}", reply.diagnostics);
}
