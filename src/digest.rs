//! HMAC-SHA256 (RFC 2104) and a constant-time compare, for ingestion signatures and the keyed
//! audit chain. Written on `sha2` rather than the `hmac` crate: the version matching our
//! `sha2` would be a second copy next to the one `sqlx-postgres` already brings, and the RFC
//! 4231 vectors in `server::signature` pin the construction.

use sha2::{Digest, Sha256};

const BLOCK: usize = 64;

/// HMAC-SHA256(key, message), RFC 2104.
pub fn hmac_sha256(key: &[u8], message: &[&[u8]]) -> [u8; 32] {
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(block.map(|b| b ^ 0x36));
    for part in message {
        inner.update(part);
    }
    let mut outer = Sha256::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// Compares without stopping at the first difference, so the time taken does not tell an
/// attacker how many leading bytes of a guess were right.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}
