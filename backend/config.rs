//! Configuration: environment variables over an optional `kettle.toml`, over defaults.
//!
//! Every setting has a default that works on a laptop, so `kettle` with no configuration
//! at all serves on 127.0.0.1:8080 with SQLite in `./kettle-data`. A value that cannot
//! be used stops start-up with one sentence that names the variable and what was wrong.
//!
//! Database and Redis URLs may carry passwords, so they are held as [`SecretString`] and
//! shown only through [`redact_url`]; `Debug` on [`Config`] never prints a secret.

use std::{collections::HashMap, fmt, net::SocketAddr, path::PathBuf, str::FromStr};

use anyhow::{anyhow, bail, Context};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::limits::{client, client::Cidr, Rules};

#[derive(Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: SecretString,
    pub redis_url: Option<SecretString>,
    pub public_url: url::Url,
    /// True when `public_url` was not configured but derived from `listen`; the server
    /// then replaces it with the address it actually bound (port 0 picks one).
    pub public_url_is_default: bool,
    pub log_format: LogFormat,
    pub log_filter: String,
    /// Whether anyone may create an account (by registering, or by signing in with a
    /// provider for the first time); `KETTLE_REGISTRATION=closed` turns it off.
    pub registration_open: bool,
    /// OAuth2 sign-in providers, by name (lower case), in name order.
    pub oauth_providers: Vec<OAuthProvider>,
    /// Proxies whose `X-Forwarded-For` / `Forwarded` headers name the client
    /// (`KETTLE_TRUSTED_PROXIES`); nobody's, by default.
    pub trusted_proxies: Vec<Cidr>,
    /// Every rate limit, with `KETTLE_RATE_LIMITS` overrides of the defaults.
    pub rate_limits: Rules,
    /// Put before every key and channel Kettle uses in Redis (`KETTLE_REDIS_PREFIX`), so
    /// that one Redis can serve several sites.
    pub redis_prefix: String,
    /// Where mail goes: an SMTP server (`KETTLE_SMTP_URL`, which may hold a password), or,
    /// unset, `.eml` files under `<data dir>/mail/`.
    pub smtp_url: Option<SecretString>,
    /// The sender of every message (`KETTLE_MAIL_FROM`): an address, optionally with a
    /// name (`Kettle <kettle@example.org>`). By default `Kettle <noreply@<public host>>`.
    pub mail_from: String,
    /// How long mail about a notification waits (`KETTLE_MAIL_DELAY`, in seconds), so
    /// that a member who is on the site reads it there and gets no mail.
    pub mail_delay: std::time::Duration,
    /// How many bytes each member's images may take (`KETTLE_IMAGE_QUOTA_MB`, in
    /// megabytes of 1,000,000 bytes; 100 by default).
    pub image_quota_bytes: i64,
}

/// An OAuth2 provider members can sign in with, from `KETTLE_OAUTH_<NAME>_…`.
#[derive(Clone)]
pub struct OAuthProvider {
    /// Lower case; the routes are `/auth/<name>/…`.
    pub name: String,
    /// What the sign-in button says: "Sign in with <label>".
    pub label: String,
    pub client_id: String,
    pub client_secret: SecretString,
    pub auth_url: url::Url,
    pub token_url: url::Url,
    pub userinfo_url: url::Url,
    pub scopes: Vec<String>,
    /// Where the user-info JSON keeps each value (a top-level field name).
    pub subject_field: String,
    pub email_field: String,
    /// `None` when the provider never says whether an email is verified: its emails then
    /// never link to an existing account by themselves.
    pub email_verified_field: Option<String>,
    pub name_field: String,
}

impl fmt::Debug for OAuthProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthProvider")
            .field("name", &self.name)
            .field("client_id", &self.client_id)
            .field("auth_url", &self.auth_url.as_str())
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("database_url", &redact_url(self.database_url.expose_secret()))
            .field("redis_url", &self.redis_url.as_ref().map(|u| redact_url(u.expose_secret())))
            .field("public_url", &self.public_url.as_str())
            .field("log_format", &self.log_format)
            .field("log_filter", &self.log_filter)
            .field("registration_open", &self.registration_open)
            .field("oauth_providers", &self.oauth_providers)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("rate_limits", &self.rate_limits)
            .field("redis_prefix", &self.redis_prefix)
            .field("smtp_url", &self.smtp_url.as_ref().map(|u| redact_url(u.expose_secret())))
            .field("mail_from", &self.mail_from)
            .field("mail_delay", &self.mail_delay)
            .field("image_quota_bytes", &self.image_quota_bytes)
            .finish()
    }
}

