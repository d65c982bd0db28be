//! Provider functions (Terraform 1.8+): `provider::NAME::FUNCTION(args)` in a configuration.
//!
//! A function declares its parameters and result type once ([`Signature`]); the SDK decodes
//! the arguments by those types, refuses a null where the parameter does not allow one
//! (naming the argument, as Terraform does), checks the result against the declared type and
//! renders the docs. Functions must be pure: the same arguments always give the same result
//! (Terraform calls them during validate, plan and apply, and relies on it), so they read no
//! clock, file or network; a function that needs "now" takes it as an argument.

use crate::value::{Type, Value};
use dr_proto::tfplugin6 as pb;

/// One positional parameter.
#[derive(Debug, Clone)]
pub struct Param {
    pub name: &'static str,
    pub ty: Type,
    pub description: &'static str,
    /// Whether `null` may be passed (otherwise the SDK refuses it before the call).
    pub allow_null: bool,
}

impl Param {
    pub fn new(name: &'static str, ty: Type, description: &'static str) -> Param {
        Param {
            name,
            ty,
            description,
            allow_null: false,
        }
    }
}

/// What a function takes and returns, and how the docs describe it.
#[derive(Debug, Clone)]
pub struct Signature {
    pub params: Vec<Param>,
    pub returns: Type,
    /// One line, shown in `terraform console` and the docs' front matter.
    pub summary: &'static str,
    /// Markdown: what it does, and an example.
    pub description: &'static str,
}

/// Why a call failed: a message for people and, when one argument is to blame, its position
/// (Terraform then points at that argument in the configuration).
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionError {
    pub message: String,
    pub argument: Option<usize>,
}

impl FunctionError {
    /// The argument at `position` (from 0) is wrong.
    pub fn argument(position: usize, message: impl Into<String>) -> FunctionError {
        FunctionError {
            message: message.into(),
            argument: Some(position),
        }
    }

    /// Wrong as a whole.
    pub fn call(message: impl Into<String>) -> FunctionError {
        FunctionError {
            message: message.into(),
            argument: None,
        }
    }
}

/// A provider function.
pub trait Function: Send + Sync {
    /// The name after `provider::NAME::`.
    fn name(&self) -> &'static str;

    fn signature(&self) -> Signature;

    /// Runs the function on arguments already decoded by the signature's types: as many as
    /// it has parameters, none unknown, null only where the parameter allows it. The result
    /// must be of the declared type (the SDK checks). Pure: no clock, file or network.
    fn call(&self, args: &[Value]) -> Result<Value, FunctionError>;
}

/// Checks decoded arguments against a signature before the call: the count, and nulls where
/// they are not allowed. The SDK calls this; a provider's `call` may rely on it.
pub fn check_arguments(signature: &Signature, args: &[Value]) -> Result<(), FunctionError> {
    if args.len() != signature.params.len() {
        return Err(FunctionError::call(format!(
            "expected {} argument(s), got {}",
            signature.params.len(),
            args.len()
        )));
    }
    for (i, (param, arg)) in signature.params.iter().zip(args).enumerate() {
        if arg.is_null() && !param.allow_null {
            return Err(FunctionError::argument(
                i,
                format!("argument {:?} must not be null", param.name),
            ));
        }
    }
    Ok(())
}

/// Mistakes in a signature (reported from `GetProviderSchema`, like schema mistakes): a
/// parameter without a name or described by nothing, two parameters of one name.
pub fn signature_problems(signature: &Signature) -> Vec<String> {
    let mut problems = Vec::new();
    if signature.summary.is_empty() {
        problems.push("has no summary".to_string());
    }
    for (i, p) in signature.params.iter().enumerate() {
        if p.name.is_empty() {
            problems.push(format!("parameter {i} has no name"));
        } else if signature.params[..i].iter().any(|q| q.name == p.name) {
            problems.push(format!("parameter {:?} is declared twice", p.name));
        }
        if p.description.is_empty() {
            problems.push(format!("parameter {:?} has no description", p.name));
        }
    }
    problems
}

impl Signature {
    pub(crate) fn to_proto(&self) -> pb::Function {
        pb::Function {
            parameters: self
                .params
                .iter()
                .map(|p| pb::function::Parameter {
                    name: p.name.to_string(),
                    r#type: p.ty.to_json_bytes(),
                    allow_null_value: p.allow_null,
                    // Terraform skips the call and returns an unknown result for unknown
                    // arguments: no function here has to handle them.
                    allow_unknown_values: false,
                    description: p.description.to_string(),
                    description_kind: pb::StringKind::Markdown as i32,
                })
                .collect(),
            variadic_parameter: None,
            r#return: Some(pb::function::Return {
                r#type: self.returns.to_json_bytes(),
            }),
            summary: self.summary.to_string(),
            description: self.description.to_string(),
            description_kind: pb::StringKind::Markdown as i32,
            deprecation_message: String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signature() -> Signature {
        Signature {
            params: vec![
                Param::new("a", Type::String, "first"),
                Param {
                    allow_null: true,
                    ..Param::new("b", Type::Number, "second")
                },
            ],
            returns: Type::Bool,
            summary: "s",
            description: "d",
        }
    }

    #[test]
    fn arguments_are_counted_and_nulls_refused_where_not_allowed() {
        let s = signature();
        assert!(check_arguments(&s, &[Value::from("x"), Value::Null]).is_ok());
        let e = check_arguments(&s, &[Value::Null, Value::Null]).unwrap_err();
        assert_eq!(e.argument, Some(0));
        assert!(
            e.message.contains("\"a\" must not be null"),
            "{}",
            e.message
        );
        assert_eq!(
            check_arguments(&s, &[Value::from("x")])
                .unwrap_err()
                .argument,
            None
        );
    }
}
