//! Enums stored as `TEXT` (see the module doc of [`crate::db`]): one declaration gives
//! the enum, its stored names both ways and its column type.
//!
//! ```ignore
//! crate::text_enum! {
//!     #[derive(Clone, Copy, Debug, PartialEq, Eq, async_graphql::Enum)]
//!     pub enum ArtefactKind {
//!         Code => "code",
//!         TemplateOrDocument => "template",
//!     }
//! }
//! ```
//!
//! Each variant names its stored text explicitly: the stored names are a schema of their
//! own (CHECK constraints, old rows, links in sent mail), so renaming a variant must not
//! change them. The macro generates `ALL`, `as_str`, `parse`, `FromStr`, `Display`, and
//! sqlx's `Type`, `Decode` and `Encode` for `Any`, so a row's column reads as the enum
//! (`row.try_get::<ArtefactKind, _>("kind")?`) and binds as its text.
//!
//! Text that names no variant is an [`UnknownValue`], never a default: a row the code does
//! not understand fails loudly (a decode error, which becomes a logged internal error)
//! instead of quietly turning into, say, `Other`. The CHECK constraints should make that
//! impossible; this is the second line. Where the text comes from a user (a form, a
//! link), the caller turns the error into its own user-facing answer.

use std::fmt;

use crate::error::AppError;

/// Text that names no variant of a text enum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownValue {
    /// The enum's Rust name.
    pub enum_name: &'static str,
    /// The text, cut to [`UnknownValue::SHOWN_MAX`] characters: it ends up in logs.
    pub value: String,
}

impl UnknownValue {
    pub const SHOWN_MAX: usize = 100;

    pub fn new(enum_name: &'static str, value: &str) -> UnknownValue {
        UnknownValue { enum_name, value: value.chars().take(Self::SHOWN_MAX).collect() }
    }
}

impl fmt::Display for UnknownValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown {} value {:?}", self.enum_name, self.value)
    }
}

impl std::error::Error for UnknownValue {}

/// Stored text we cannot read is our fault, not the client's.
impl From<UnknownValue> for AppError {
    fn from(err: UnknownValue) -> Self {
        AppError::internal(err)
    }
}