/// The shape of `kettle.toml`: the same settings as the environment, lower-cased
/// without the `KETTLE_` prefix (`listen = "0.0.0.0:8080"`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    data_dir: Option<String>,
    database_url: Option<String>,
    redis_url: Option<String>,
    public_url: Option<String>,
    log_format: Option<String>,
    log: Option<String>,
    registration: Option<String>,
    trusted_proxies: Option<String>,
    rate_limits: Option<String>,
    redis_prefix: Option<String>,
    smtp_url: Option<String>,
    mail_from: Option<String>,
    mail_delay: Option<String>,
    image_quota_mb: Option<String>,
}

impl Config {
    /// Reads `KETTLE_CONFIG` (or `./kettle.toml` when it exists), then the environment.
    pub fn load() -> anyhow::Result<Config> {
        let file = match std::env::var("KETTLE_CONFIG") {
            Ok(path) => Some(PathBuf::from(path)),
            Err(_) => Some(PathBuf::from("kettle.toml")).filter(|p| p.exists()),
        };
        let file_config = match file {
            Some(path) => {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("could not read the configuration file {}", path.display()))?;
                toml::from_str::<FileConfig>(&text)
                    .map_err(|e| anyhow!("the configuration file {} is not valid: {}", path.display(), e.message()))?
            }
            None => FileConfig::default(),
        };
        Self::from_sources(file_config, std::env::vars().collect())
    }

    /// Builds a configuration from explicit variables (and no file), as tests and tools do.
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> anyhow::Result<Config> {
        Self::from_sources(FileConfig::default(), vars.into_iter().collect())
    }

    fn from_sources(file: FileConfig, vars: HashMap<String, String>) -> anyhow::Result<Config> {
        let env = |name: &str| vars.get(name).cloned();
        let get = |var: &str, from_file: &Option<String>| -> Option<String> {
            env(var).filter(|v| !v.trim().is_empty()).or_else(|| from_file.clone())
        };

        let listen_text = get("KETTLE_LISTEN", &file.listen).unwrap_or_else(|| "127.0.0.1:8080".into());
        let listen = SocketAddr::from_str(listen_text.trim()).map_err(|_| {
            anyhow!("KETTLE_LISTEN must be an address and port such as 127.0.0.1:8080, not {listen_text:?}")
        })?;

        let data_dir = PathBuf::from(get("KETTLE_DATA_DIR", &file.data_dir).unwrap_or_else(|| "kettle-data".into()));

        let database_url = match get("KETTLE_DATABASE_URL", &file.database_url) {
            Some(url) => {
                check_database_url(&url)?;
                url
            }
            None => format!("sqlite://{}", data_dir.join("kettle.db").display()),
        };

        let redis_url = match get("KETTLE_REDIS_URL", &file.redis_url) {
            Some(url) => {
                let parsed = url::Url::parse(&url).ok().filter(|u| matches!(u.scheme(), "redis" | "rediss"));
                if parsed.is_none() {
                    bail!("KETTLE_REDIS_URL must be a redis:// URL, not {}", redact_url(&url));
                }
                Some(SecretString::from(url))
            }
            None => None,
        };

        let configured_public_url = get("KETTLE_PUBLIC_URL", &file.public_url);
        let public_url_is_default = configured_public_url.is_none();
        let public_url_text = configured_public_url.unwrap_or_else(|| format!("http://{listen}"));
        let public_url = url::Url::parse(&public_url_text)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| {
                anyhow!("KETTLE_PUBLIC_URL must be an http or https URL such as https://kettle.example.org, not {public_url_text:?}")
            })?;

        let log_format = match get("KETTLE_LOG_FORMAT", &file.log_format).as_deref().map(str::trim) {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => bail!("KETTLE_LOG_FORMAT must be text or json, not {other:?}"),
        };
        let log_filter = get("KETTLE_LOG", &file.log).unwrap_or_else(|| "info".into());
        let registration_open = match get("KETTLE_REGISTRATION", &file.registration).as_deref().map(str::trim) {
            None | Some("open") => true,
            Some("closed") => false,
            Some(other) => bail!("KETTLE_REGISTRATION must be open or closed, not {other:?}"),
        };
        let oauth_providers = oauth_providers(&vars)?;
        let trusted_proxies =
            client::parse_ranges(&get("KETTLE_TRUSTED_PROXIES", &file.trusted_proxies).unwrap_or_default())
                .map_err(|e| anyhow!("KETTLE_TRUSTED_PROXIES must list address ranges such as 10.0.0.0/8: {e}"))?;
        let rate_limits = Rules::parse(&get("KETTLE_RATE_LIMITS", &file.rate_limits).unwrap_or_default())
            .map_err(|e| anyhow!("KETTLE_RATE_LIMITS must be name=count/seconds, …: {e}"))?;
        let redis_prefix = get("KETTLE_REDIS_PREFIX", &file.redis_prefix).unwrap_or_else(|| "kettle".into());
        if !redis_prefix.chars().all(|c| c.is_ascii_alphanumeric() || "_-.:".contains(c)) || redis_prefix.len() > 100 {
            bail!("KETTLE_REDIS_PREFIX must be letters, digits and _-.: only, at most 100, not {redis_prefix:?}");
        }

        let smtp_url = match get("KETTLE_SMTP_URL", &file.smtp_url) {
            Some(url) => {
                let parsed = url::Url::parse(url.trim()).ok().filter(|u| matches!(u.scheme(), "smtp" | "smtps"));
                if parsed.is_none_or(|u| u.host_str().is_none_or(str::is_empty)) {
                    bail!(
                        "KETTLE_SMTP_URL must be an smtp:// or smtps:// URL such as smtp://user:password@mail.example.org:587?tls=required, not {}",
                        redact_url(&url)
                    );
                }
                Some(SecretString::from(url.trim().to_string()))
            }
            None => None,
        };
        let mail_from = match get("KETTLE_MAIL_FROM", &file.mail_from) {
            Some(from) => {
                let from = from.trim().to_string();
                if from.parse::<lettre::message::Mailbox>().is_err() || from.contains(['\r', '\n']) {
                    bail!("KETTLE_MAIL_FROM must be an address such as Kettle <kettle@example.org>, not {from:?}");
                }
                from
            }
            None => format!("Kettle <noreply@{}>", public_url.host_str().unwrap_or("localhost")),
        };
        let mail_delay = match get("KETTLE_MAIL_DELAY", &file.mail_delay) {
            Some(text) => match text.trim().parse::<u64>() {
                Ok(seconds) if seconds <= 24 * 3600 => std::time::Duration::from_secs(seconds),
                _ => bail!("KETTLE_MAIL_DELAY must be a number of seconds from 0 to 86400, not {text:?}"),
            },
            None => std::time::Duration::from_secs(10 * 60),
        };
        let image_quota_bytes = match get("KETTLE_IMAGE_QUOTA_MB", &file.image_quota_mb) {
            Some(text) => match text.trim().parse::<i64>() {
                Ok(megabytes) if (0..=1_000_000).contains(&megabytes) => megabytes * 1_000_000,
                _ => bail!("KETTLE_IMAGE_QUOTA_MB must be a whole number of megabytes from 0 to 1000000, not {text:?}"),
            },
            None => 100 * 1_000_000,
        };

        Ok(Config {
            listen,
            data_dir,
            database_url: SecretString::from(database_url),
            redis_url,
            public_url,
            public_url_is_default,
            log_format,
            log_filter,
            registration_open,
            oauth_providers,
            trusted_proxies,
            rate_limits,
            redis_prefix,
            smtp_url,
            mail_from,
            mail_delay,
            image_quota_bytes,
        })
    }

    pub fn is_https(&self) -> bool {
        self.public_url.scheme() == "https"
    }
}

