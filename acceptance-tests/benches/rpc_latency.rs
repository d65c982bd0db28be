//! In-process latency of the RPCs Terraform sends most: GetProviderSchema (every process
//! start) and PlanResourceChange (every resource, every plan), through the generated gRPC
//! client over loopback against the SDK's test provider.
//!
//! Run: `cargo bench -p acceptance-tests --bench rpc_latency` (release build).

use acceptance_tests::tftest::TestProvider;
use dr_proto::tfplugin6::{self as pb, provider_client::ProviderClient};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tfplugin::{Provider, Type, Value};

const RUNS: usize = 2000;

#[tokio::main]
async fn main() {
    let provider = TestProvider::default();
    let ty = provider.resources()[0].schema().block.implied_type();
    let (addr, _stop, _task) = tfplugin::serve::serve_tcp_for_tests(Arc::new(provider))
        .await
        .expect("serve");
    let mut client = ProviderClient::connect(format!("http://{addr}"))
        .await
        .expect("connect");

    let mut times = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let started = Instant::now();
        client
            .get_provider_schema(pb::get_provider_schema::Request {})
            .await
            .expect("schema");
        times.push(started.elapsed());
    }
    report("GetProviderSchema", times);

    // An unchanged resource with nested blocks: the plan Terraform makes most often.
    let state = sample_state(&ty);
    let dv = pb::DynamicValue {
        msgpack: state.to_msgpack(&ty).expect("encode"),
        json: Vec::new(),
    };
    let mut times = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let started = Instant::now();
        let reply = client
            .plan_resource_change(pb::plan_resource_change::Request {
                type_name: "tftest_thing".into(),
                prior_state: Some(dv.clone()),
                proposed_new_state: Some(dv.clone()),
                config: Some(dv.clone()),
                ..Default::default()
            })
            .await
            .expect("plan")
            .into_inner();
        times.push(started.elapsed());
        assert!(reply.diagnostics.is_empty());
    }
    report(
        "PlanResourceChange (no-op, 12 attributes, 5 nested blocks)",
        times,
    );
}

fn sample_state(ty: &Type) -> Value {
    let Type::Object(attrs) = ty else {
        unreachable!("resources are objects")
    };
    let mut v = Value::Object(attrs.keys().map(|k| (k.clone(), Value::Null)).collect());
    v.set_attr("name", "bench".into());
    v.set_attr(
        "size",
        Value::Number("3.14159265358979323846".parse().expect("number")),
    );
    v.set_attr("enabled", true.into());
    v.set_attr("id", "bench-1".into());
    v.set_attr("revision", 1i64.into());
    v.set_attr("summary", "bench:3.14159265358979323846".into());
    v.set_attr(
        "tags",
        Value::Map(
            (0..8)
                .map(|i| (format!("k{i}"), Value::from(format!("v{i}"))))
                .collect(),
        ),
    );
    let endpoint = |h: &str| Value::object([("host", Value::from(h)), ("port", 443i64.into())]);
    v.set_attr("endpoint", Value::List(vec![endpoint("a"), endpoint("b")]));
    v.set_attr(
        "rule",
        Value::Set(vec![Value::object([
            ("action", "allow".into()),
            ("priority", Value::Null),
        ])]),
    );
    v.set_attr(
        "label",
        Value::Map([("env".to_string(), Value::object([("value", "prod".into())]))].into()),
    );
    v.set_attr(
        "limits",
        Value::object([("cpu", 2i64.into()), ("memory", Value::Null)]),
    );
    v.set_attr(
        "settings",
        Value::object([("mode", "fast".into()), ("retries", Value::Null)]),
    );
    v
}

fn report(what: &str, mut times: Vec<Duration>) {
    times.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let pct = |p: usize| times[(times.len() * p / 100).min(times.len() - 1)];
    println!(
        "{what}: median {:.0} µs, p90 {:.0} µs, p99 {:.0} µs ({} calls)",
        us(pct(50)),
        us(pct(90)),
        us(pct(99)),
        times.len()
    );
}
