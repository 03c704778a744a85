//! `riposte token new`: mints an API token. The token is printed once and never stored;
//! the configuration keeps only its sha256, so reading `riposte.toml` grants nothing.

use std::process::ExitCode;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde_json::json;

use super::Format;
use riposte::config::Role;

/// A fresh token: 32 random bytes (256 bits, beyond guessing), base64url so it survives a
/// URL query (`?token=`) and a header unescaped.
pub fn fresh_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Token names end up in runs, approvals and the audit trail, and in the printed TOML: a
/// plain spelling keeps all of those unambiguous without quoting rules.
pub fn parse_name(name: &str) -> Result<String, String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@'));
    if ok {
        Ok(name.to_string())
    } else {
        Err("use 1 to 64 letters, digits, `-`, `_`, `.` or `@`".into())
    }
}

pub fn new(name: &str, role: Role, format: Format) -> anyhow::Result<ExitCode> {
    let token = fresh_token();
    let sha256 = riposte::server::token_digest(&token);
    match format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "name": name, "role": role.as_str(), "token": token, "sha256": sha256,
            }))?
        ),
        Format::Table => {
            println!("token (shown once; give it to `{name}` and keep it secret):");
            println!("  {token}");
            println!();
            println!("add to riposte.toml:");
            println!("[[server.tokens]]");
            println!("name = \"{name}\"");
            println!("role = \"{role}\"");
            println!("sha256 = \"{sha256}\"");
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_32_random_bytes_in_base64url() {
        let a = fresh_token();
        let b = fresh_token();
        assert_ne!(a, b);
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).unwrap().len(), 32);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
    }

    #[test]
    fn names_are_plain() {
        assert!(parse_name("lacework-webhook").is_ok());
        assert!(parse_name("alice@contoso.com").is_ok());
        assert!(parse_name("").is_err());
        assert!(parse_name("a\"b").is_err());
        assert!(parse_name("a b").is_err());
    }
}
