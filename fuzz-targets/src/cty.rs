//! The cty codecs of the wire protocol: every value Terraform sends a provider arrives as
//! msgpack (or JSON, in state upgrades and some RPCs) to be read with a schema type. What
//! decodes must encode again and decode to the same value.

use arbitrary::{Result, Unstructured};
use tfplugin::{Number, Type, Value};

/// Splits a cty input: the first byte is the length of the type's JSON, then the type, then
/// the payload. (Types in a corpus are short: schemas' attribute types.)
fn typed(data: &[u8]) -> Option<(Type, &[u8])> {
    let (&len, rest) = data.split_first()?;
    let len = usize::from(len).min(rest.len());
    let ty = Type::from_json_bytes(&rest[..len]).ok()?;
    Some((ty, &rest[len..]))
}

/// msgpack, read with a type given in the input.
pub fn msgpack(data: &[u8]) {
    if let Some((ty, payload)) = typed(data) {
        msgpack_round_trip(payload, &ty);
    }
}

/// JSON, read with a type given in the input.
pub fn json(data: &[u8]) {
    if let Some((ty, payload)) = typed(data) {
        json_round_trip(payload, &ty);
    }
}

/// A dynamic value (a `dynamic` slot: the value carries its own type), in both encodings.
pub fn dynamic(data: &[u8]) {
    msgpack_round_trip(data, &Type::Dynamic);
    json_round_trip(data, &Type::Dynamic);
}

fn msgpack_round_trip(payload: &[u8], ty: &Type) {
    let Ok(value) = Value::from_msgpack(payload, ty) else {
        return;
    };
    let bytes = value
        .to_msgpack(ty)
        .unwrap_or_else(|e| panic!("decoded {value:?} as {ty:?} but it does not encode: {e}"));
    let again = Value::from_msgpack(&bytes, ty).expect("encoded msgpack decodes");
    assert_eq!(again, value, "msgpack round trip as {ty:?}");
}

fn json_round_trip(payload: &[u8], ty: &Type) {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(payload) else {
        return;
    };
    let Ok(value) = Value::from_json(&json, ty) else {
        return;
    };
    let encoded = value
        .to_json(ty)
        .unwrap_or_else(|e| panic!("decoded {value:?} as {ty:?} but it does not encode: {e}"));
    let text = encoded.to_string();
    let reparsed: serde_json::Value = serde_json::from_str(&text).expect("written JSON parses");
    let again = Value::from_json(&reparsed, ty).expect("encoded JSON decodes");
    assert_eq!(again, value, "JSON round trip as {ty:?}");
}

/// Structure-aware: a type and a value of that type built from the input, encoded then
/// decoded in msgpack (unknowns included) and JSON (which has no unknowns) must come back equal.
pub fn round_trip(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(ty) = arbitrary_type(&mut u, 4) else {
        return;
    };
    let Ok(with_unknowns) = arbitrary_value(&mut u, &ty, true, 4) else {
        return;
    };
    let bytes = with_unknowns
        .to_msgpack(&ty)
        .unwrap_or_else(|e| panic!("{with_unknowns:?} as {ty:?} does not encode: {e}"));
    let decoded = Value::from_msgpack(&bytes, &ty).expect("encoded msgpack decodes");
    assert_eq!(decoded, with_unknowns, "msgpack round trip as {ty:?}");

    let Ok(known) = arbitrary_value(&mut u, &ty, false, 4) else {
        return;
    };
    let json = known
        .to_json(&ty)
        .unwrap_or_else(|e| panic!("{known:?} as {ty:?} does not encode as JSON: {e}"));
    let reparsed: serde_json::Value =
        serde_json::from_str(&json.to_string()).expect("written JSON parses");
    let decoded = Value::from_json(&reparsed, &ty).expect("encoded JSON decodes");
    assert_eq!(decoded, known, "JSON round trip as {ty:?}");
}

