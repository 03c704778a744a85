//! HMAC-SHA256 signatures on ingestion (`[server.hmac]`), on `crate::digest` (whose RFC 4231
//! vectors are pinned below).

use axum::http::HeaderMap;
use secrecy::ExposeSecret;

use super::error::ApiError;
use super::settings::HmacSettings;
pub use crate::digest::{constant_time_eq, hmac_sha256};

/// Checks the timestamp and signature headers of an ingestion request against its body.
/// `now` is unix seconds (passed in so tests control the clock).
pub fn verify(
    settings: &HmacSettings,
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
) -> Result<(), ApiError> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let timestamp = header(&settings.timestamp_header).ok_or_else(|| {
        ApiError::BadSignature(format!(
            "missing {} header (unix seconds of signing)",
            settings.timestamp_header
        ))
    })?;
    let signed_at: i64 = timestamp.parse().map_err(|_| {
        ApiError::BadSignature(format!(
            "{} must be unix seconds",
            settings.timestamp_header
        ))
    })?;
    if now.abs_diff(signed_at) > settings.window_secs {
        return Err(ApiError::BadSignature(format!(
            "the signature timestamp is more than {} seconds from the server's clock; re-sign the request (or check the sender's clock)",
            settings.window_secs
        )));
    }
    let given = header(&settings.header)
        .and_then(|v| v.strip_prefix("sha256="))
        .and_then(|hex_digest| hex::decode(hex_digest).ok())
        .ok_or_else(|| {
            ApiError::BadSignature(format!(
                "missing or malformed {} header (expected sha256=<hex>)",
                settings.header
            ))
        })?;
    let expected = hmac_sha256(
        settings.secret.expose_secret().as_bytes(),
        &[timestamp.as_bytes(), b".", body],
    );
    if constant_time_eq(&expected, &given) {
        Ok(())
    } else {
        Err(ApiError::BadSignature(
            "the signature does not match the body".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex32(b: [u8; 32]) -> String {
        hex::encode(b)
    }

    /// RFC 4231 test cases 1, 2 and 6 (short key, short key with text, key longer than a block).
    #[test]
    fn matches_rfc_4231() {
        assert_eq!(
            hex32(hmac_sha256(&[0x0b; 20], &[b"Hi There"])),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        assert_eq!(
            hex32(hmac_sha256(
                b"Jefe",
                &[b"what do ya want ", b"for nothing?"]
            )),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex32(hmac_sha256(
                &[0xaa; 131],
                &[b"Test Using Larger Than Block-Size Key - Hash Key First"]
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn constant_time_eq_compares_whole_slices() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
