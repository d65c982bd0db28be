use super::*;
use proptest::prelude::*;

fn arb_type() -> impl Strategy<Value = Type> {
    let leaf = prop_oneof![
        Just(Type::String),
        Just(Type::Number),
        Just(Type::Bool),
        Just(Type::Dynamic)
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(Type::list),
            inner.clone().prop_map(Type::set),
            inner.clone().prop_map(Type::map),
            prop::collection::btree_map("[a-z_]{1,8}", inner.clone(), 0..4).prop_map(Type::Object),
            prop::collection::vec(inner, 0..4).prop_map(Type::Tuple),
        ]
    })
}

fn arb_number() -> impl Strategy<Value = Number> {
    prop_oneof![
        any::<i64>().prop_map(Number::from),
        any::<u64>().prop_map(Number::from),
        any::<f64>().prop_filter_map("finite", Number::from_f64),
        // More digits than any f64 holds: must survive as text.
        ("-?[1-9][0-9]{0,30}", "[0-9]{1,30}")
            .prop_map(|(i, f)| format!("{i}.{f}").parse().unwrap()),
    ]
}

/// A value of type `ty`; `allow_unknown` decides whether unknowns may appear.
fn arb_value(ty: Type, allow_unknown: bool) -> BoxedStrategy<Value> {
    let concrete: BoxedStrategy<Value> = match ty.clone() {
        Type::String => any::<String>().prop_map(Value::String).boxed(),
        Type::Number => arb_number().prop_map(Value::Number).boxed(),
        Type::Bool => any::<bool>().prop_map(Value::Bool).boxed(),
        Type::List(e) => prop::collection::vec(arb_value(*e, allow_unknown), 0..4)
            .prop_map(Value::List)
            .boxed(),
        Type::Set(e) => prop::collection::vec(arb_value(*e, allow_unknown), 0..4)
            .prop_map(Value::Set)
            .boxed(),
        Type::Map(e) => prop::collection::btree_map(".{0,6}", arb_value(*e, allow_unknown), 0..4)
            .prop_map(Value::Map)
            .boxed(),
        Type::Object(attrs) => {
            let fields: Vec<_> = attrs
                .into_iter()
                .map(|(k, t)| arb_value(t, allow_unknown).prop_map(move |v| (k.clone(), v)))
                .collect();
            fields
                .prop_map(|kv| Value::Object(kv.into_iter().collect()))
                .boxed()
        }
        Type::Tuple(elems) => {
            let elems: Vec<_> = elems
                .into_iter()
                .map(|t| arb_value(t, allow_unknown))
                .collect();
            elems.prop_map(Value::Tuple).boxed()
        }
        Type::Dynamic => arb_type()
            .prop_filter("concrete", |t| *t != Type::Dynamic)
            .prop_flat_map(move |t| {
                arb_value(t.clone(), allow_unknown)
                    .prop_map(move |v| Value::Dynamic(t.clone(), Box::new(v)))
            })
            .boxed(),
    };
    let mut options = vec![(1, Just(Value::Null).boxed()), (6, concrete)];
    if allow_unknown {
        options.push((1, Just(Value::Unknown).boxed()));
    }
    prop::strategy::Union::new_weighted(options).boxed()
}

fn typed_value(allow_unknown: bool) -> impl Strategy<Value = (Type, Value)> {
    arb_type().prop_flat_map(move |t| {
        arb_value(t.clone(), allow_unknown).prop_map(move |v| (t.clone(), v))
    })
}

proptest! {
    #[test]
    fn msgpack_round_trips_any_value_with_unknowns((ty, value) in typed_value(true)) {
        let bytes = value.to_msgpack(&ty).unwrap();
        prop_assert_eq!(Value::from_msgpack(&bytes, &ty).unwrap(), value);
    }

    #[test]
    fn json_round_trips_any_known_value((ty, value) in typed_value(false)) {
        let json = value.to_json(&ty).unwrap();
        let text = json.to_string();
        let reparsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(Value::from_json(&reparsed, &ty).unwrap(), value);
    }

    #[test]
    fn type_json_round_trips(ty in arb_type()) {
        prop_assert_eq!(Type::from_json_bytes(&ty.to_json_bytes()).unwrap(), ty);
    }
}

#[test]
fn unknown_is_the_fixext1_zero_and_any_extension_decodes_as_unknown() {
    assert_eq!(
        Value::Unknown.to_msgpack(&Type::String).unwrap(),
        vec![0xd4, 0, 0]
    );
    // Terraform >= 1.6 sends refined unknowns as extension 12 with a payload.
    let refined = [0xc7, 0x03, 0x0c, 0x81, 0x01, 0xc3];
    assert_eq!(
        Value::from_msgpack(&refined, &Type::String).unwrap(),
        Value::Unknown
    );
}

