//! Storage options: which keys are allowed, the one name each setting goes by, how a vault id
//! carries them, and the bounded timeouts and retry budget every remote store gets unless its
//! options say otherwise.
//!
//! A vault's id is its URL with its non-secret options as a query, keys sorted:
//! `s3://bucket/prefix?allow_http=true&endpoint=http://127.0.0.1:9000&region=eu-west-1`. A
//! pair, a drill or `drctl rebuild` that holds only the id opens the vault at the right
//! endpoint and region in any later process, without the configuration that created it.

use crate::error::{Error, ErrorKind, Result};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, CONTROLS};
use std::collections::BTreeMap;
use std::time::Duration;

/// The storage options a vault accepts: none of them is a secret, so they may sit in
/// Terraform state, in a vault id and on a command line. The service prefixes `aws_`,
/// `azure_storage_`, `azure_` and `google_` are accepted in front of each. Everything else
/// (keys, tokens, passwords, the settings that say where credentials are fetched from) comes
/// only from the environment (`AWS_*`, `GOOGLE_*`, `AZURE_*`).
pub const ALLOWED_OPTIONS: &[&str] = &[
    // where the service is
    "region",
    "default_region",
    "endpoint",
    "endpoint_url",
    "base_url",
    "account_name",
    "use_emulator",
    "use_fabric_endpoint",
    "virtual_hosted_style_request",
    "s3_express",
    // how requests are made
    "allow_http",
    "unsigned_payload",
    "checksum_algorithm",
    "skip_signature",
    "conditional_put",
    "disable_tagging",
    "request_payer",
    "server_side_encryption",
    "sse_kms_key_id",
    "sse_bucket_key_enabled",
    "user_agent",
    "http1_only",
    "http2_only",
    "http2_keep_alive_interval",
    "http2_keep_alive_timeout",
    "http2_keep_alive_while_idle",
    "randomize_addresses",
    "proxy_url",
    "proxy_excludes",
    "proxy_ca_certificate",
    // timeouts, retries and connection pools
    "connect_timeout",
    "timeout",
    "read_timeout",
    "max_retries",
    "retry_timeout",
    "pool_idle_timeout",
    "pool_max_idle_per_host",
];

// The two client timeouts are object_store's own defaults (a test checks they still are):
// set through its builders' `from_env`, so settings from the environment (AWS_ALLOW_HTTP,
// AWS_PROXY_URL, …) are kept; options override both.

/// Default time to set up a connection: a dark endpoint that drops packets fails in seconds.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default time for one request, from connecting to the last byte: a 5 MiB part at 170 KiB/s.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Default retries of one request (server errors, throttling, broken connections).
pub const DEFAULT_MAX_RETRIES: usize = 10;
/// Default time after a request's first attempt past which it is not retried: the whole
/// budget of one request is at most this plus one request timeout.
pub const DEFAULT_RETRY_TIMEOUT: Duration = Duration::from_secs(15);

/// Checks storage option keys against [`ALLOWED_OPTIONS`], and that a `proxy_url` or an
/// endpoint holds no password. The one check the provider block, every resource and data
/// source, vault ids and `drctl -o` share.
///
/// # Errors
/// `InvalidInput` naming the first key refused and saying where credentials come from.
pub fn check_options(options: &BTreeMap<String, String>) -> Result<()> {
    for (key, value) in options {
        let base = strip_service_prefix(&key.to_ascii_lowercase());
        if !ALLOWED_OPTIONS.contains(&base.as_str()) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "storage option {key:?} is not allowed: options are stored in plain text \
                     (Terraform state, vault ids, command lines), so only non-secret settings \
                     are accepted"
                ),
            )
            .hint(format!(
                "credentials come from the environment (AWS_*, GOOGLE_*, AZURE_*); the options \
                 allowed are: {}",
                ALLOWED_OPTIONS.join(", ")
            )));
        }
        // A URL can carry credentials of its own (`http://user:secret@host`, or a token as
        // the user name): refused like any other credential.
        if ["proxy_url", "endpoint", "endpoint_url", "base_url"].contains(&base.as_str()) {
            // A query can carry a token too (an Azure SAS `?sig=…`); endpoints never need one.
            let has_credentials = url::Url::parse(value)
                .map(|u| !u.username().is_empty() || u.password().is_some() || u.query().is_some())
                .unwrap_or(value.contains('@') || value.contains('?'));
            if has_credentials {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!("storage option {key:?} may hold credentials (a user name, a password or a query in the URL)"),
                )
                .hint("give the URL without them; credentials come from the environment (AWS_*, GOOGLE_*, AZURE_*, HTTPS_PROXY)"));
            }
        }
        if base == "max_retries" && value.parse::<usize>().is_err() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("storage option {key:?} is {value:?}, not a whole number"),
            )
            .hint("write the number of retries, e.g. \"3\" (0 turns retries off)"));
        }
        if base == "retry_timeout" && humantime::parse_duration(value).is_err() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("storage option {key:?} is {value:?}, not a duration"),
            )
            .hint("write a duration such as \"15s\" or \"2m\""));
        }
    }
    Ok(())
}

