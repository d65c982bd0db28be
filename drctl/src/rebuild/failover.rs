//! Edits of the restored configuration: setting a region pair's `active` to the side being
//! rebuilt from, and finding the state backend. The files are parsed with hcl-edit, which
//! keeps comments and layout, so the only change a reviewer sees in the diff is the one line.

use hcl_edit::expr::{Expression, TraversalOperator};
use hcl_edit::structure::{Attribute, Body};
use hcl_edit::{Decor, Decorate as _, Ident};
use std::collections::{BTreeMap, BTreeSet};
use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// The file drctl writes when `active` is set from a variable.
pub const TFVARS: &str = "drctl-rebuild.auto.tfvars";

/// How one pair's `active` is changed.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "how", rename_all = "snake_case")]
pub enum Edit {
    /// `active` was a literal (or absent) in `file`: the file is rewritten.
    Literal { file: String },
    /// `active = var.NAME`: the variable is set in drctl-rebuild.auto.tfvars.
    Variable { variable: String },
    /// Nothing to change: the configuration already names this side.
    AlreadySet { file: String },
}

/// The configuration files (name → text) of a root module.
pub type Files = BTreeMap<String, String>;

/// Sets `active = "<side>"` on `resource "dr_region_pair" "<name>"`. Returns the edit and,
/// for a literal, the file's new text; `Err` says why drctl cannot do it (the user must).
pub fn set_active(files: &Files, name: &str, side: &str) -> Result<(Edit, Option<String>), String> {
    for (file, text) in files.iter().filter(|(f, _)| f.ends_with(".tf")) {
        // hcl-edit writes `\n` line ends: a Windows file is edited as `\n` and given its
        // `\r\n` back.
        let crlf = text.contains("\r\n");
        let render = |body: &Body| {
            let written = body.to_string();
            if crlf {
                written.replace('\n', "\r\n")
            } else {
                written
            }
        };
        let mut body = parse_in_time(file, text.replace("\r\n", "\n"), PARSE_DEADLINE)
            .map_err(String::from)?;
        // The edit must be the only change: a file hcl-edit does not write back exactly as
        // read (the fuzzer found raw newlines and NULs inside strings, which Terraform
        // refuses anyway) is left to the user rather than rewritten.
        let faithful = render(&body) == *text;
        let mut found = None;
        for block in body.get_blocks_mut("resource") {
            if !block.has_exact_labels(&["dr_region_pair", name]) {
                continue;
            }
            found = Some(match block.body.get_attribute_mut("active") {
                None => {
                    let mut attr = Attribute::new(Ident::new("active"), Expression::from(side));
                    attr.decorate(Decor::new(
                        "\n  # Set by `drctl rebuild`: the pair fails over to the side it was rebuilt from.\n  ",
                        "",
                    ));
                    block.body.push(attr);
                    Edit::Literal { file: file.clone() }
                }
                Some(mut attr) => match attr.value_mut() {
                    Expression::String(s) if s.as_str() == side => {
                        Edit::AlreadySet { file: file.clone() }
                    }
                    value @ Expression::String(_) => {
                        let decor = value.decor().clone();
                        *value = Expression::from(side).decorated(decor);
                        Edit::Literal { file: file.clone() }
                    }
                    Expression::Traversal(t) => match (&t.expr, t.operators.as_slice()) {
                        (Expression::Variable(v), [op]) if v.as_str() == "var" => match &**op {
                            TraversalOperator::GetAttr(variable) => Edit::Variable {
                                variable: variable.as_str().to_string(),
                            },
                            _ => return Err(not_editable(file, name)),
                        },
                        _ => return Err(not_editable(file, name)),
                    },
                    _ => return Err(not_editable(file, name)),
                },
            });
            break;
        }
        if let Some(edit) = found {
            if matches!(edit, Edit::Literal { .. }) && !faithful {
                return Err(format!(
                    "{file} cannot be rewritten without changing more than `active` of dr_region_pair.{name}; set it to the rebuilt side yourself"
                ));
            }
            let text = matches!(edit, Edit::Literal { .. }).then(|| render(&body));
            return Ok((edit, text));
        }
    }
    Err(format!(
        "no `resource \"dr_region_pair\" \"{name}\"` block in the restored .tf files"
    ))
}

