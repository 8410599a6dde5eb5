//! The image API: `uploadImage` (a GraphQL multipart request) and `deleteImage`; a
//! member's own images and quota are fields of `Member`.

use std::io::Read;

use async_graphql::{Context, InputObject, Object, SimpleObject, Upload, ID};

use super::{processing, Image, Refused};
use crate::{
    cpu::off_the_workers,
    error::{UserError, UserErrorCode},
    graphql::{relay, ContextExt, DateTime},
    limits::Limit,
    text,
};

#[Object]
impl Image {
    pub async fn id(&self) -> ID {
        relay::global_id("Image", self.id)
    }

    /// Its address on this site (its largest width): `/uploads/<key>.<png|jpg>`. It
    /// never changes, so it is served with immutable caching.
    async fn url(&self) -> String {
        self.path()
    }

    /// What to write in Markdown to show it: `![alt](url)`.
    async fn markdown(&self) -> String {
        self.markdown_snippet()
    }

    /// What the image shows, for those who cannot see it.
    async fn alt(&self) -> &str {
        &self.alt
    }

    /// Its largest width kept, in pixels, and the height at that width.
    async fn width(&self) -> i64 {
        self.width
    }

    async fn height(&self) -> i64 {
        self.height
    }

    /// How it is kept: `png` or `jpeg`.
    async fn format(&self) -> &'static str {
        self.format.name()
    }

    /// Every width kept, smallest first, with its address.
    async fn sizes(&self) -> Vec<ImageSize> {
        self.widths().into_iter().map(|width| ImageSize { width, url: self.path_at(width) }).collect()
    }

    /// Bytes over every width: what counts towards its owner's quota.
    async fn bytes(&self) -> i64 {
        self.bytes
    }

    async fn created_at(&self) -> DateTime {
        DateTime(self.created_at)
    }
}

/// One width an image is kept at.
#[derive(SimpleObject)]
pub struct ImageSize {
    pub width: i64,
    pub url: String,
}

/// How much of their image quota a member has used.
#[derive(SimpleObject)]
pub struct ImageQuota {
    pub used_bytes: i64,
    pub limit_bytes: i64,
}

#[derive(InputObject)]
pub struct UploadImageInput {
    /// A PNG, JPEG, WebP or GIF, judged by its content, at most 10 MB and 25 megapixels.
    /// Sent as a GraphQL multipart request.
    pub file: Upload,
    /// What the image shows, for those who cannot see it (required, at most 300
    /// characters, one line).
    pub alt: String,
}

#[derive(SimpleObject)]
pub struct UploadImagePayload {
    pub image: Option<Image>,
    pub user_errors: Vec<UserError>,
}

#[derive(InputObject)]
pub struct DeleteImageInput {
    pub id: ID,
}

#[derive(SimpleObject)]
pub struct DeleteImagePayload {
    pub deleted_id: Option<ID>,
    pub user_errors: Vec<UserError>,
}

fn refused(error: UserError) -> UploadImagePayload {
    UploadImagePayload { image: None, user_errors: vec![error] }
}

#[derive(Default)]
pub struct UploadMutation;

#[Object]
impl UploadMutation {
    /// Uploads an image to show in Markdown (`image.markdown`). It is judged by its
    /// content, re-encoded without its metadata (EXIF, location included), turned
    /// upright and kept at up to three widths; it counts towards the member's quota.
    async fn upload_image(
        &self,
        ctx: &Context<'_>,
        input: UploadImageInput,
    ) -> async_graphql::Result<UploadImagePayload> {
        let viewer = ctx.require_viewer()?;
        let state = ctx.state();
        if let Some(error) = text::check_line("alt", "Alt text", &input.alt, super::ALT_MAX, false) {
            return Ok(refused(error));
        }
        let alt = input.alt.trim().to_string();
        if alt.is_empty() {
            return Ok(refused(UserError::new(
                "alt",
                UserErrorCode::Blank,
                "Describe what the image shows, for those who cannot see it.",
            )));
        }
        state.limiter.check(Limit::UploadsMember, &viewer.member.id.to_string(), 1).await?;
        let upload = input.file.value(ctx)?;
        let processed = off_the_workers(move || {
            // One byte past the limit is enough to know the file is too large.
            let mut bytes = Vec::new();
            match upload.into_read().take(processing::FILE_MAX as u64 + 1).read_to_end(&mut bytes) {
                Ok(_) => processing::process(&bytes),
                Err(_) => Err(Refused::Damaged),
            }
        })
        .await?;
        let processed = match processed {
            Ok(processed) => processed,
            Err(refusal) => {
                let code = match refusal {
                    Refused::NotAnImage | Refused::Damaged => UserErrorCode::NotAnImage,
                    Refused::TooLarge | Refused::TooManyPixels { .. } => UserErrorCode::TooLarge,
                };
                return Ok(refused(UserError::new("file", code, refusal.message())));
            }
        };
        match super::store(&state.db, viewer.member.id, &alt, &processed, state.config.image_quota_bytes).await? {
            Ok(image) => Ok(UploadImagePayload { image: Some(image), user_errors: vec![] }),
            Err(usage) => Ok(refused(UserError::new(
                "file",
                UserErrorCode::LimitReached,
                format!(
                    "This image ({}) would take you over the {} your images may take ({} used already). Use an image you uploaded before, or a smaller one.",
                    super::size_for_people(processed.bytes() as i64),
                    super::size_for_people(usage.limit),
                    super::size_for_people(usage.used)
                ),
            ))),
        }
    }

    /// Deletes one of the signed-in member's images, giving its bytes back to their
    /// quota. Texts that showed it are rendered again without it (a description they
    /// gave shows as text).
    async fn delete_image(
        &self,
        ctx: &Context<'_>,
        input: DeleteImageInput,
    ) -> async_graphql::Result<DeleteImagePayload> {
        let viewer = ctx.require_viewer()?;
        let id = relay::parse_global_id_of("Image", &input.id)?;
        if super::delete(&ctx.state().db, viewer.member.id, id).await? {
            Ok(DeleteImagePayload { deleted_id: Some(input.id), user_errors: vec![] })
        } else {
            Ok(DeleteImagePayload {
                deleted_id: None,
                user_errors: vec![UserError::new("id", UserErrorCode::NotFound, "You have no such image.")],
            })
        }
    }
}