fn strip_service_prefix(lower: &str) -> String {
    ["azure_storage_", "aws_", "azure_", "google_"]
        .iter()
        .find_map(|p| lower.strip_prefix(p))
        .unwrap_or(lower)
        .to_string()
}

/// The one name a setting goes by: lower case, without a service prefix, `endpoint` for its
/// aliases. Two spellings of one setting then merge (the more specific layer wins) instead of
/// both reaching the service, where the alphabetically later one would win.
pub fn canonical_key(key: &str) -> String {
    let base = strip_service_prefix(&key.to_ascii_lowercase());
    match base.as_str() {
        "endpoint_url" => "endpoint".to_string(),
        _ => base,
    }
}

/// Options under their canonical names.
///
/// # Errors
/// `InvalidInput` when two spellings of one setting give it different values.
pub fn canonical(options: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (key, value) in options {
        let name = canonical_key(key);
        if let Some(earlier) = out.get(&name) {
            if earlier != value {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!("storage options set {name:?} twice, to {earlier:?} and to {value:?} (as {key:?})"),
                )
                .hint("give each setting once"));
            }
        }
        out.insert(name, value.clone());
    }
    Ok(out)
}

/// Whether a vault URL names an object store (whose URLs may carry options), not a local path.
pub fn is_cloud_url(url: &str) -> bool {
    ["s3://", "gs://", "az://", "azure://", "abfs://"]
        .iter()
        .any(|s| url.starts_with(s))
}

/// Splits a vault URL into the URL and the options its query carries, under their canonical
/// names. Local paths carry none: a `?` there is part of a file name.
///
/// # Errors
/// `InvalidInput` for a query part that is not `key=value`, a key outside the allowlist, or
/// one setting given twice with different values.
pub fn split_vault_url(url: &str) -> Result<(String, BTreeMap<String, String>)> {
    let Some((base, query)) = url.split_once('?').filter(|_| is_cloud_url(url)) else {
        return Ok((url.to_string(), BTreeMap::new()));
    };
    let mut raw = BTreeMap::new();
    for part in query.split('&').filter(|p| !p.is_empty()) {
        let Some((key, value)) = part.split_once('=') else {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "a part of the vault URL's query is not KEY=VALUE (in {})",
                    base_of(url)
                ),
            )
            .hint("write storage options as s3://BUCKET/PREFIX?region=eu-west-1&endpoint=…"));
        };
        let decode = |text: &str| percent_decode_str(text).decode_utf8_lossy().into_owned();
        let (key, value) = (decode(key), decode(value));
        let single = BTreeMap::from([(key.clone(), value.clone())]);
        check_options(&single)?;
        let name = canonical_key(&key);
        if raw.get(&name).is_some_and(|earlier| earlier != &value) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "the vault URL's query sets {name:?} twice with different values (in {})",
                    base_of(url)
                ),
            )
            .hint("give each storage option once"));
        }
        raw.insert(name, value);
    }
    Ok((base.to_string(), raw))
}

/// A vault URL without its query, for messages: the query may hold what is refused there.
fn base_of(url: &str) -> &str {
    url.split_once('?').map_or(url, |(base, _)| base)
}

/// The options a vault is opened with: `defaults` (the provider's, or none) under the ones its
/// URL carries, under `explicit` ones (a resource's `storage_options`, `drctl -o`).
///
/// # Errors
/// `InvalidInput` when the URL and `explicit` give one setting different values: which one was
/// meant cannot be known, and guessing could write to the wrong store.
pub fn layer(
    defaults: &BTreeMap<String, String>,
    from_url: &BTreeMap<String, String>,
    explicit: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>> {
    let explicit = canonical(explicit)?;
    for (key, value) in &explicit {
        if let Some(in_url) = from_url.get(key).filter(|v| *v != value) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "the vault URL sets storage option {key:?} to {in_url:?}, the storage options to {value:?}"
                ),
            )
            .hint("give the option in one place, or the same value in both"));
        }
    }
    let mut merged = canonical(defaults)?;
    merged.extend(from_url.iter().map(|(k, v)| (k.clone(), v.clone())));
    merged.extend(explicit);
    Ok(merged)
}

/// Characters escaped in a vault id's query values: those that would end or split a value
/// (`&`, `=`, `#`, `%`, `+`, space) and the ones URLs never hold raw. `:` and `/` stay, so an
/// endpoint reads as itself.
const QUERY_VALUE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'&')
    .add(b'+')
    .add(b'=')
    .add(b'<')
    .add(b'>')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'|')
    .add(b'\\')
    .add(b'^')
    .add(b'[')
    .add(b']');

/// A vault's id: its URL, then its options (canonical names, sorted) as a query.
pub fn vault_id(url: &str, options: &BTreeMap<String, String>) -> String {
    if options.is_empty() || !is_cloud_url(url) {
        return url.to_string();
    }
    let query: Vec<String> = options
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                utf8_percent_encode(k, QUERY_VALUE),
                utf8_percent_encode(v, QUERY_VALUE)
            )
        })
        .collect();
    format!("{url}?{}", query.join("&"))
}