/// What may follow `KETTLE_OAUTH_<NAME>_`.
pub(crate) const OAUTH_SETTINGS: [&str; 13] = [
    "CLIENT_ID",
    "CLIENT_SECRET",
    "AUTH_URL",
    "TOKEN_URL",
    "USERINFO_URL",
    "SCOPES",
    "LABEL",
    "PRESET",
    "TENANT",
    "SUBJECT_FIELD",
    "EMAIL_FIELD",
    "EMAIL_VERIFIED_FIELD",
    "NAME_FIELD",
];

/// The providers named by `KETTLE_OAUTH_<NAME>_CLIENT_ID` (or `…_PRESET`) variables, each
/// complete or an error naming what is missing.
fn oauth_providers(vars: &HashMap<String, String>) -> anyhow::Result<Vec<OAuthProvider>> {
    let mut names: Vec<String> = vars
        .keys()
        .filter_map(|key| key.strip_prefix("KETTLE_OAUTH_"))
        .filter_map(|rest| OAUTH_SETTINGS.iter().find_map(|s| rest.strip_suffix(&format!("_{s}"))))
        .filter(|name| !name.is_empty())
        .map(str::to_string)
        .collect();
    names.sort();
    names.dedup();
    names.into_iter().map(|name| oauth_provider(&name, vars)).collect()
}