/// Found by fuzzing (`fuzz/regressions/cty_msgpack/`): a number text with an exponent in the
/// billions decoded at once but hung whatever used it. It is refused with the path.
#[test]
fn numbers_with_absurd_exponents_are_refused_not_expanded() {
    let text = "3709551615E00000000000000001812897350";
    let mut msgpack = vec![0xd9, text.len() as u8];
    msgpack.extend_from_slice(text.as_bytes());
    let err = Value::from_msgpack(&msgpack, &Type::Number).unwrap_err();
    assert!(err.message.contains("out of range"), "{err}");
    let json = serde_json::json!({ "n": 1 })
        .to_string()
        .replace('1', "1e-99999");
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    let err = Value::from_json(&json, &Type::object([("n", Type::Number)])).unwrap_err();
    assert_eq!(err.path, "n");
    // What Terraform can hold still decodes: the largest and smallest float64s, exactly.
    for text in ["1.7976931348623157e308", "5e-324", "-1e10000"] {
        let n: Number = text.parse().unwrap();
        assert!(!n.to_plain_string().is_empty());
    }
}

#[test]
fn numbers_take_the_narrowest_exact_wire_form() {
    let enc = |n: &str| {
        Value::Number(n.parse().unwrap())
            .to_msgpack(&Type::Number)
            .unwrap()
    };
    assert_eq!(enc("7"), vec![0x07]);
    assert_eq!(enc("0.5"), vec![0xcb, 0x3f, 0xe0, 0, 0, 0, 0, 0, 0]);
    let long = "3.14159265358979323846264338327950288";
    let mut expected = vec![0xd9, long.len() as u8];
    expected.extend_from_slice(long.as_bytes());
    assert_eq!(enc(long), expected);
}

#[test]
fn every_integer_width_decodes() {
    // uint8, uint16, int32, uint64, float32 — all the same cty number type.
    let cases: [(&[u8], &str); 5] = [
        (&[0xcc, 0xff], "255"),
        (&[0xcd, 0x01, 0x00], "256"),
        (&[0xd2, 0xff, 0xff, 0xff, 0xfe], "-2"),
        (
            &[0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            "18446744073709551615",
        ),
        (&[0xca, 0x3f, 0xc0, 0x00, 0x00], "1.5"),
    ];
    for (bytes, want) in cases {
        assert_eq!(
            Value::from_msgpack(bytes, &Type::Number).unwrap(),
            Value::Number(want.parse().unwrap())
        );
    }
}

#[test]
fn dynamic_values_carry_their_type_and_null_dynamic_is_nil() {
    let v = Value::Dynamic(
        Type::list(Type::String),
        Box::new(Value::List(vec!["a".into()])),
    );
    let bytes = v.to_msgpack(&Type::Dynamic).unwrap();
    assert_eq!(bytes[0], 0x92, "a 2-array");
    assert_eq!(Value::from_msgpack(&bytes, &Type::Dynamic).unwrap(), v);
    assert_eq!(Value::Null.to_msgpack(&Type::Dynamic).unwrap(), vec![0xc0]);
    let json = v.to_json(&Type::Dynamic).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"value": ["a"], "type": ["list", "string"]})
    );
}

#[test]
fn objects_send_every_attribute_and_reject_strangers() {
    let ty = Type::object([("a", Type::String), ("b", Type::Bool)]);
    let v = Value::object([("a", Value::string("x"))]);
    let back = Value::from_msgpack(&v.to_msgpack(&ty).unwrap(), &ty).unwrap();
    assert_eq!(
        back,
        Value::object([("a", Value::string("x")), ("b", Value::Null)])
    );
    let stranger = Value::object([("zzz", Value::Null)]);
    let err = stranger.to_msgpack(&ty).unwrap_err();
    assert!(
        err.message.contains("unsupported attribute \"zzz\""),
        "{err}"
    );
}

#[test]
fn errors_name_the_path() {
    let ty = Type::object([("tags", Type::map(Type::Number))]);
    let json = serde_json::json!({"tags": {"x": "not a number"}});
    let err = Value::from_json(&json, &ty).unwrap_err();
    assert_eq!(err.path, "tags[\"x\"]");
    let unknown = Value::object([("tags", Value::Unknown)]);
    assert_eq!(unknown.to_json(&ty).unwrap_err().path, "tags");
}

#[test]
fn sets_compare_without_order() {
    let a = Value::Set(vec!["x".into(), "y".into()]);
    let b = Value::Set(vec!["y".into(), "x".into()]);
    assert_eq!(a, b);
    assert_ne!(a, Value::Set(vec!["x".into(), "x".into()]));
}