/// How long one file may take to parse. hcl-edit's expression parser backtracks, and some
/// text costs it exponential time: each level of objects keyed by expressions (`a % {k + k %
/// {…`) about doubles its work. 322 bytes the fuzzer made took over 10 s on a debug build;
/// `d = ` and 28 times `b%{Y+Y%{f.i` (312 bytes) took 8 minutes on a release build, and each
/// two levels more take four times as long, up to the parser's depth limit. Real
/// configurations parse in milliseconds, so a file that takes seconds is left to the user
/// and the rebuild goes on.
const PARSE_DEADLINE: Duration = Duration::from_secs(2);

/// Why a file was not parsed: it is not HCL, or the parser could not be waited for (what the
/// file declares is then unknown).
enum Unparsed {
    Invalid(String),
    NotFinished(String),
}

impl From<Unparsed> for String {
    fn from(unparsed: Unparsed) -> String {
        match unparsed {
            Unparsed::Invalid(why) | Unparsed::NotFinished(why) => why,
        }
    }
}

/// What the parse worker answers: the parse, or the payload of the parser's panic.
type Parsed = std::thread::Result<Result<Body, hcl_edit::parser::Error>>;

/// A text to parse, and where to answer.
type ParseJob = (String, mpsc::SyncSender<Parsed>);

/// The idle thread that parses configuration files, kept between parses: a thread per parse
/// cost the fuzzer two thirds of its speed. A worker that takes too long is let go to finish
/// alone, and the next parse starts another.
static PARSE_WORKER: Mutex<Option<mpsc::Sender<ParseJob>>> = Mutex::new(None);

fn start_parse_worker() -> std::io::Result<mpsc::Sender<ParseJob>> {
    let (jobs, queue) = mpsc::channel::<ParseJob>();
    // The main thread's stack size: hcl-edit recurses once per level of nesting.
    std::thread::Builder::new()
        .name("hcl-parse".into())
        .stack_size(8 << 20)
        .spawn(move || {
            for (text, answer) in queue {
                let parsed = std::panic::catch_unwind(AssertUnwindSafe(|| text.parse::<Body>()));
                let _ = answer.send(parsed);
            }
        })?;
    Ok(jobs)
}

/// Parses `text` (the configuration file `file`) as HCL on the parse worker, giving up after
/// `deadline`. A parse given up on runs on until it ends or drctl exits (a thread cannot be
/// stopped), but nothing waits for it, and the same text is not parsed again: a rebuild
/// parses each file once for the backend and once for each region pair.
fn parse_in_time(file: &str, text: String, deadline: Duration) -> Result<Body, Unparsed> {
    static GIVEN_UP: Mutex<BTreeSet<[u8; 32]>> = Mutex::new(BTreeSet::new());
    let too_slow = || {
        Unparsed::NotFinished(format!(
            "{file} did not parse within {} s (its expressions nest in a way the HCL parser drctl uses takes exponential time over); set it yourself",
            deadline.as_secs_f32()
        ))
    };
    let digest = *blake3::hash(text.as_bytes()).as_bytes();
    if GIVEN_UP.lock().is_ok_and(|g| g.contains(&digest)) {
        return Err(too_slow());
    }
    // The worker is taken for this parse alone: no parse waits behind another.
    let idle = PARSE_WORKER
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    let worker = match idle {
        Some(worker) => worker,
        None => start_parse_worker().map_err(|e| {
            Unparsed::NotFinished(format!(
                "{file} could not be parsed: no thread to parse it on ({e})"
            ))
        })?,
    };
    let (answer, answered) = mpsc::sync_channel(1);
    if worker.send((text, answer)).is_err() {
        return Err(Unparsed::NotFinished(format!(
            "{file} could not be parsed: the parser stopped"
        )));
    }
    let outcome = answered.recv_timeout(deadline);
    if outcome.is_ok() {
        // Back for the next parse (or, when another is there already, let go: it ends).
        PARSE_WORKER
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert(worker);
    }
    match outcome {
        Ok(Ok(parsed)) => {
            parsed.map_err(|e| Unparsed::Invalid(format!("{file} does not parse as HCL: {e}")))
        }
        // A bug in the parser, which the caller (and the fuzzer) must see.
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        // The worker is busy with this text for who knows how long: it is let go, and it
        // ends when the parse does.
        Err(RecvTimeoutError::Timeout) => {
            GIVEN_UP
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(digest);
            Err(too_slow())
        }
        Err(RecvTimeoutError::Disconnected) => Err(Unparsed::NotFinished(format!(
            "{file} could not be parsed: the parser stopped"
        ))),
    }
}

