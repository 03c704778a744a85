//! The audit trail's records and its chain: each record's link covers its canonical content
//! and the previous link, keyed by `[audit] key` when one is set.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::text::canonical_json;

/// `prev_hash` of the first audit record: there is nothing before it.
pub const AUDIT_GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An audit event to append.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    /// What happened, e.g. `run.created`, `approval.recorded`, `step.succeeded`.
    pub kind: String,
    pub run_id: Option<String>,
    pub actor: Option<String>,
    pub body: Value,
}

/// One link of the audit chain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditRecord {
    /// 1, 2, 3, … without gaps: a gap is a removed record.
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub kind: String,
    pub run_id: Option<String>,
    pub actor: Option<String>,
    pub body: Value,
    pub prev_hash: String,
    /// Hex sha256 of `prev_hash` followed by [`audit_material`] of this record.
    pub hash: String,
}

/// Where and how the audit chain stopped being trustworthy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("the audit trail is broken at record {seq}: {problem}")]
pub struct AuditBreak {
    pub seq: i64,
    pub problem: AuditProblem,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditProblem {
    /// The record's content no longer matches its hash.
    Edited,
    /// The record is not where the sequence says it should be: one or more were removed.
    Missing,
    /// `prev_hash` is not the previous record's hash: the chain was re-linked.
    Relinked,
    /// Fewer records (or a different last hash) than the head row says were appended.
    Truncated { expected: i64, found: i64 },
    /// `[audit] key` is set but the record's link is a plain hash: written without the key.
    Unkeyed,
    /// The record's link is keyed but no `[audit] key` is configured to check it.
    NeedsKey,
}

impl std::fmt::Display for AuditProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuditProblem::Edited => write!(f, "its content does not match its hash (edited)"),
            AuditProblem::Missing => write!(f, "the record is missing (removed)"),
            AuditProblem::Unkeyed => write!(
                f,
                "its link is a plain hash but [audit] key is set: it was written (or re-chained) without the key"
            ),
            AuditProblem::NeedsKey => {
                write!(f, "its link is keyed; set [audit] key to verify it")
            }
            AuditProblem::Relinked => {
                write!(f, "its prev_hash is not the previous record's hash")
            }
            AuditProblem::Truncated { expected, found } => write!(
                f,
                "{expected} records were appended but {found} remain, or the last was replaced (truncated)"
            ),
        }
    }
}

/// The canonical JSON an audit record's hash covers (everything but the hashes).
pub fn audit_material(
    seq: i64,
    at: DateTime<Utc>,
    kind: &str,
    run_id: Option<&str>,
    actor: Option<&str>,
    body: &Value,
) -> String {
    let mut out = String::new();
    canonical_json(
        &json!({
            "seq": seq,
            "at": at.to_rfc3339_opts(SecondsFormat::Micros, true),
            "kind": kind,
            "run_id": run_id,
            "actor": actor,
            "body": body,
        }),
        &mut out,
    );
    out
}

/// The secret of `[audit] key`: with it, each chain link is an HMAC, so someone who can
/// write to the database but does not hold the key cannot rewrite records and re-chain them.
#[derive(Clone)]
pub struct AuditKey(Vec<u8>);

impl AuditKey {
    pub fn new(secret: &[u8]) -> AuditKey {
        AuditKey(secret.to_vec())
    }
}

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditKey(…)")
    }
}

/// What keyed links start with, so a verifier tells them from plain ones.
const KEYED: &str = "hmac-sha256:";

/// `sha256(prev_hash || material)` as hex, or with a key
/// `hmac-sha256:` + hex HMAC-SHA256(key, prev_hash || material).
pub fn audit_hash(prev_hash: &str, material: &str, key: Option<&AuditKey>) -> String {
    match key {
        Some(AuditKey(k)) => format!(
            "{KEYED}{}",
            hex::encode(crate::digest::hmac_sha256(
                k,
                &[prev_hash.as_bytes(), material.as_bytes()]
            ))
        ),
        None => {
            let mut h = Sha256::new();
            h.update(prev_hash.as_bytes());
            h.update(material.as_bytes());
            hex::encode(h.finalize())
        }
    }
}

