//! The one error type for everything that is *not* an expected, per-field failure.
//!
//! Which error to use where:
//! - A form-shaped failure the user can fix (a field too long, an email already taken, a
//!   version conflict) is a [`UserError`] in the mutation's payload, not
//!   an `AppError`: the operation worked, and its answer tells the user what to change.
//! - Everything else — not signed in, not allowed, no such thing, too many attempts, a
//!   malformed argument, or a fault of ours — is an `AppError`. Each variant carries a
//!   stable `extensions.code` for GraphQL clients.
//!
//! `Internal` never shows its cause to the client: it is logged inside the request's span
//! (so with its request id), and the client sees a short apology; the HTTP layer adds the
//! request id to that error so a member can quote it.
//!
//! `AppError` deliberately does not implement `Display`: async-graphql converts anything
//! displayable into an error by its text alone, which would drop the code. Without
//! `Display`, `?` goes through our own conversion below.

use std::{sync::Arc, time::Duration};

use async_graphql::{Enum, ErrorExtensions, SimpleObject};

#[derive(Debug, Clone)]
pub enum AppError {
    Unauthenticated,
    Forbidden,
    NotFound(&'static str),
    BadUserInput(String),
    RateLimited { retry_after: Duration },
    Internal(Arc<anyhow::Error>),
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn code(&self) -> &'static str {
        match self {
            AppError::Unauthenticated => "UNAUTHENTICATED",
            AppError::Forbidden => "FORBIDDEN",
            AppError::NotFound(_) => "NOT_FOUND",
            AppError::BadUserInput(_) => "BAD_USER_INPUT",
            AppError::RateLimited { .. } => "RATE_LIMITED",
            AppError::Internal(_) => "INTERNAL",
        }
    }

    /// What the client is told.
    pub fn message(&self) -> String {
        match self {
            AppError::Unauthenticated => "You need to sign in to do that.".into(),
            AppError::Forbidden => "You do not have permission to do that.".into(),
            AppError::NotFound(what) => format!("{what} was not found."),
            AppError::BadUserInput(message) => message.clone(),
            AppError::RateLimited { retry_after } => {
                format!("Too many attempts. Try again in {} seconds.", retry_after.as_secs().max(1))
            }
            AppError::Internal(_) => INTERNAL_MESSAGE.into(),
        }
    }

    pub fn bad_input(message: impl Into<String>) -> Self {
        AppError::BadUserInput(message.into())
    }

    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        AppError::Internal(Arc::new(err.into()))
    }

    /// Logs the cause of an internal error (inside the current request's span, so with
    /// its request id); the client only ever sees [`INTERNAL_MESSAGE`].
    pub fn log_if_internal(&self) {
        if let AppError::Internal(cause) = self {
            tracing::error!(error = %format!("{cause:#}"), "internal error");
        }
    }

    /// For the command line: the message a user would see, or the internal cause in full.
    pub fn into_anyhow(self) -> anyhow::Error {
        match self {
            AppError::Internal(cause) => anyhow::anyhow!("{cause:#}"),
            other => anyhow::anyhow!(other.message()),
        }
    }
}

pub const INTERNAL_MESSAGE: &str = "Sorry, something went wrong on our side. It has been logged.";

impl From<anyhow::Error> for AppError {
    fn from(err: anyhow::Error) -> Self {
        AppError::Internal(Arc::new(err))
    }
}

impl From<sqlx::Error> for AppError {
    fn from(err: sqlx::Error) -> Self {
        AppError::internal(anyhow::Error::new(err).context("database query failed"))
    }
}

impl From<AppError> for async_graphql::Error {
    fn from(err: AppError) -> Self {
        err.log_if_internal();
        let code = err.code();
        let retry_after = match &err {
            AppError::RateLimited { retry_after } => Some(retry_after.as_secs().max(1)),
            _ => None,
        };
        async_graphql::Error::new(err.message()).extend_with(|_, ext| {
            ext.set("code", code);
            if let Some(seconds) = retry_after {
                ext.set("retryAfterSeconds", seconds);
            }
        })
    }
}

/// A problem with one field of a mutation's input, shown beside that field in a form.
#[derive(SimpleObject, Debug, Clone, PartialEq, Eq)]
pub struct UserError {
    /// The input field at fault, by its GraphQL name; null when the whole input is.
    pub field: Option<String>,
    /// A sentence that tells the user what to do.
    pub message: String,
    pub code: UserErrorCode,
}

impl UserError {
    pub fn new(field: &str, code: UserErrorCode, message: impl Into<String>) -> UserError {
        UserError { field: Some(field.to_string()), message: message.into(), code }
    }

    pub fn general(code: UserErrorCode, message: impl Into<String>) -> UserError {
        UserError { field: None, message: message.into(), code }
    }

    /// An edit based on an old version: refused, nothing saved, and the editor told how
    /// to keep their work.
    pub fn conflict(current_version: i64) -> UserError {
        UserError::new(
            "version",
            UserErrorCode::Conflict,
            format!(
                "Someone saved a newer version (version {current_version}) while you were editing. Your changes were not \
                 saved: copy them, reload, and apply them again."
            ),
        )
    }
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum UserErrorCode {
    Blank,
    TooShort,
    TooLong,
    Invalid,
    Taken,
    WeakPassword,
    InvalidCredentials,
    LimitReached,
    NotFound,
    /// Someone else changed it first; nothing was saved.
    Conflict,
    /// The member already flagged this; a member flags a thing once.
    AlreadyFlagged,
    /// Another moderator decided this review first; nothing changed.
    AlreadyDecided,
    /// The file is not an image Kettle takes (by its content), or cannot be read.
    NotAnImage,
    /// The file, or the image in it, is larger than Kettle takes.
    TooLarge,
}
