//! Where messages go: `.eml` files under `<data dir>/mail/` (the default, so the
//! embedded mode needs no mail server and a newcomer can open what was sent), or an SMTP
//! server (`KETTLE_SMTP_URL`).

use std::path::PathBuf;

use crate::config::Config;

pub enum Transport {
    /// One `.eml` file per message in this folder.
    Files(PathBuf),
    Smtp(lettre::AsyncSmtpTransport<lettre::Tokio1Executor>),
}

impl Transport {
    pub fn from_config(config: &Config) -> anyhow::Result<Transport> {
        use secrecy::ExposeSecret;
        match &config.smtp_url {
            None => Ok(Transport::Files(config.data_dir.join("mail"))),
            Some(url) => Ok(Transport::Smtp(
                lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::from_url(url.expose_secret())
                    .map_err(|e| anyhow::anyhow!("KETTLE_SMTP_URL is not usable: {e}"))?
                    .build(),
            )),
        }
    }
}
