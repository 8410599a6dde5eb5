//! Cross-site request forgery protection for the site's forms: double-submit tokens.
//!
//! Every visitor gets a random token in an `HttpOnly`, `SameSite=Lax` cookie; every form
//! carries the same token in a hidden field, and a form post is refused unless the two
//! match. Another site can make a browser post a form, but cannot read the cookie to put
//! the matching value in it. The cookie is set even for visitors who are not signed in,
//! because the sign-in and registration forms need protecting too (login CSRF).
//!
//! The JSON API needs no token: it only accepts `application/json`, which a cross-site
//! form cannot send, and its cookie is `SameSite=Lax`.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use rand::RngCore;

pub const COOKIE: &str = "kettle_csrf";
pub const FIELD: &str = "csrf_token";

pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A cookie value we could have issued: anything else is replaced.
pub fn is_well_formed(token: &str) -> bool {
    token.len() == 43 && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Compares in constant time, so the comparison leaks nothing about the cookie.
pub fn matches(cookie: &str, submitted: &str) -> bool {
    is_well_formed(cookie)
        && cookie.len() == submitted.len()
        && cookie.bytes().zip(submitted.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

pub fn cookie(token: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax{secure}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_only_themselves() {
        let token = new_token();
        assert!(is_well_formed(&token));
        assert!(matches(&token, &token));
        assert!(!matches(&token, &new_token()));
        assert!(!matches(&token, ""));
        assert!(!matches("", ""));
        assert!(!matches("short", "short"));
    }
}
