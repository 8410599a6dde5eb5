//! Logging: structured `tracing` events, as text for people or JSON for log pipelines
//! (`KETTLE_LOG_FORMAT=json`), filtered by `KETTLE_LOG` (default `info`).

use anyhow::anyhow;
use tracing_subscriber::EnvFilter;

use crate::config::{Config, LogFormat};

pub fn init(config: &Config) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(&config.log_filter).map_err(|_| {
        anyhow!("KETTLE_LOG must be a log filter such as info or kettle=debug, not {:?}", config.log_filter)
    })?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // try_init: a second initialisation (tests, embedding) keeps the first subscriber.
    let _ = match config.log_format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).with_span_list(false).try_init(),
    };
    Ok(())
}
