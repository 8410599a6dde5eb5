//! Cross-site request forgery protection for the site's forms: double-submit tokens
//! bound to the session.
//!
//! Every visitor gets a random secret in an `HttpOnly`, `SameSite=Lax` cookie; every
//! form carries a token derived from that secret *and the session cookie*, and a form
//! post is refused unless the token matches both. Another site can make a browser post
//! a form, but cannot read the cookie to compute the token. Binding to the session
//! closes the gap plain double-submit leaves: someone able to plant a CSRF cookie (from
//! a neighbouring subdomain, say) still cannot forge a token for the victim's session,
//! which they do not know; and a token seen before signing in is useless after. The
//! cookie is set even for visitors who are not signed in, because the sign-in and
//! registration forms need protecting too (login CSRF). Behind https the cookie is
//! `__Host-` prefixed, like the session's.
//!
//! The JSON API needs no token: it only accepts `application/json`, which a cross-site
//! form cannot send, and its cookie is `SameSite=Lax`.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use rand::RngCore;
use sha2::{Digest, Sha256};

pub const FIELD: &str = "csrf_token";

pub fn cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-kettle_csrf"
    } else {
        "kettle_csrf"
    }
}

/// The token forms carry: a hash of the browser's secret and its session cookie (empty
/// when signed out).
pub fn form_token(secret: &str, session: Option<&str>) -> String {
    let mut hash = Sha256::new();
    hash.update(b"kettle csrf v2\0");
    hash.update(secret.as_bytes());
    hash.update(b"\0");
    hash.update(session.unwrap_or("").as_bytes());
    URL_SAFE_NO_PAD.encode(hash.finalize())
}

pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A cookie value we could have issued: anything else is replaced.
pub fn is_well_formed(token: &str) -> bool {
    token.len() == 43 && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Whether `submitted` is the token for this secret and session, compared in constant
/// time so the comparison leaks nothing about it.
pub fn matches(secret: &str, session: Option<&str>, submitted: &str) -> bool {
    let expected = form_token(secret, session);
    is_well_formed(secret)
        && expected.len() == submitted.len()
        && expected.bytes().zip(submitted.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

pub fn cookie(secret: &str, secure: bool) -> String {
    let name = cookie_name(secure);
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={secret}; Path=/; HttpOnly; SameSite=Lax{secure}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_bound_to_the_secret_and_the_session() {
        let secret = new_token();
        assert!(is_well_formed(&secret));
        let signed_out = form_token(&secret, None);
        assert!(matches(&secret, None, &signed_out));
        assert!(!matches(&secret, None, &secret), "the raw secret is not the token");
        assert!(!matches(&new_token(), None, &signed_out));
        assert!(!matches(&secret, Some("kses_a"), &signed_out), "a signed-out token is useless once signed in");
        let signed_in = form_token(&secret, Some("kses_a"));
        assert!(matches(&secret, Some("kses_a"), &signed_in));
        assert!(!matches(&secret, Some("kses_b"), &signed_in), "nor in another session");
        assert!(!matches(&secret, None, ""));
        assert!(!matches("short", None, &form_token("short", None)));
        assert!(cookie(&secret, true).starts_with("__Host-kettle_csrf="));
    }
}