fn not_editable(file: &str, name: &str) -> String {
    format!(
        "`active` of dr_region_pair.{name} in {file} is an expression drctl cannot change; set it to the rebuilt side yourself"
    )
}

/// The `*.auto.tfvars` text setting each variable to a side.
pub fn tfvars(variables: &[(String, String)]) -> String {
    let mut text = String::from(
        "# Written by `drctl rebuild`: the region pairs fail over to the side they were rebuilt from.\n",
    );
    for (variable, side) in variables {
        text.push_str(&format!("{variable} = \"{side}\"\n"));
    }
    text
}

/// The type of the `backend` in the `terraform` block, if the module declares one. `Err`
/// names a file that did not parse in time, which may be the one declaring it. (A file that
/// does not parse at all declares nothing Terraform would use.)
pub fn backend(files: &Files) -> Result<Option<String>, String> {
    for (file, text) in files.iter().filter(|(f, _)| f.ends_with(".tf")) {
        let body = match parse_in_time(file, text.clone(), PARSE_DEADLINE) {
            Ok(body) => body,
            Err(Unparsed::NotFinished(why)) => return Err(why),
            Err(Unparsed::Invalid(_)) => continue,
        };
        let declared = body.get_blocks("terraform").find_map(|t| {
            t.body
                .get_blocks("backend")
                .chain(t.body.get_blocks("cloud"))
                .next()
                .map(|b| {
                    b.labels
                        .first()
                        .map_or("cloud".to_string(), |l| l.as_str().to_string())
                })
        });
        if declared.is_some() {
            return Ok(declared);
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAIR: &str = r#"# the pair
resource "dr_region_pair" "p" {
  name               = "p" # keep me
  primary_vault_id   = dr_backup_vault.a.id
  secondary_vault_id = dr_backup_vault.b.id
  rpo                = "1h"
  rto                = "15m"
}

resource "dr_drill" "d" {
  name = "d"
}
"#;

    fn files(text: &str) -> Files {
        [("main.tf".to_string(), text.to_string())].into()
    }

    #[test]
    fn an_absent_active_is_added_and_nothing_else_changes() {
        let (edit, text) = set_active(&files(PAIR), "p", "secondary").unwrap();
        assert!(matches!(edit, Edit::Literal { .. }));
        let text = text.unwrap();
        let expected = PAIR.replace(
            "  rto                = \"15m\"\n}",
            "  rto                = \"15m\"\n\n  # Set by `drctl rebuild`: the pair fails over to the side it was rebuilt from.\n  active = \"secondary\"\n}",
        );
        assert_eq!(text, expected);
    }

    #[test]
    fn a_literal_active_is_replaced_in_place() {
        let with = PAIR.replace(
            "  rto                = \"15m\"\n",
            "  rto                = \"15m\"\n  active             = \"primary\" # failover here\n",
        );
        let (_, text) = set_active(&files(&with), "p", "secondary").unwrap();
        assert_eq!(
            text.unwrap(),
            with.replace("\"primary\" # failover", "\"secondary\" # failover")
        );
        let (edit, text) = set_active(&files(&with), "p", "primary").unwrap();
        assert!(matches!(edit, Edit::AlreadySet { .. }) && text.is_none());
    }

    #[test]
    fn a_variable_is_set_through_tfvars_and_other_expressions_are_refused() {
        let with = PAIR.replace("  rpo ", "  active = var.side\n  rpo ");
        let (edit, text) = set_active(&files(&with), "p", "secondary").unwrap();
        assert!(matches!(edit, Edit::Variable { ref variable } if variable == "side"));
        assert!(text.is_none());
        assert_eq!(
            tfvars(&[("side".into(), "secondary".into())])
                .lines()
                .last(),
            Some("side = \"secondary\"")
        );
        let cond = PAIR.replace("  rpo ", "  active = var.x ? \"a\" : \"b\"\n  rpo ");
        assert!(set_active(&files(&cond), "p", "secondary")
            .unwrap_err()
            .contains("cannot change"));
        assert!(set_active(&files(PAIR), "other", "secondary")
            .unwrap_err()
            .contains("no `resource"));
    }

    /// What the user wrote elsewhere in the file comes back byte for byte: template escapes
    /// (`$${`, `%%{`), heredocs, control characters in strings, comments.
    #[test]
    fn the_rest_of_the_file_is_kept_byte_for_byte() {
        let other = concat!(
            "resource \"terraform_data\" \"hook\" {\n",
            "  input = \"echo $${HOME} %%{if} \\u0001 tab\\t\" # literal\n",
            "  script = <<-EOT\n    echo \"${var.x}\" $${Y}\n  EOT\n",
            "}\n",
        );
        let with = format!("{other}{PAIR}");
        let (_, text) = set_active(&files(&with), "p", "secondary").unwrap();
        let text = text.unwrap();
        assert!(text.starts_with(other), "{text}");
        hcl::parse(&text).unwrap();
    }

    /// Found by fuzzing (`fuzz/regressions/drctl_failover_hcl/`): a string holding a raw
    /// newline and NULs came back from hcl-edit escaped, so the rewrite changed more than
    /// `active`. Such a file is left to the user.
    #[test]
    fn a_file_that_would_change_elsewhere_is_not_rewritten() {
        let with = PAIR.replace("  rpo ", "  description = \"two\nlines\u{0}\"\n  rpo ");
        let err = set_active(&files(&with), "p", "secondary").unwrap_err();
        assert!(err.contains("set it to the rebuilt side yourself"), "{err}");
    }

    #[test]
    fn a_windows_file_keeps_its_line_ends() {
        let with = PAIR.replace(
            "  rto                = \"15m\"\n",
            "  rto                = \"15m\"\n  active             = \"primary\"\n",
        );
        let crlf = with.replace('\n', "\r\n");
        let (_, text) = set_active(&files(&crlf), "p", "secondary").unwrap();
        assert_eq!(
            text.unwrap(),
            crlf.replace("\"primary\"\r\n", "\"secondary\"\r\n")
        );
    }

    /// Text the parser would take hours over is given up on, with the reason, in the time
    /// allowed.
    #[test]
    fn a_file_the_parser_would_take_hours_over_is_given_up_on() {
        // Seconds on a release build, minutes on the tests' debug one.
        let nested = format!("d = {}", "b%{Y+Y%{f.i".repeat(22));
        let err = String::from(
            parse_in_time("deep.tf", nested, Duration::from_millis(200))
                .err()
                .unwrap(),
        );
        assert!(
            err.starts_with("deep.tf did not parse within 0.2 s"),
            "{err}"
        );
        let quick = parse_in_time("main.tf", PAIR.to_string(), PARSE_DEADLINE)
            .ok()
            .unwrap();
        assert_eq!(quick.to_string(), PAIR);
    }

    #[test]
    fn the_backend_is_found() {
        assert_eq!(backend(&files(PAIR)), Ok(None));
        let s3 = "terraform {\n  backend \"s3\" {\n    bucket = \"b\"\n  }\n}\n";
        assert_eq!(backend(&files(s3)), Ok(Some("s3".to_string())));
    }
}