/// The retry policy the options give, with the options object_store itself does not know
/// (`max_retries`, `retry_timeout`) taken out of them.
pub(crate) fn retry_policy(options: &mut BTreeMap<String, String>) -> object_store::RetryConfig {
    let max_retries = options
        .remove("max_retries")
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_MAX_RETRIES);
    let retry_timeout = options
        .remove("retry_timeout")
        .and_then(|v| humantime::parse_duration(&v).ok())
        .unwrap_or(DEFAULT_RETRY_TIMEOUT);
    object_store::RetryConfig {
        max_retries,
        retry_timeout,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn an_id_round_trips_through_split() {
        let options = map(&[
            ("endpoint", "http://127.0.0.1:9000/a b&c=d#e+f%g"),
            ("region", "eu-west-1"),
            ("allow_http", "true"),
        ]);
        let id = vault_id("s3://bucket/team/primary", &options);
        assert_eq!(
            id,
            "s3://bucket/team/primary?allow_http=true&endpoint=http://127.0.0.1:9000/a%20b%26c%3Dd%23e%2Bf%25g&region=eu-west-1"
        );
        let (url, back) = split_vault_url(&id).unwrap();
        assert_eq!(url, "s3://bucket/team/primary");
        assert_eq!(back, options);
    }

    #[test]
    fn local_paths_and_optionless_urls_are_their_own_id() {
        assert_eq!(
            vault_id("file:///srv/v", &map(&[("region", "x")])),
            "file:///srv/v"
        );
        assert_eq!(vault_id("s3://b/p", &BTreeMap::new()), "s3://b/p");
        let (url, options) = split_vault_url("vaults/odd?name").unwrap();
        assert_eq!((url.as_str(), options.len()), ("vaults/odd?name", 0));
    }

    #[test]
    fn spellings_of_one_setting_merge_under_one_name() {
        let merged = layer(
            &map(&[
                ("aws_endpoint_url", "http://provider"),
                ("AWS_REGION", "us-east-1"),
            ]),
            &map(&[("region", "eu-west-1")]),
            &map(&[("endpoint", "http://resource")]),
        )
        .unwrap();
        assert_eq!(
            merged,
            map(&[("endpoint", "http://resource"), ("region", "eu-west-1")])
        );
    }

    #[test]
    fn a_url_and_explicit_options_that_disagree_are_refused_naming_the_key() {
        let e = layer(
            &BTreeMap::new(),
            &map(&[("region", "eu-west-1")]),
            &map(&[("aws_region", "us-east-1")]),
        )
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidInput);
        assert!(e.message.contains("\"region\""), "{}", e.message);
        let e = canonical(&map(&[
            ("endpoint", "http://a"),
            ("endpoint_url", "http://b"),
        ]))
        .unwrap_err();
        assert!(e.message.contains("twice"), "{}", e.message);
    }

    #[test]
    fn a_query_refuses_secrets_and_malformed_parts() {
        for bad in [
            "s3://b/p?secret_access_key=x",
            "s3://b/p?region",
            "s3://b/p?region=a&aws_region=b",
            "s3://b/p?endpoint=http://user:pw@host",
            "s3://b/p?endpoint=https://acct.blob.core.windows.net/?sig=secret",
            "s3://b/p?endpoint=http://user:pw@host&region",
            "s3://b/p?max_retries=many",
            "s3://b/p?retry_timeout=soon",
        ] {
            let e = split_vault_url(bad).unwrap_err();
            assert_eq!(e.kind, ErrorKind::InvalidInput, "{bad}");
            assert!(
                !e.to_string().contains("pw@") && !e.to_string().contains("sig="),
                "{e}"
            );
        }
    }

    #[test]
    fn the_documented_client_timeouts_are_object_stores_defaults() {
        use object_store::{ClientConfigKey, ClientOptions};
        let defaults = ClientOptions::default();
        let shown = |d: Duration| humantime::format_duration(d).to_string();
        assert_eq!(
            defaults.get_config_value(&ClientConfigKey::Timeout),
            Some(shown(DEFAULT_REQUEST_TIMEOUT))
        );
        assert_eq!(
            defaults.get_config_value(&ClientConfigKey::ConnectTimeout),
            Some(shown(DEFAULT_CONNECT_TIMEOUT))
        );
    }

    #[test]
    fn the_retry_budget_has_bounded_defaults_and_takes_its_options_out() {
        let mut options = map(&[
            ("max_retries", "2"),
            ("retry_timeout", "3s"),
            ("region", "x"),
        ]);
        let policy = retry_policy(&mut options);
        assert_eq!(
            (policy.max_retries, policy.retry_timeout),
            (2, Duration::from_secs(3))
        );
        assert_eq!(options, map(&[("region", "x")]));
        let policy = retry_policy(&mut BTreeMap::new());
        assert_eq!(policy.max_retries, DEFAULT_MAX_RETRIES);
        assert_eq!(policy.retry_timeout, DEFAULT_RETRY_TIMEOUT);
    }
}