fn arbitrary_type(u: &mut Unstructured, depth: u32) -> Result<Type> {
    let leaves = 4;
    let choice = if depth == 0 {
        u.choose_index(leaves)?
    } else {
        u.choose_index(leaves + 5)?
    };
    Ok(match choice {
        0 => Type::String,
        1 => Type::Number,
        2 => Type::Bool,
        3 => Type::Dynamic,
        4 => Type::list(arbitrary_type(u, depth - 1)?),
        5 => Type::set(arbitrary_type(u, depth - 1)?),
        6 => Type::map(arbitrary_type(u, depth - 1)?),
        7 => {
            let mut attrs = std::collections::BTreeMap::new();
            for _ in 0..u.int_in_range(0..=4)? {
                attrs.insert(name(u)?, arbitrary_type(u, depth - 1)?);
            }
            Type::Object(attrs)
        }
        _ => {
            let count = u.int_in_range(0..=4)?;
            Type::Tuple(
                (0..count)
                    .map(|_| arbitrary_type(u, depth - 1))
                    .collect::<Result<_>>()?,
            )
        }
    })
}

fn name(u: &mut Unstructured) -> Result<String> {
    let len = u.int_in_range(1..=8)?;
    (0..len)
        .map(|_| Ok(char::from(b'a' + u.int_in_range(0..=25)?)))
        .collect()
}

fn arbitrary_number(u: &mut Unstructured) -> Result<Number> {
    Ok(match u.choose_index(4)? {
        0 => Number::from(u.arbitrary::<i64>()?),
        1 => Number::from(u.arbitrary::<u64>()?),
        2 => Number::from_f64(u.arbitrary::<f64>()?).unwrap_or_else(|| Number::from(0i64)),
        _ => {
            // More digits than an f64 holds: must travel as text and come back exact.
            let digits = |u: &mut Unstructured, n: usize| -> Result<String> {
                (0..n)
                    .map(|_| Ok(char::from(b'0' + u.int_in_range(0..=9)?)))
                    .collect()
            };
            let whole = u.int_in_range(1..=30)?;
            let fraction = u.int_in_range(1..=30)?;
            let text = format!(
                "{}{}{}.{}",
                if u.arbitrary()? { "-" } else { "" },
                char::from(b'1' + u.int_in_range(0..=8)?),
                digits(u, whole - 1)?,
                digits(u, fraction)?
            );
            text.parse().unwrap_or_else(|_| Number::from(0i64))
        }
    })
}

fn arbitrary_value(u: &mut Unstructured, ty: &Type, unknowns: bool, depth: u32) -> Result<Value> {
    match u.choose_index(if unknowns { 8 } else { 7 })? {
        0 => return Ok(Value::Null),
        7 => return Ok(Value::Unknown),
        _ => {}
    }
    let elements = |u: &mut Unstructured, elem: &Type| -> Result<Vec<Value>> {
        (0..u.int_in_range(0..=4)?)
            .map(|_| arbitrary_value(u, elem, unknowns, depth))
            .collect()
    };
    Ok(match ty {
        Type::String => Value::String(u.arbitrary()?),
        Type::Number => Value::Number(arbitrary_number(u)?),
        Type::Bool => Value::Bool(u.arbitrary()?),
        Type::List(elem) => Value::List(elements(u, elem)?),
        Type::Set(elem) => Value::Set(elements(u, elem)?),
        Type::Map(elem) => Value::Map(
            (0..u.int_in_range(0..=4)?)
                .map(|_| Ok((u.arbitrary()?, arbitrary_value(u, elem, unknowns, depth)?)))
                .collect::<Result<_>>()?,
        ),
        Type::Object(attrs) => Value::Object(
            attrs
                .iter()
                .map(|(k, t)| Ok((k.clone(), arbitrary_value(u, t, unknowns, depth)?)))
                .collect::<Result<_>>()?,
        ),
        Type::Tuple(elems) => Value::Tuple(
            elems
                .iter()
                .map(|t| arbitrary_value(u, t, unknowns, depth))
                .collect::<Result<_>>()?,
        ),
        Type::Dynamic => {
            let concrete = match arbitrary_type(u, depth.min(2))? {
                Type::Dynamic => Type::String,
                t => t,
            };
            let inner = arbitrary_value(u, &concrete, unknowns, depth.saturating_sub(1))?;
            Value::Dynamic(concrete, Box::new(inner))
        }
    })
}
