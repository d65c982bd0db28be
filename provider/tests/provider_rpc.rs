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