fn oauth_provider(name: &str, vars: &HashMap<String, String>) -> anyhow::Result<OAuthProvider> {
    let var = |setting: &str| format!("KETTLE_OAUTH_{name}_{setting}");
    let get = |setting: &str| vars.get(&var(setting)).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    if !name.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()) {
        bail!("KETTLE_OAUTH_{name}_…: a provider's name must be letters and digits only");
    }
    let preset = match get("PRESET").as_deref() {
        None => None,
        Some(preset @ ("github" | "google" | "microsoft")) => Some(preset.to_string()),
        Some(other) => bail!("{} must be github, google or microsoft, not {other:?}", var("PRESET")),
    };
    // What a preset fills in: auth, token and user-info URLs, scopes, subject, email,
    // verified-email and name fields, label.
    let tenant = get("TENANT").unwrap_or_else(|| "common".into());
    let defaults: [Option<String>; 8] = match preset.as_deref() {
        Some("github") => [
            Some("https://github.com/login/oauth/authorize".into()),
            Some("https://github.com/login/oauth/access_token".into()),
            Some("https://api.github.com/user".into()),
            Some("read:user user:email".into()),
            Some("id".into()),
            Some("email".into()),
            // GitHub's profile email is whatever the user made public: never verified.
            Some(String::new()),
            Some("GitHub".into()),
        ],
        Some("google") => [
            Some("https://accounts.google.com/o/oauth2/v2/auth".into()),
            Some("https://oauth2.googleapis.com/token".into()),
            Some("https://openidconnect.googleapis.com/v1/userinfo".into()),
            None,
            None,
            None,
            None,
            Some("Google".into()),
        ],
        Some(_) => [
            Some(format!("https://login.microsoftonline.com/{tenant}/oauth2/v2.0/authorize")),
            Some(format!("https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token")),
            Some("https://graph.microsoft.com/oidc/userinfo".into()),
            None,
            None,
            None,
            // Entra ID does not say whether an email is verified.
            Some(String::new()),
            Some("Microsoft".into()),
        ],
        None => Default::default(),
    };
    let [auth, token, userinfo, scopes, subject, email, verified, label] = defaults;
    let required = |setting: &str, default: Option<String>| {
        get(setting).or(default).ok_or_else(|| {
            anyhow!("{} is missing: OAuth provider {name} needs it (or a {} preset)", var(setting), var("PRESET"))
        })
    };
    let url_of = |setting: &str, default: Option<String>| -> anyhow::Result<url::Url> {
        let text = required(setting, default)?;
        url::Url::parse(&text)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| anyhow!("{} must be an http or https URL, not {text:?}", var(setting)))
    };
    let lower = name.to_ascii_lowercase();
    let mut default_label = lower.clone();
    default_label[..1].make_ascii_uppercase();
    Ok(OAuthProvider {
        client_id: required("CLIENT_ID", None)?,
        client_secret: SecretString::from(required("CLIENT_SECRET", None)?),
        auth_url: url_of("AUTH_URL", auth)?,
        token_url: url_of("TOKEN_URL", token)?,
        userinfo_url: url_of("USERINFO_URL", userinfo)?,
        scopes: get("SCOPES")
            .or(scopes)
            .unwrap_or_else(|| "openid email profile".into())
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        subject_field: get("SUBJECT_FIELD").or(subject).unwrap_or_else(|| "sub".into()),
        email_field: get("EMAIL_FIELD").or(email).unwrap_or_else(|| "email".into()),
        // Set but empty means "never verified", so it is read without the blank filter.
        email_verified_field: match vars.get(&var("EMAIL_VERIFIED_FIELD")).map(|v| v.trim().to_string()).or(verified) {
            Some(field) if field.is_empty() => None,
            Some(field) => Some(field),
            None => Some("email_verified".into()),
        },
        name_field: get("NAME_FIELD").unwrap_or_else(|| "name".into()),
        label: get("LABEL").or(label).unwrap_or(default_label),
        name: lower,
    })
}