/// Declares an enum stored as text; see the [module doc](crate::db::text_enum).
///
/// The derives are the caller's and must include `Clone` and `Copy`.
#[macro_export]
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $(
                $(#[$variant_meta:meta])*
                $variant:ident => $text:literal
            ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis enum $name {
            $(
                $(#[$variant_meta])*
                $variant,
            )+
        }

        impl $name {
            /// Every variant, in declaration order.
            #[allow(dead_code)]
            pub const ALL: [$name; <[&str]>::len(&[$($text),+])] = [$($name::$variant),+];

            /// The stored name.
            #[allow(dead_code)]
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            /// The variant a stored name stands for; unknown text is an error, never a default.
            #[allow(dead_code)]
            pub fn parse(text: &str) -> ::std::result::Result<$name, $crate::db::text_enum::UnknownValue> {
                match text {
                    $($text => Ok($name::$variant),)+
                    _ => Err($crate::db::text_enum::UnknownValue::new(stringify!($name), text)),
                }
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::db::text_enum::UnknownValue;

            fn from_str(text: &str) -> ::std::result::Result<$name, Self::Err> {
                $name::parse(text)
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::sqlx::Type<::sqlx::Any> for $name {
            fn type_info() -> ::sqlx::any::AnyTypeInfo {
                <str as ::sqlx::Type<::sqlx::Any>>::type_info()
            }
        }

        impl<'r> ::sqlx::Decode<'r, ::sqlx::Any> for $name {
            fn decode(value: ::sqlx::any::AnyValueRef<'r>) -> ::std::result::Result<$name, ::sqlx::error::BoxDynError> {
                let text = <::std::string::String as ::sqlx::Decode<'r, ::sqlx::Any>>::decode(value)?;
                Ok($name::parse(&text)?)
            }
        }

        impl<'q> ::sqlx::Encode<'q, ::sqlx::Any> for $name {
            fn encode_by_ref(
                &self,
                buf: &mut <::sqlx::Any as ::sqlx::Database>::ArgumentBuffer<'q>,
            ) -> ::std::result::Result<::sqlx::encode::IsNull, ::sqlx::error::BoxDynError> {
                <&str as ::sqlx::Encode<'q, ::sqlx::Any>>::encode(self.as_str(), buf)
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::UnknownValue;
    use crate::error::AppError;

    crate::text_enum! {
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        enum Sample {
            /// A doc comment passes through.
            First => "first",
            Renamed => "stored_otherwise",
        }
    }

    #[test]
    fn round_trips_and_refuses_unknown_text() {
        for v in Sample::ALL {
            assert_eq!(Sample::parse(v.as_str()), Ok(v));
            assert_eq!(v.to_string().parse::<Sample>(), Ok(v));
        }
        assert_eq!(Sample::Renamed.as_str(), "stored_otherwise");
        let err = Sample::parse("Renamed").unwrap_err();
        assert_eq!(err.to_string(), r#"unknown Sample value "Renamed""#);
        assert!(matches!(AppError::from(err), AppError::Internal(_)));
        // Long text is cut before it reaches a log.
        assert_eq!(UnknownValue::new("Sample", &"x".repeat(500)).value.len(), UnknownValue::SHOWN_MAX);
    }

    /// Every enum stored as text: each variant's text reads back as that variant, and text
    /// no variant has is an error naming the enum, never a default.
    #[test]
    fn every_text_enum_round_trips() {
        use crate::{
            accounts::{recovery::Purpose, Role},
            artefacts::{ArtefactKind, ArtefactStatus},
            case_studies::{coauthors::InvitationStatus, marks::Mark, CaseStudyStatus, Phase},
            meetups::{
                agenda::AgendaItemKind, events::EventStatus, recurrence::Frequency, rsvps::RsvpStatus, GroupRole,
            },
            moderation::{
                flags::FlagReason,
                reviews::{Decision, ReviewStatus, TargetType},
            },
            notifications::{
                follows::FollowLevel,
                inbox::{DigestFrequency, MailChoice},
                Channel, NotificationKind,
            },
            organisations::{MembershipStatus, OrganisationKind, OrganisationRole},
            privacy::export::ExportStatus,
            search::SearchKind,
        };
        macro_rules! check {
            ($($enum:ident),+ $(,)?) => {$(
                for v in $enum::ALL {
                    assert_eq!($enum::parse(v.as_str()), Ok(v), "{}", stringify!($enum));
                }
                let names: std::collections::HashSet<&str> = $enum::ALL.iter().map(|v| v.as_str()).collect();
                assert_eq!(names.len(), $enum::ALL.len(), "{} repeats a stored name", stringify!($enum));
                // Not even a near miss falls back to some variant.
                let first = $enum::ALL[0].as_str();
                for text in [String::new(), "unknown".to_string(), first.to_uppercase(), format!("{first} ")] {
                    assert_eq!($enum::parse(&text), Err(UnknownValue::new(stringify!($enum), &text)));
                }
            )+};
        }
        check!(
            ArtefactKind,
            ArtefactStatus,
            Purpose,
            Role,
            InvitationStatus,
            Mark,
            CaseStudyStatus,
            Phase,
            AgendaItemKind,
            EventStatus,
            Frequency,
            RsvpStatus,
            GroupRole,
            FlagReason,
            Decision,
            ReviewStatus,
            TargetType,
            FollowLevel,
            DigestFrequency,
            MailChoice,
            Channel,
            NotificationKind,
            MembershipStatus,
            OrganisationKind,
            OrganisationRole,
            ExportStatus,
            SearchKind,
        );
        // Stored names that are not the variant's name in snake case stay as they were.
        assert_eq!(ArtefactKind::TemplateOrDocument.as_str(), "template");
        assert_eq!(ArtefactKind::ProcurementOrContract.as_str(), "procurement");
    }

    /// A stored value no variant names fails the row instead of becoming a default.
    #[tokio::test]
    async fn decoding_unknown_text_fails_the_row() {
        use sqlx::{Connection, Row};
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect("sqlite::memory:").await.unwrap();
        let row =
            sqlx::query("SELECT 'first' AS good, 'xyz' AS bad, NULL AS missing").fetch_one(&mut conn).await.unwrap();
        assert_eq!(row.try_get::<Sample, _>("good").unwrap(), Sample::First);
        assert_eq!(row.try_get::<Option<Sample>, _>("missing").unwrap(), None);
        let err = row.try_get::<Sample, _>("bad").unwrap_err();
        assert!(err.to_string().contains(r#"unknown Sample value "xyz""#), "{err}");
        let echoed: Sample = sqlx::query_scalar("SELECT $1").bind(Sample::Renamed).fetch_one(&mut conn).await.unwrap();
        assert_eq!(echoed, Sample::Renamed);
    }
}
