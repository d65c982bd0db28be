//! The vault's key layout: every kind of object a vault owns, how its key is spelled and the
//! label its sealed bytes are bound to. This is the only place object keys and labels are
//! written out (FORMAT.md, "Layout"); everything else asks for a key here, and everything that
//! lists or deletes parses what it found here first.
//!
//! Why it matters: a vault may sit in a directory or bucket prefix that also holds other
//! things. Whatever does not parse as one of the vault's own objects is never read as one and
//! never deleted; it is reported as foreign and left where it is.

/// Where the vault's configuration lives; its presence is what makes a vault.
pub const CONFIG: &str = "config";
/// The staging name of a local write of the config that has not been renamed into place
/// (`config#<n>`, see `storage`): left by an interrupted init.
pub fn is_staged_config(name: &str) -> bool {
    name.strip_prefix(CONFIG)
        .and_then(|rest| rest.strip_prefix('#'))
        .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
}

/// Key files: the master key wrapped by one passphrase each.
pub const KEYS: &str = "keys";
/// Pack files, fanned out by the first two hex digits of their id.
pub const DATA: &str = "data";
pub const INDEX: &str = "index";
pub const SNAPSHOTS: &str = "snapshots";
pub const SUMMARIES: &str = "summaries";
pub const RECORDS: &str = "records";
pub const LOCKS: &str = "locks";

/// The directories of a vault's objects, in the order a destroy empties them (locks last).
pub const DIRS: [&str; 7] = [KEYS, DATA, INDEX, SNAPSHOTS, SUMMARIES, RECORDS, LOCKS];

/// What kind of object a key names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Config,
    Key,
    Pack,
    Index,
    Snapshot,
    Summary,
    Record,
    Lock,
}

impl Kind {
    /// The directory its objects are listed under ("" for the config).
    pub fn dir(self) -> &'static str {
        match self {
            Kind::Config => "",
            Kind::Key => KEYS,
            Kind::Pack => DATA,
            Kind::Index => INDEX,
            Kind::Snapshot => SNAPSHOTS,
            Kind::Summary => SUMMARIES,
            Kind::Record => RECORDS,
            Kind::Lock => LOCKS,
        }
    }
}

/// One of the vault's own objects, parsed from its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object<'a> {
    pub kind: Kind,
    /// The id (or, for a record, its name; empty for the config).
    pub name: &'a str,
}

pub fn key_file(id: &str) -> String {
    format!("{KEYS}/{id}")
}

/// `data/<first two hex digits>/<id>`. Never panics: an id shorter than two bytes (or not
/// ASCII) is only ever one that [`parse`] would refuse, and it is spelled whole.
pub fn pack(id: &str) -> String {
    let fan = id.get(..2).unwrap_or(id);
    format!("{DATA}/{fan}/{id}")
}

pub fn index(id: &str) -> String {
    format!("{INDEX}/{id}")
}

pub fn snapshot(id: &str) -> String {
    format!("{SNAPSHOTS}/{id}")
}

pub fn summary(snapshot_id: &str) -> String {
    format!("{SUMMARIES}/{snapshot_id}")
}

pub fn record(name: &str) -> String {
    format!("{RECORDS}/{name}")
}

pub fn lock(id: &str) -> String {
    format!("{LOCKS}/{id}")
}