fn check_database_url(url: &str) -> anyhow::Result<()> {
    let scheme = url.split_once(':').map(|(s, _)| s).unwrap_or("");
    match scheme {
        "sqlite" => Ok(()),
        "postgres" | "postgresql" if url::Url::parse(url).is_ok() => Ok(()),
        _ => bail!("KETTLE_DATABASE_URL must start with sqlite:// or postgres://, not {}", redact_url(url)),
    }
}

/// A URL fit for logs and error messages: any password is replaced by `***`.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        // `user:password@host` without a scheme parses as scheme `user` and path
        // `password@host`: with no authority to redact, show only the "scheme".
        Ok(parsed) if parsed.cannot_be_a_base() => format!("{}:…", parsed.scheme()),
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            parsed.to_string()
        }
        // Not a URL we understand: show only the scheme, in case the rest is secret.
        Err(_) => match url.split_once("://") {
            Some((scheme, _)) => format!("{scheme}://…"),
            None => "(unparseable URL)".to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> anyhow::Result<Config> {
        let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_vars(vars)
    }

    #[test]
    fn defaults_work_without_configuration() {
        let c = config(&[]).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.database_url.expose_secret(), "sqlite://kettle-data/kettle.db");
        assert!(c.redis_url.is_none());
        assert_eq!(c.public_url.as_str(), "http://127.0.0.1:8080/");
    }

    #[test]
    fn bad_values_name_the_variable() {
        let err = config(&[("KETTLE_LISTEN", "nonsense")]).unwrap_err().to_string();
        assert!(err.contains("KETTLE_LISTEN"), "{err}");
        let err = config(&[("KETTLE_DATABASE_URL", "mysql://root:hunter2@db/x")]).unwrap_err().to_string();
        assert!(err.contains("KETTLE_DATABASE_URL") && !err.contains("hunter2"), "{err}");
        let err = config(&[("KETTLE_PUBLIC_URL", "ftp://x")]).unwrap_err().to_string();
        assert!(err.contains("KETTLE_PUBLIC_URL"), "{err}");
        let err = config(&[("KETTLE_REDIS_URL", "http://x")]).unwrap_err().to_string();
        assert!(err.contains("KETTLE_REDIS_URL"), "{err}");
        let err = config(&[("KETTLE_TRUSTED_PROXIES", "10.0.0.0/99")]).unwrap_err().to_string();
        assert!(err.contains("KETTLE_TRUSTED_PROXIES"), "{err}");
        let err = config(&[("KETTLE_RATE_LIMITS", "sign_in_account=lots/60")]).unwrap_err().to_string();
        assert!(err.contains("KETTLE_RATE_LIMITS"), "{err}");
    }

    #[test]
    fn debug_output_hides_passwords() {
        let c = config(&[
            ("KETTLE_DATABASE_URL", "postgres://kettle:s3cret-pw@db.internal/kettle"),
            ("KETTLE_REDIS_URL", "redis://:r3dis-pw@cache:6379"),
        ])
        .unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cret-pw") && !shown.contains("r3dis-pw"), "{shown}");
        assert!(shown.contains("db.internal"), "{shown}");
    }
}
