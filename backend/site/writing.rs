//! What the forms that take Markdown share: the preview, and adding an image.
//!
//! Both work without JavaScript: the whole form is sent with the button pressed
//! (`action=preview` or `action=upload`), and comes back with everything typed kept. An
//! uploaded image's Markdown goes at the end of the text, and the preview shows it, so
//! the author sees it in place and can move it.

use poem::http::StatusCode;
use serde_json::{json, Value};

use super::{
    forms::{form_errors, refused},
    visit::{Form, Mutation, Stop, Visit},
};

/// The preview of `source` for the form's template (`preview_html`, `unknown_handles`),
/// or the error to show beside `field`.
pub async fn preview(visit: &Visit, source: &Value, field: &str) -> Value {
    match visit.query("markdown_preview", json!({ "source": source })).await {
        Ok(data) => json!({ "preview_html": data["markdownPreview"], "unknown_handles": data["unknownHandles"] }),
        Err(_) => json!({ "errors": refused("The text is too long to preview.".into(), field) }),
    }
}

/// Uploads the image chosen in the form (`image`, described by `image_alt`) and adds it
/// to the end of `values[field]`. Returns what the form's template shows next: the
/// image added and the text's preview, or the problems beside the image's fields; and
/// the status to send it with.
pub async fn add_image(
    visit: &mut Visit,
    form: &Form,
    values: &mut Value,
    field: &str,
) -> Result<(StatusCode, Value), Stop> {
    // Shown again if the upload fails; a file cannot be (only the member can choose one).
    values["image_alt"] = json!(form.text("image_alt"));
    let Some(file) = form.file() else {
        let errors = refused("Choose an image to upload.".into(), "image");
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, json!({ "errors": errors })));
    };
    let input = json!({ "input": { "file": null, "alt": form.text("image_alt") } });
    let errors = match visit.mutate_with("upload_image", input, Some(file)).await? {
        Mutation::Done(payload) => {
            let image = &payload["image"];
            let mut text = values[field].as_str().unwrap_or_default().trim_end().to_string();
            if !text.is_empty() {
                text.push_str("\n\n");
            }
            text.push_str(image["markdown"].as_str().unwrap_or_default());
            text.push('\n');
            values[field] = json!(text);
            let mut next = preview(visit, &values[field], field).await;
            next["image_added"] = image.clone();
            return Ok((StatusCode::OK, next));
        }
        // The API's names for the fields are the form's `image` and `image_alt`.
        Mutation::Invalid(mut errors) => {
            for error in &mut errors {
                error["field"] = json!(if error["field"] == "alt" { "image_alt" } else { "image" });
            }
            form_errors(&errors, "image")
        }
        Mutation::Refused(message) => refused(message, "image"),
    };
    Ok((StatusCode::UNPROCESSABLE_ENTITY, json!({ "errors": errors })))
}