/// Whether `id` is an object id: 32 bytes in lower-case hex (FORMAT.md).
pub fn is_id(id: &str) -> bool {
    id.len() == 64
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Whether `name` is a record name: `/`-separated parts of letters, digits and `-_.:@`, none
/// of them empty, `.` or `..`.
pub fn is_record_name(name: &str) -> bool {
    !name.is_empty()
        && name.split('/').all(|part| {
            !part.is_empty()
                && part != ".."
                && part != "."
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:@".contains(&b))
        })
}

/// What a key (relative to the vault root) names, or `None` when it is not one of the vault's
/// own objects: those are foreign, and the vault neither reads nor deletes them.
pub fn parse(key: &str) -> Option<Object<'_>> {
    if key == CONFIG {
        return Some(Object {
            kind: Kind::Config,
            name: "",
        });
    }
    let (dir, rest) = key.split_once('/')?;
    fn id_of(kind: Kind, name: &str) -> Option<Object<'_>> {
        is_id(name).then_some(Object { kind, name })
    }
    match dir {
        KEYS => id_of(Kind::Key, rest),
        INDEX => id_of(Kind::Index, rest),
        SNAPSHOTS => id_of(Kind::Snapshot, rest),
        SUMMARIES => id_of(Kind::Summary, rest),
        LOCKS => id_of(Kind::Lock, rest),
        DATA => {
            let (fan, id) = rest.split_once('/')?;
            (is_id(id) && id.starts_with(fan) && fan.len() == 2).then_some(Object {
                kind: Kind::Pack,
                name: id,
            })
        }
        RECORDS => is_record_name(rest).then_some(Object {
            kind: Kind::Record,
            name: rest,
        }),
        _ => None,
    }
}

/// The associated data each kind of sealed object is bound to (FORMAT.md, "Encryption"): an
/// object copied to another key, or a blob to another id, does not open.
pub mod label {
    pub fn index(id: &str) -> String {
        format!("index:{id}")
    }

    pub fn snapshot(id: &str) -> String {
        format!("snapshot:{id}")
    }

    pub fn summary(id: &str) -> String {
        format!("summary:{id}")
    }

    pub fn record(name: &str) -> String {
        format!("record:{name}")
    }

    /// A blob, by the hex of its id.
    pub fn blob(hex: &str) -> String {
        format!("blob:{hex}")
    }

    /// A pack's header.
    pub fn pack(id: &str) -> String {
        format!("pack:{id}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn every_kind_of_key_parses_back_to_its_kind_and_name() {
        let cases = [
            (CONFIG.to_string(), Kind::Config, ""),
            (key_file(ID), Kind::Key, ID),
            (pack(ID), Kind::Pack, ID),
            (index(ID), Kind::Index, ID),
            (snapshot(ID), Kind::Snapshot, ID),
            (summary(ID), Kind::Summary, ID),
            (
                record("drills/nightly/2026-11-01T00:00:00Z"),
                Kind::Record,
                "drills/nightly/2026-11-01T00:00:00Z",
            ),
            (lock(ID), Kind::Lock, ID),
        ];
        for (key, kind, name) in &cases {
            let parsed = parse(key).unwrap_or_else(|| panic!("{key} does not parse"));
            assert_eq!((parsed.kind, parsed.name), (*kind, *name), "{key}");
            assert!(key.starts_with(kind.dir()), "{key}");
        }
    }

    #[test]
    fn names_outside_the_layout_are_foreign() {
        let upper = ID.to_uppercase();
        for key in [
            "important.txt",
            "config.bak",
            "notes/config",
            "snapshots/readme.md",
            "snapshots/",
            &format!("snapshots/{ID}/x"),
            &format!("snapshots/{upper}"),
            &format!("data/{ID}"),
            &format!("data/ff/{ID}"),
            &format!("data/01/{ID}#3"),
            "data/é/x",
            "records/../escape",
            "records/a//b",
            "records/",
            &format!("keys/{}", &ID[..63]),
        ] {
            assert_eq!(parse(key), None, "{key:?} must be foreign");
        }
    }

    proptest! {
        /// Any text at all: parsing never panics, and a pack key is spelled without panicking
        /// even from an id that is not one (a multi-byte first character included).
        #[test]
        fn parsing_and_spelling_never_panic(key in "\\PC{0,80}", id in "\\PC{0,4}") {
            let _ = parse(&key);
            let spelled = pack(&id);
            prop_assert!(spelled.ends_with(&id));
        }
    }
}
