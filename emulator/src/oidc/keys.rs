//! The RSA keys that sign id tokens, and the JWKS that publishes them.
//!
//! Two fixed 2048-bit test keys with self-signed certificates live in `emulator/keys/` (they are
//! public, so nothing may ever trust them): generating RSA keys at every start would cost each
//! test an emulator start of a noticeable fraction of a second, and a second key lets a test
//! rotate keys the way Entra does, so a client's "refetch the JWKS on an unknown `kid`" path runs.

use std::sync::Mutex;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use sha1::Digest as _;

const PEMS: [&str; 2] = [
    include_str!("../../keys/oidc-signing-1.pem"),
    include_str!("../../keys/oidc-signing-2.pem"),
];

/// One signing key and what the JWKS says about it.
struct SigningKey {
    /// `kid` and `x5t` (Entra's v2 keys use the certificate's SHA-1 thumbprint for both).
    kid: String,
    /// The certificate, standard base64 DER (`x5c`).
    x5c: String,
    /// RSA modulus and exponent, base64url.
    n: String,
    e: String,
    key: EncodingKey,
}

/// The text between a PEM block's BEGIN and END lines, joined.
fn pem_block(text: &str, label: &str) -> String {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    text.lines()
        .map(str::trim)
        .skip_while(|l| *l != begin)
        .skip(1)
        .take_while(|l| *l != end)
        .collect()
}

impl SigningKey {
    fn load(pem: &str) -> SigningKey {
        let private = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            pem_block(pem, "PRIVATE KEY")
        );
        let key = EncodingKey::from_rsa_pem(private.as_bytes()).expect("the bundled key parses");
        let der = STANDARD
            .decode(pem_block(pem, "CERTIFICATE"))
            .expect("the bundled certificate is base64");
        let kid = URL_SAFE_NO_PAD.encode(sha1::Sha1::digest(&der));
        let jwk = Jwk::from_encoding_key(&key, Algorithm::RS256).expect("an RSA key has a JWK");
        let AlgorithmParameters::RSA(rsa) = jwk.algorithm else {
            unreachable!("an RSA key gives RSA parameters")
        };
        SigningKey {
            kid,
            x5c: STANDARD.encode(&der),
            n: rsa.n,
            e: rsa.e,
            key,
        }
    }
}

/// The signing keys: which one signs, and which ones the JWKS lists.
pub struct Keys {
    keys: [SigningKey; 2],
    /// (signing key index, published key indexes).
    current: Mutex<(usize, Vec<usize>)>,
}

impl Keys {
    pub fn new() -> Keys {
        Keys {
            keys: PEMS.map(SigningKey::load),
            current: Mutex::new((0, vec![0])),
        }
    }

    /// Signs with the second key from now on and publishes both, as Entra does during a
    /// rollover: tokens carry a `kid` a client that cached the old JWKS has not seen.
    pub fn rotate(&self) {
        *self.current.lock().expect("keys lock") = (1, vec![0, 1]);
    }

    /// The JWKS document of `GET /{tenant}/discovery/v2.0/keys`.
    pub fn jwks(&self, issuer: &str) -> Value {
        let published = self.current.lock().expect("keys lock").1.clone();
        let keys: Vec<Value> = published
            .into_iter()
            .map(|i| {
                let k = &self.keys[i];
                json!({
                    "kty": "RSA",
                    "use": "sig",
                    "kid": k.kid,
                    "x5t": k.kid,
                    "n": k.n,
                    "e": k.e,
                    "x5c": [k.x5c],
                    "issuer": issuer,
                })
            })
            .collect();
        json!({ "keys": keys })
    }

    /// An RS256 JWT over `claims` with the signing key's `kid` (or `kid`, when a test asks for
    /// a key nobody published).
    pub fn sign(&self, claims: &Value, kid: Option<&str>) -> String {
        let index = self.current.lock().expect("keys lock").0;
        let k = &self.keys[index];
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(kid.unwrap_or(&k.kid).to_owned());
        header.x5t = Some(k.kid.clone());
        jsonwebtoken::encode(&header, claims, &k.key).expect("RS256 signing cannot fail")
    }
}

impl Default for Keys {
    fn default() -> Self {
        Keys::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_tokens_verify_against_the_published_key() {
        let keys = Keys::new();
        let token = keys.sign(&json!({"sub": "x", "exp": i64::MAX / 2}), None);
        let jwks: jsonwebtoken::jwk::JwkSet =
            serde_json::from_value(keys.jwks("https://issuer")).unwrap();
        assert_eq!(jwks.keys.len(), 1);
        let header = jsonwebtoken::decode_header(&token).unwrap();
        let jwk = jwks.find(header.kid.as_deref().unwrap()).unwrap();
        let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
        let mut validation = jsonwebtoken::Validation::new(Algorithm::RS256);
        validation.required_spec_claims.clear();
        assert!(jsonwebtoken::decode::<Value>(&token, &key, &validation).is_ok());
        keys.rotate();
        let rotated = jsonwebtoken::decode_header(keys.sign(&json!({}), None)).unwrap();
        assert_ne!(rotated.kid, header.kid, "a rotation signs with another key");
    }
}