pub(crate) fn canonical_text(v: &Value) -> String {
    let mut out = String::new();
    canonical_json(v, &mut out);
    out
}

/// Checks audit records page by page; `state` carries the expected next seq and hash.
pub(crate) struct ChainCheck<'k> {
    pub next_seq: i64,
    pub prev_hash: String,
    key: Option<&'k AuditKey>,
}

impl<'k> ChainCheck<'k> {
    pub fn new(key: Option<&'k AuditKey>) -> ChainCheck<'k> {
        ChainCheck {
            next_seq: 1,
            prev_hash: AUDIT_GENESIS.to_string(),
            key,
        }
    }

    pub fn check(&mut self, r: &AuditRecord) -> Result<(), AuditBreak> {
        if r.seq != self.next_seq {
            return Err(AuditBreak {
                seq: self.next_seq,
                problem: AuditProblem::Missing,
            });
        }
        if r.prev_hash != self.prev_hash {
            return Err(AuditBreak {
                seq: r.seq,
                problem: AuditProblem::Relinked,
            });
        }
        let material = audit_material(
            r.seq,
            r.at,
            &r.kind,
            r.run_id.as_deref(),
            r.actor.as_deref(),
            &r.body,
        );
        // With a key, every link must be keyed: a plain link is one written by someone
        // without the key (or before it was set: start a new trail when setting a key).
        match (self.key, r.hash.starts_with(KEYED)) {
            (Some(_), false) => {
                return Err(AuditBreak {
                    seq: r.seq,
                    problem: AuditProblem::Unkeyed,
                });
            }
            (None, true) => {
                return Err(AuditBreak {
                    seq: r.seq,
                    problem: AuditProblem::NeedsKey,
                });
            }
            _ => {}
        }
        if !crate::digest::constant_time_eq(
            audit_hash(&r.prev_hash, &material, self.key).as_bytes(),
            r.hash.as_bytes(),
        ) {
            return Err(AuditBreak {
                seq: r.seq,
                problem: AuditProblem::Edited,
            });
        }
        self.next_seq += 1;
        self.prev_hash = r.hash.clone();
        Ok(())
    }

    /// Compares the end of the chain with the head row written alongside every append.
    pub fn finish(self, head_count: i64, head_hash: &str) -> Result<u64, AuditBreak> {
        let found = self.next_seq - 1;
        if found != head_count || self.prev_hash != head_hash {
            return Err(AuditBreak {
                seq: found + 1,
                problem: AuditProblem::Truncated {
                    expected: head_count,
                    found,
                },
            });
        }
        Ok(found as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::now;

    #[test]
    fn audit_hash_covers_every_field() {
        let at = now();
        let base = audit_material(1, at, "k", Some("r"), Some("a"), &json!({"x": 1}));
        let variants = [
            audit_material(2, at, "k", Some("r"), Some("a"), &json!({"x": 1})),
            audit_material(1, at, "j", Some("r"), Some("a"), &json!({"x": 1})),
            audit_material(1, at, "k", None, Some("a"), &json!({"x": 1})),
            audit_material(1, at, "k", Some("r"), None, &json!({"x": 1})),
            audit_material(1, at, "k", Some("r"), Some("a"), &json!({"x": 2})),
        ];
        for v in variants {
            assert_ne!(
                audit_hash(AUDIT_GENESIS, &base, None),
                audit_hash(AUDIT_GENESIS, &v, None)
            );
        }
        // Key order does not matter: the material is canonical.
        let a = audit_material(1, at, "k", None, None, &json!({"a": 1, "b": 2}));
        let b = audit_material(1, at, "k", None, None, &json!({"b": 2, "a": 1}));
        assert_eq!(a, b);
    }
}
