//! Images members upload: `uploadImage` as a GraphQL multipart request, what it refuses
//! (by content, size, pixel count, quota, missing preflight header), what it keeps (fresh
//! encodings without metadata, upright, at each width), how `/uploads/…` serves them, how
//! Markdown shows them, and that erasure and the data export cover them.
//!
//! Every test image is made here, in code; nothing is read from disk.

use std::{
    io::{Cursor, Write},
    sync::OnceLock,
    time::{Duration, Instant},
};

use image::{codecs::jpeg::JpegEncoder, DynamicImage, ImageDecoder, ImageFormat, ImageReader, Rgb, RgbImage};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::{
    case_studies::{admin, case_study, create_case_study, create_topic},
    scenarios,
    support::{error_code, user_errors, with_own_app, Client, Scenario, TestApp, PASSWORD},
};

/// Named `uploads/…`, so that `cargo test --test api -- uploads` runs them all.
pub fn scenarios() -> Vec<(&'static str, Scenario)> {
    use super::uploads;
    scenarios![
        uploads::uploads_an_image_and_serves_each_width,
        uploads::refuses_what_is_not_an_image,
        uploads::refuses_an_oversized_file,
        uploads::refuses_a_decompression_bomb,
        uploads::strips_exif_and_applies_orientation,
        uploads::keeps_to_the_quota,
        uploads::uploads_at_once_keep_to_the_quota,
        uploads::requires_the_preflight_header_and_a_member,
        uploads::shows_uploaded_images_in_markdown,
        uploads::erasure_deletes_images_and_export_lists_them,
    ]
}

const UPLOAD: &str = "mutation ($input: UploadImageInput!) { uploadImage(input: $input) { image { id url markdown alt width height format bytes sizes { width url } createdAt } userErrors { field message code } } }";
const DELETE_IMAGE: &str =
    "mutation ($id: ID!) { deleteImage(input: { id: $id }) { deletedId userErrors { field code message } } }";
const MY_IMAGES: &str =
    "{ viewer { imageQuota { usedBytes limitBytes } images(first: 10) { edges { node { id bytes } } } } }";
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// A 2000 × 1000 PNG is kept at 480, 960 and 1600 wide (its own width capped), each
/// served from its address with immutable caching, the right type and `nosniff`, and
/// decoding to the size it claims; the bytes it counts are the bytes stored, and they
/// are what the member's running total holds. This is the feature's happy path, end to
/// end: if any width were missing or mislabelled, pages would show broken images.
async fn uploads_an_image_and_serves_each_width(app: TestApp) {
    let ada = app.member("ada@example.org", "Ada").await;
    let payload = upload(&ada, &File::png("chart.png", &gradient_png(2000, 1000)), "Bins emptied per month").await;
    assert_eq!(payload["userErrors"], json!([]), "{payload}");
    let image = &payload["image"];
    assert_eq!(image["format"], "png");
    assert_eq!((image["width"].as_i64(), image["height"].as_i64()), (Some(1600), Some(800)), "{image}");
    assert_eq!(image["alt"], "Bins emptied per month");
    let url = image["url"].as_str().unwrap();
    let key = key_of(url);
    assert_eq!(url, format!("/uploads/{key}.png"));
    assert_eq!(image["markdown"], format!("![Bins emptied per month]({url})"));
    let sizes: Vec<(i64, String)> = image["sizes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["width"].as_i64().unwrap(), s["url"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(
        sizes,
        vec![
            (480, format!("/uploads/{key}-480.png")),
            (960, format!("/uploads/{key}-960.png")),
            (1600, url.to_string()),
        ]
    );

    let mut served = 0;
    for (width, address) in &sizes {
        let response = app.http().get(app.url(address)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{address}");
        let headers = response.headers().clone();
        assert_eq!(headers["content-type"], "image/png", "{address}");
        assert_eq!(headers["cache-control"], IMMUTABLE, "{address}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{address}");
        let bytes = response.bytes().await.unwrap();
        let decoded = image::load_from_memory_with_format(&bytes, ImageFormat::Png).unwrap();
        assert_eq!((i64::from(decoded.width()), i64::from(decoded.height())), (*width, width / 2), "{address}");
        served += bytes.len() as i64;
    }
    // A browser revalidating gets 304, still immutable.
    let first = app.http().get(app.url(url)).send().await.unwrap();
    let etag = first.headers()["etag"].clone();
    let again = app.http().get(app.url(url)).header("if-none-match", etag).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(again.headers()["cache-control"], IMMUTABLE);
    // The largest width also answers at its explicit address.
    let explicit = app.http().get(app.url(&format!("/uploads/{key}-1600.png"))).send().await.unwrap();
    assert_eq!(explicit.status(), StatusCode::OK);

    let stored = app.count("SELECT SUM(LENGTH(data)) FROM image_files").await;
    assert_eq!(image["bytes"].as_i64(), Some(stored));
    assert_eq!(served, stored, "what is served is what is stored");
    assert_eq!(app.count("SELECT COUNT(*) FROM image_files").await, 3);
    assert_eq!(image_bytes_of(&app, "ada@example.org").await, stored);
    let mine = ada.data(MY_IMAGES, json!({})).await;
    assert_eq!(mine["viewer"]["imageQuota"]["usedBytes"].as_i64(), Some(stored));
    assert_eq!(mine["viewer"]["imageQuota"]["limitBytes"].as_i64(), Some(100_000_000), "the default quota");
    assert_eq!(mine["viewer"]["images"]["edges"][0]["node"]["id"], image["id"]);

    // Nothing else answers: another extension, a width not kept, a key nobody has.
    for address in [
        format!("/uploads/{key}.jpg"),
        format!("/uploads/{key}-481.png"),
        format!("/uploads/{key}-480.jpg"),
        "/uploads/0123456789abcdef0123456789abcdef.png".to_string(),
        format!("/uploads/{}.png", key.to_uppercase()),
        format!("/uploads/{key}.gif"),
    ] {
        let response = app.http().get(app.url(&address)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{address}");
    }
}

/// Files are judged by their bytes, never their name or declared type: text sent as
/// `photo.png` with `image/png`, an SVG (which can carry script) and a PNG cut off half
/// way are all `NOT_AN_IMAGE`, and none of them stores a row or counts a byte. A real PNG
/// sent as `notes.txt`, `text/plain`, is taken for the PNG it is, and GIF and WebP are
/// kept as PNG or JPEG by whether they have transparency.
async fn refuses_what_is_not_an_image(app: TestApp) {
    let ada = app.member("ada@example.org", "Ada").await;
    let mut truncated = gradient_png(200, 200);
    truncated.truncate(truncated.len() / 2);
    let svg = br#"<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>alert(1)</script></svg>"#;
    let files = [
        ("text named photo.png", File::png("photo.png", b"This is a text file, whatever its name says.\n")),
        ("an SVG", File { name: "drawing.svg", media_type: "image/svg+xml", bytes: svg }),
        ("an SVG sent as a PNG", File::png("drawing.png", svg)),
        ("a PNG cut in half", File::png("cut.png", &truncated)),
        ("no bytes at all", File::png("empty.png", b"")),
    ];
    for (what, file) in &files {
        let payload = upload(&ada, file, "Something").await;
        assert!(payload["image"].is_null(), "{what}: {payload}");
        assert_eq!(user_errors(&payload), vec![("file".to_string(), "NOT_AN_IMAGE".to_string())], "{what}");
        assert!(!payload["userErrors"][0]["message"].as_str().unwrap().is_empty());
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM images").await, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM image_files").await, 0);
    assert_eq!(image_bytes_of(&app, "ada@example.org").await, 0);

    // What is an image is taken whatever it is called, and kept as PNG or JPEG by what
    // it holds: a GIF and a WebP with transparency as PNG, an opaque WebP as JPEG.
    let png = gradient_png(120, 80);
    let opaque = DynamicImage::ImageRgb8(RgbImage::from_pixel(90, 60, Rgb([10, 120, 200])));
    let clear = DynamicImage::ImageRgba8(image::RgbaImage::from_pixel(90, 60, image::Rgba([10, 120, 200, 100])));
    let gif = encode(opaque.clone(), ImageFormat::Gif);
    let webp = encode(opaque, ImageFormat::WebP);
    let webp_alpha = encode(clear, ImageFormat::WebP);
    let accepted = [
        (File { name: "notes.txt", media_type: "text/plain", bytes: &png }, "png", false),
        (File { name: "moving.gif", media_type: "image/gif", bytes: &gif }, "png", false),
        (File { name: "photo.webp", media_type: "image/webp", bytes: &webp }, "jpeg", false),
        (File { name: "photo.png", media_type: "image/png", bytes: &webp_alpha }, "png", true),
    ];
    for (file, format, alpha) in &accepted {
        let payload = upload(&ada, file, "A picture").await;
        assert_eq!(payload["userErrors"], json!([]), "{}: {payload}", file.name);
        assert_eq!(payload["image"]["format"], *format, "{}", file.name);
        let served = app.http().get(app.url(payload["image"]["url"].as_str().unwrap())).send().await.unwrap();
        let decoded = image::load_from_memory(&served.bytes().await.unwrap()).unwrap().into_rgba8();
        let see_through = decoded.pixels().any(|pixel| pixel[3] < 255);
        assert_eq!(see_through, *alpha, "{}: transparency kept, and none made up", file.name);
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM images").await, accepted.len() as i64);
}

/// One byte over 10,000,000 reaches the resolver and is `TOO_LARGE` (the member is told
/// why, in `userErrors`); a body over the multipart limit (10 MB + 64 KiB) is refused
/// with 413 before the server reads it. Either way nothing is kept: the limits are what
/// stop one member filling the database or the disk with a single request.
async fn refuses_an_oversized_file(app: TestApp) {
    let ada = app.member("ada@example.org", "Ada").await;
    let mut padded = gradient_png(64, 64);
    padded.resize(10_000_001, 0);
    let payload = upload(&ada, &File::png("big.png", &padded), "Big").await;
    assert_eq!(user_errors(&payload), vec![("file".to_string(), "TOO_LARGE".to_string())], "{payload}");
    assert!(payload["userErrors"][0]["message"].as_str().unwrap().contains("10 MB"), "{payload}");

    // Exactly at the limit is not refused for its size (it is a valid PNG, padded).
    let mut at_limit = gradient_png(64, 64);
    at_limit.resize(10_000_000, 0);
    let payload = upload(&ada, &File::png("limit.png", &at_limit), "At the limit").await;
    assert_eq!(payload["userErrors"], json!([]), "{payload}");
    // Only that one is kept: the file one byte larger stored nothing.
    assert_eq!(app.count("SELECT COUNT(*) FROM images").await, 1);
    let kept_bytes = image_bytes_of(&app, "ada@example.org").await;
    assert_eq!(kept_bytes, payload["image"]["bytes"].as_i64().unwrap());

    // Over the multipart limit: 413, whether the length is declared up front (refused
    // before a byte of the body is read) or the body streams in chunks (refused once
    // the limit is passed).
    let mut huge = gradient_png(64, 64);
    huge.resize(11_000_000, 0);
    for chunked in [false, true] {
        let (status, body) = early_answer(&ada, &File::png("huge.png", &huge), chunked).await;
        assert_eq!(status, 413, "chunked: {chunked}: {body}");
        assert!(body.contains("10 MB"), "chunked: {chunked}: {body}");
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM images").await, 1);
    assert_eq!(image_bytes_of(&app, "ada@example.org").await, kept_bytes);
}

/// A PNG whose header claims 20,000 × 20,000 pixels, with real pixel data (400 MB of
/// zeros compressed to a few hundred KB): refused as `TOO_LARGE` from the header alone,
/// fast, so no decoder ever allocates for it. So are a header over 25 megapixels within
/// the side limit (6,000 × 5,000) and one over 10,000 on a side with few pixels. A server
/// that decoded first would be brought down by one small request.
async fn refuses_a_decompression_bomb(app: TestApp) {
    let ada = app.member("ada@example.org", "Ada").await;
    let bomb = tokio::task::spawn_blocking(|| BOMB.get_or_init(|| png_bomb(20_000, 20_000)).clone()).await.unwrap();
    assert!(bomb.len() < 1_000_000, "the bomb is small: {} bytes", bomb.len());

    let started = Instant::now();
    let payload = upload(&ada, &File::png("bomb.png", &bomb), "Nothing much").await;
    let took = started.elapsed();
    assert_eq!(user_errors(&payload), vec![("file".to_string(), "TOO_LARGE".to_string())], "{payload}");
    assert!(payload["userErrors"][0]["message"].as_str().unwrap().contains("20000 × 20000"), "{payload}");
    assert!(took < Duration::from_secs(5), "refused from the header, not decoded: took {took:?}");

    for (width, height) in [(6_000, 5_000), (10_001, 1)] {
        let header_only = png_with_header(width, height, &zlib(&[0u8; 64]));
        let started = Instant::now();
        let payload = upload(&ada, &File::png("wide.png", &header_only), "Wide").await;
        assert_eq!(
            user_errors(&payload),
            vec![("file".to_string(), "TOO_LARGE".to_string())],
            "{width} × {height}: {payload}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM images").await, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM image_files").await, 0);
    assert_eq!(image_bytes_of(&app, "ada@example.org").await, 0);
}

/// A JPEG with an EXIF block (orientation 6, "rotate 90° clockwise", a description and an
/// artist standing in for the camera's location and owner) is stored turned upright and
/// with no EXIF at all: not in the database and not as served. Photos from phones carry
/// where they were taken; publishing that by accident is the harm this prevents.
async fn strips_exif_and_applies_orientation(app: TestApp) {
    let ada = app.member("ada@example.org", "Ada").await;
    let jpeg = jpeg_with_exif(&split_jpeg(64, 32), 6, &[SECRET_PLACE, SECRET_ARTIST]);
    // The input is what it claims: a JPEG that decodes, with the orientation and the
    // strings where a reader of EXIF finds them.
    {
        let mut decoder = ImageReader::with_format(Cursor::new(&jpeg), ImageFormat::Jpeg).into_decoder().unwrap();
        assert_eq!(decoder.orientation().unwrap(), image::metadata::Orientation::Rotate90);
        let exif = decoder.exif_metadata().unwrap().expect("the crafted file has EXIF");
        assert!(contains(&exif, SECRET_PLACE.as_bytes()) && contains(&exif, SECRET_ARTIST.as_bytes()));
        assert_eq!(DynamicImage::from_decoder(decoder).unwrap().into_rgb8().dimensions(), (64, 32));
        assert!(contains(&jpeg, b"Exif") && jpeg_markers(&jpeg).contains(&0xE1));
    }

    let payload = upload(&ada, &File { name: "IMG_0001.JPG", media_type: "image/jpeg", bytes: &jpeg }, "A photo").await;
    assert_eq!(payload["userErrors"], json!([]), "{payload}");
    let image = &payload["image"];
    assert_eq!(image["format"], "jpeg");
    assert_eq!((image["width"].as_i64(), image["height"].as_i64()), (Some(32), Some(64)), "turned upright: {image}");
    let url = image["url"].as_str().unwrap();
    assert!(url.ends_with(".jpg"), "{url}");

    let stored: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT data FROM image_files").fetch_all(&app.state().db.pool).await.unwrap();
    assert_eq!(stored.len(), 1, "32 wide: one width only");
    let response = app.http().get(app.url(url)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "image/jpeg");
    let served = response.bytes().await.unwrap().to_vec();
    assert_eq!(served, stored[0]);
    for (place, bytes) in [("in the database", &stored[0]), ("as served", &served)] {
        for needle in [b"Exif".as_slice(), SECRET_PLACE.as_bytes(), SECRET_ARTIST.as_bytes(), b"KETTLE-SECRET"] {
            assert!(!contains(bytes, needle), "{place}: {:?} is still there", String::from_utf8_lossy(needle));
        }
        let markers = jpeg_markers(bytes);
        assert!(!markers.contains(&0xE1), "{place}: an APP1 segment is still there: {markers:02x?}");
        let decoded = image::load_from_memory_with_format(bytes, ImageFormat::Jpeg).unwrap().into_rgb8();
        assert_eq!(decoded.dimensions(), (32, 64), "{place}");
        // Turned clockwise: the left half (red) is now on top, the right (blue) below.
        let top = decoded.get_pixel(16, 8);
        let bottom = decoded.get_pixel(16, 56);
        assert!(top[0] > 180 && top[2] < 80, "{place}: the top is red, not {top:?}");
        assert!(bottom[2] > 180 && bottom[0] < 80, "{place}: the bottom is blue, not {bottom:?}");
    }
}

/// Uploads sent at once are counted one after another: the quota is one conditional
/// update of the member's running total, so no two can both slip under it.
async fn uploads_at_once_keep_to_the_quota(app: TestApp) {
    with_own_app(&app, &[("KETTLE_IMAGE_QUOTA_MB", "1")], |app| async move {
        let ada = app.member("ada@example.org", "Ada").await;
        let files: Vec<Vec<u8>> = (1..=6u32).map(|seed| noise_png(400, 300, seed)).collect();
        let payloads = futures_util::future::join_all(files.iter().map(|bytes| {
            let ada = &ada;
            async move { upload(ada, &File::png("noise.png", bytes), "Noise").await }
        }))
        .await;
        let kept: Vec<i64> = payloads.iter().filter_map(|p| p["image"]["bytes"].as_i64()).collect();
        let refused = payloads.iter().filter(|p| user_errors(p) == [("file".to_string(), "LIMIT_REACHED".to_string())]);
        // Each is over a third of the quota, so at most two fit, whichever order they land in.
        assert!(kept.iter().all(|bytes| *bytes > 1_000_000 / 3), "{kept:?}");
        assert!((1..=2).contains(&kept.len()), "{kept:?}");
        assert_eq!(refused.count(), files.len() - kept.len(), "{payloads:?}");
        let used: i64 = kept.iter().sum();
        assert!(used <= 1_000_000);
        assert_eq!(image_bytes_of(&app, "ada@example.org").await, used);
        assert_eq!(app.count("SELECT COUNT(*) FROM images").await, kept.len() as i64);
        assert_eq!(app.count("SELECT SUM(LENGTH(data)) FROM image_files").await, used);
    })
    .await;
}

/// With a 1 MB quota, noisy images (which do not compress) are taken until the next
/// would go over; that one is `LIMIT_REACHED`, naming the limit, and stores nothing.
/// Deleting one gives its bytes back, and an upload fits again. Another member can
/// neither delete my images, nor list them, nor see my quota. The quota is what keeps
/// the database (where images live) from being filled by one member.
async fn keeps_to_the_quota(app: TestApp) {
    with_own_app(&app, &[("KETTLE_IMAGE_QUOTA_MB", "1")], |app| async move {
        let ada = app.member("ada@example.org", "Ada").await;
        let mut kept: Vec<(String, i64)> = Vec::new();
        let mut refused = None;
        for seed in 1..=6u32 {
            let payload = upload(&ada, &File::png("noise.png", &noise_png(400, 300, seed)), "Noise").await;
            if payload["image"].is_null() {
                refused = Some(payload);
                break;
            }
            kept.push((
                payload["image"]["id"].as_str().unwrap().to_string(),
                payload["image"]["bytes"].as_i64().unwrap(),
            ));
        }
        let refused = refused.expect("a 1 MB quota runs out within six uploads of 360 KB");
        assert!(!kept.is_empty(), "the first upload fits");
        assert_eq!(user_errors(&refused), vec![("file".to_string(), "LIMIT_REACHED".to_string())], "{refused}");
        let message = refused["userErrors"][0]["message"].as_str().unwrap();
        assert!(message.contains("1.0 MB"), "the message names the limit: {message}");

        let used: i64 = kept.iter().map(|(_, bytes)| bytes).sum();
        assert_eq!(app.count("SELECT COUNT(*) FROM images").await, kept.len() as i64, "the refused one is not kept");
        assert_eq!(app.count("SELECT SUM(LENGTH(data)) FROM image_files").await, used);
        assert_eq!(image_bytes_of(&app, "ada@example.org").await, used);
        let mine = ada.data(MY_IMAGES, json!({})).await;
        let quota = &mine["viewer"]["imageQuota"];
        assert_eq!(quota["usedBytes"].as_i64(), Some(used));
        assert_eq!(quota["limitBytes"].as_i64(), Some(1_000_000));
        assert!(used <= 1_000_000);
        assert_eq!(mine["viewer"]["images"]["edges"].as_array().unwrap().len(), kept.len());

        // Someone else cannot delete it, list them, or see how much I use.
        let grace = app.member("grace@example.org", "Grace").await;
        let (first_id, first_bytes) = kept[0].clone();
        let theirs = grace.data(DELETE_IMAGE, json!({ "id": first_id })).await;
        assert_eq!(user_errors(&theirs["deleteImage"]), vec![("id".to_string(), "NOT_FOUND".to_string())]);
        assert!(theirs["deleteImage"]["deletedId"].is_null());
        assert_eq!(app.count("SELECT COUNT(*) FROM images").await, kept.len() as i64, "still stored");
        assert_eq!(image_bytes_of(&app, "ada@example.org").await, used);
        let listed = grace
            .gql(
                "query($h: String!) { member(handle: $h) { images(first: 10) { edges { node { id } } } } }",
                json!({ "h": "ada" }),
            )
            .await;
        assert_eq!(error_code(&listed), "FORBIDDEN", "{listed}");
        let quota = grace
            .data("query($h: String!) { member(handle: $h) { imageQuota { usedBytes } } }", json!({ "h": "ada" }))
            .await;
        assert!(quota["member"].is_object() && quota["member"]["imageQuota"].is_null(), "{quota}");
        let anonymous = app
            .anonymous()
            .data("query($h: String!) { member(handle: $h) { imageQuota { usedBytes } } }", json!({ "h": "ada" }))
            .await;
        assert!(anonymous["member"]["imageQuota"].is_null(), "{anonymous}");

        // Deleting one gives its bytes back, and then there is room again.
        let deleted = ada.data(DELETE_IMAGE, json!({ "id": first_id })).await;
        assert_eq!(deleted["deleteImage"]["userErrors"], json!([]), "{deleted}");
        assert_eq!(deleted["deleteImage"]["deletedId"], json!(first_id));
        let after = ada.data(MY_IMAGES, json!({})).await;
        assert_eq!(after["viewer"]["imageQuota"]["usedBytes"].as_i64(), Some(used - first_bytes));
        assert_eq!(image_bytes_of(&app, "ada@example.org").await, used - first_bytes);
        assert_eq!(app.count("SELECT COUNT(*) FROM images").await, kept.len() as i64 - 1);
        assert_eq!(app.count("SELECT SUM(LENGTH(data)) FROM image_files").await, used - first_bytes);
        let again = ada.data(DELETE_IMAGE, json!({ "id": first_id })).await;
        assert_eq!(user_errors(&again["deleteImage"]), vec![("id".to_string(), "NOT_FOUND".to_string())]);
        assert_eq!(image_bytes_of(&app, "ada@example.org").await, used - first_bytes, "deleting twice gives back once");

        let fits = upload(&ada, &File::png("noise.png", &noise_png(400, 300, 99)), "Noise again").await;
        assert_eq!(fits["userErrors"], json!([]), "{fits}");
        let now_used = image_bytes_of(&app, "ada@example.org").await;
        assert_eq!(now_used, used - first_bytes + fits["image"]["bytes"].as_i64().unwrap());
        assert!(now_used <= 1_000_000);
    })
    .await;
}

/// A multipart request without `GraphQL-Require-Preflight` is refused with 400 and
/// stores nothing: without the header, any site's form could post an upload with a
/// member's cookie. Signed out is `UNAUTHENTICATED`; a blank alt text is `BLANK` and one
/// over 300 characters `TOO_LONG` (and 300 exactly is fine): every image needs a
/// description for those who cannot see it.
async fn requires_the_preflight_header_and_a_member(app: TestApp) {
    let ada = app.member("ada@example.org", "Ada").await;
    let png = gradient_png(100, 50);
    let file = File::png("chart.png", &png);

    let response = post_upload(&ada, &file, "A chart", false).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body = response.text().await.unwrap();
    assert!(body.contains("GraphQL-Require-Preflight"), "{body}");
    // A cookie, as a form on another site would send, is no different.
    let mut forged = app.http().post(app.url("/graphql")).header("cookie", format!("kettle_session={}", ada.token()));
    let (content_type, multipart) = multipart_body("A chart", &file);
    forged = forged.header("content-type", content_type).body(multipart);
    assert_eq!(forged.send().await.unwrap().status(), StatusCode::BAD_REQUEST);
    // An empty header is no header.
    let empty = upload_request(&ada, &file, "A chart").header("graphql-require-preflight", "");
    assert_eq!(empty.send().await.unwrap().status(), StatusCode::BAD_REQUEST);
    assert_eq!(app.count("SELECT COUNT(*) FROM images").await, 0);

    let anonymous = post_upload(&app.anonymous(), &file, "A chart", true).await;
    let body: Value = anonymous.json().await.unwrap();
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
    assert!(body["data"].is_null() || body["data"]["uploadImage"].is_null(), "{body}");

    for (alt, code) in [("", "BLANK"), ("   ", "BLANK"), (&*"a".repeat(301), "TOO_LONG")] {
        let payload = upload(&ada, &file, alt).await;
        assert_eq!(user_errors(&payload), vec![("alt".to_string(), code.to_string())], "{alt:?}: {payload}");
        assert!(payload["image"].is_null());
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM images").await, 0);
    assert_eq!(image_bytes_of(&app, "ada@example.org").await, 0);

    // The site's own pages send the session cookie, and the header: that is taken.
    let (content_type, multipart) = multipart_body("From the editor", &file);
    let from_the_site = app
        .http()
        .post(app.url("/graphql"))
        .header("cookie", format!("kettle_session={}", ada.token()))
        .header("graphql-require-preflight", "1")
        .header("content-type", content_type)
        .body(multipart)
        .send()
        .await
        .unwrap();
    assert_eq!(from_the_site.status(), StatusCode::OK);
    let body: Value = from_the_site.json().await.unwrap();
    assert_eq!(body["data"]["uploadImage"]["userErrors"], json!([]), "{body}");
    assert_eq!(body["data"]["uploadImage"]["image"]["alt"], "From the editor");

    let longest = "é".repeat(300);
    let payload = upload(&ada, &file, &longest).await;
    assert_eq!(payload["userErrors"], json!([]), "300 characters (600 bytes) is allowed: {payload}");
    assert_eq!(payload["image"]["alt"], longest);
    let padded = upload(&ada, &file, "  A chart  ").await;
    assert_eq!(padded["image"]["alt"], "A chart", "the alt text is trimmed");
    assert_eq!(app.count("SELECT COUNT(*) FROM images").await, 3);
}

/// Markdown shows Kettle's own uploads as `<img>` with the stored size, a `srcset` of the
/// widths kept and lazy loading; an empty description falls back to the alt given at
/// upload; an image on another site stays a link (nothing is loaded from elsewhere); an
/// upload that does not exist shows its description as text. The stored HTML passes
/// the same safety check as every other write.
async fn shows_uploaded_images_in_markdown(app: TestApp) {
    let curator = admin(&app, "curator@example.org", "Curator").await;
    let topic = create_topic(&curator, "Waste").await;
    let ada = app.member("ada@example.org", "Ada").await;
    let payload = upload(&ada, &File::png("chart.png", &gradient_png(1000, 500)), "Tonnes collected by month").await;
    assert_eq!(payload["userErrors"], json!([]), "{payload}");
    let url = payload["image"]["url"].as_str().unwrap().to_string();
    let key = key_of(&url).to_string();

    let mut input = case_study("Charts", &[&topic]);
    input["body"] = json!(format!(
        "Collections rose:\n\n![A chart]({url})\n\nAgain: ![]({url})\n\nElsewhere: ![x](https://example.org/x.png)\n\n\
         Deleted: ![Gone](/uploads/ffffffffffffffffffffffffffffffff.png)\n"
    ));
    let created = create_case_study(&ada, input).await;
    let html = created["bodyHtml"].as_str().unwrap();

    assert_eq!(html.matches(&format!("<img src=\"{url}\"")).count(), 2, "{html}");
    assert!(html.contains(&format!("<img src=\"{url}\" alt=\"A chart\" width=\"1000\" height=\"500\"")), "{html}");
    assert!(html.contains(&format!("<img src=\"{url}\" alt=\"Tonnes collected by month\"")), "{html}");
    let srcset = format!("srcset=\"/uploads/{key}-480.png 480w, /uploads/{key}-960.png 960w, {url} 1000w\"");
    assert_eq!(html.matches(&srcset).count(), 2, "{html}");
    assert_eq!(html.matches("loading=\"lazy\"").count(), 2, "{html}");
    assert!(html.contains("<a href=\"https://example.org/x.png\""), "{html}");
    assert!(!html.contains("src=\"https://example.org"), "{html}");
    assert!(html.contains("Deleted: Gone"), "{html}");
    assert!(!html.contains("ffffffff"), "{html}");
    assert_eq!(html.matches("<img").count(), 2, "{html}");
    assert_eq!(kettle::markdown::unsafe_markup(html), None, "{html}");

    let stored: String =
        sqlx::query_scalar("SELECT body_html FROM case_studies").fetch_one(&app.state().db.pool).await.unwrap();
    assert_eq!(stored, html, "rendered once, on write");

    // Deleting the image renders the text again at once: no dead image, no alt text of
    // the upload's; a description the text gave shows as text.
    let id = payload["image"]["id"].as_str().unwrap();
    let deleted = ada.data(DELETE_IMAGE, json!({ "id": id })).await;
    assert_eq!(deleted["deleteImage"]["deletedId"], id, "{deleted}");
    let after: String =
        sqlx::query_scalar("SELECT body_html FROM case_studies").fetch_one(&app.state().db.pool).await.unwrap();
    assert!(!after.contains("<img") && !after.contains("Tonnes collected by month"), "{after}");
    assert!(after.contains("A chart") && after.contains("Again: </p>"), "{after}");
}

/// Erasing a member deletes their images (rows, bytes and addresses), and before that
/// their data export lists each one (key and alt text). Images are personal data: a
/// photo can show a face, a home, a child.
async fn erasure_deletes_images_and_export_lists_them(app: TestApp) {
    let ada = app.member("ada@example.org", "Ada").await;
    let grace = app.member("grace@example.org", "Grace").await;
    let payload = upload(&ada, &File::png("street.png", &gradient_png(600, 300)), "Our street in the snow").await;
    assert_eq!(payload["userErrors"], json!([]), "{payload}");
    let url = payload["image"]["url"].as_str().unwrap().to_string();
    let key = key_of(&url).to_string();
    let theirs = upload(&grace, &File::png("park.png", &gradient_png(300, 200)), "The park").await;
    let graces_url = theirs["image"]["url"].as_str().unwrap().to_string();
    // Grace shows Ada's image in her own case study, with and without words of her own.
    let curator = admin(&app, "curator@example.org", "Curator").await;
    let topic = create_topic(&curator, "Streets").await;
    let mut input = case_study("Snow days", &[&topic]);
    input["body"] = json!(format!("Ada's photo: ![]({url})\n\nAgain: ![Snow on a street]({url})\n"));
    let graces = create_case_study(&grace, input).await;
    assert!(graces["bodyHtml"].as_str().unwrap().contains("alt=\"Our street in the snow\""), "{graces}");

    let ada_id = app.count("SELECT id FROM members WHERE email_normalized = 'ada@example.org'").await;
    assert!(image_bytes_of(&app, "ada@example.org").await > 0);

    let document = export_document(&ada).await;
    let rows = document["sections"]["images.owner_id"].as_array().expect("the export has an images section");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["key"], key);
    assert_eq!(rows[0]["alt"], "Our street in the snow");
    assert_eq!(rows[0]["format"], "png");
    assert_eq!(rows[0]["width"].as_i64(), Some(600));
    assert!(!document.to_string().contains("The park"), "only her own images");

    let deleted = ada
        .data(
            "mutation($input: DeleteAccountInput!) { deleteAccount(input: $input) { erased userErrors { field code message } } }",
            json!({ "input": { "password": PASSWORD } }),
        )
        .await;
    assert_eq!(deleted["deleteAccount"], json!({ "erased": true, "userErrors": [] }));

    for address in [url.clone(), format!("/uploads/{key}-480.png")] {
        let response = app.http().get(app.url(&address)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{address}");
    }
    assert_eq!(app.count(&format!("SELECT COUNT(*) FROM images WHERE key = '{key}'")).await, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM images").await, 1, "Grace's stays");
    assert_eq!(app.count("SELECT COUNT(*) FROM image_files").await, 1);
    assert_eq!(app.count(&format!("SELECT image_bytes FROM members WHERE id = {ada_id}")).await, 0);
    let response = app.http().get(app.url(&graces_url)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // Grace's text was rendered again: no image of Ada's, and none of Ada's words (her
    // alt text); Grace's own description stays, as text.
    let html: String =
        sqlx::query_scalar("SELECT body_html FROM case_studies").fetch_one(&app.state().db.pool).await.unwrap();
    assert!(!html.contains("<img") && !html.contains("Our street in the snow"), "{html}");
    assert!(html.contains("Again: Snow on a street"), "{html}");

    // Grace erased too: nothing is left.
    let deleted = grace
        .data(
            "mutation($input: DeleteAccountInput!) { deleteAccount(input: $input) { erased userErrors { field code message } } }",
            json!({ "input": { "password": PASSWORD } }),
        )
        .await;
    assert_eq!(deleted["deleteAccount"]["erased"], true);
    assert_eq!(app.count("SELECT COUNT(*) FROM images").await, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM image_files").await, 0);
}

// ---------------------------------------------------------------------------------------
// Helpers

/// A file as the client sends it: the name and media type it declares, and its bytes.
struct File<'a> {
    name: &'a str,
    media_type: &'a str,
    bytes: &'a [u8],
}

impl<'a> File<'a> {
    fn png(name: &'a str, bytes: &'a [u8]) -> File<'a> {
        File { name, media_type: "image/png", bytes }
    }
}

/// A GraphQL multipart request body for `uploadImage` with `alt` and `file`: its
/// `Content-Type` and bytes.
fn multipart_body(alt: &str, file: &File<'_>) -> (String, Vec<u8>) {
    const BOUNDARY: &str = "kettle-test-boundary-7d1f0c2a9b3e4f5d8c6b";
    let operations = json!({ "query": UPLOAD, "variables": { "input": { "file": null, "alt": alt } } });
    let mut body = Vec::with_capacity(file.bytes.len() + 2048);
    write!(
        body,
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"operations\"\r\n\r\n{operations}\r\n\
         --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"map\"\r\n\r\n{{\"0\": [\"variables.input.file\"]}}\r\n\
         --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"0\"; filename=\"{}\"\r\nContent-Type: {}\r\n\r\n",
        file.name, file.media_type
    )
    .unwrap();
    body.extend_from_slice(file.bytes);
    write!(body, "\r\n--{BOUNDARY}--\r\n").unwrap();
    (format!("multipart/form-data; boundary={BOUNDARY}"), body)
}

/// The upload request with the client's bearer token (if any), without the preflight
/// header.
fn upload_request(client: &Client, file: &File<'_>, alt: &str) -> reqwest::RequestBuilder {
    let (content_type, body) = multipart_body(alt, file);
    let mut request =
        client.app.http().post(client.app.url("/graphql")).header("content-type", content_type).body(body);
    if let Some(token) = &client.token {
        request = request.bearer_auth(token);
    }
    request
}

/// Sends an upload, with or without `GraphQL-Require-Preflight`.
async fn post_upload(client: &Client, file: &File<'_>, alt: &str, preflight: bool) -> reqwest::Response {
    let mut request = upload_request(client, file, alt);
    if preflight {
        request = request.header("graphql-require-preflight", "1");
    }
    request.send().await.expect("the server answers")
}

/// Sends an upload (with the preflight header) over a TCP connection of its own, reading
/// the answer while the body is still being written: a server may answer a body too
/// large before reading it all and then close the connection, which a client that only
/// reads once it has written everything (reqwest) sees as a broken pipe. With `chunked`
/// the body is streamed without a declared length. The status and the answer's text.
async fn early_answer(client: &Client, file: &File<'_>, chunked: bool) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let (content_type, body) = multipart_body("Huge", file);
    let address = url::Url::parse(&client.app.url("/")).unwrap();
    let host = format!("{}:{}", address.host_str().unwrap(), address.port().unwrap());
    let stream = tokio::net::TcpStream::connect(&host).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let length =
        if chunked { "Transfer-Encoding: chunked".to_string() } else { format!("Content-Length: {}", body.len()) };
    let head = format!(
        "POST /graphql HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {}\r\nGraphQL-Require-Preflight: 1\r\n\
         Content-Type: {content_type}\r\n{length}\r\nConnection: close\r\n\r\n",
        client.token()
    );
    let write = async move {
        writer.write_all(head.as_bytes()).await?;
        for piece in body.chunks(64 * 1024) {
            if chunked {
                writer.write_all(format!("{:x}\r\n", piece.len()).as_bytes()).await?;
                writer.write_all(piece).await?;
                writer.write_all(b"\r\n").await?;
            } else {
                writer.write_all(piece).await?;
            }
        }
        if chunked {
            writer.write_all(b"0\r\n\r\n").await?;
        }
        writer.flush().await
    };
    let read = async move {
        let mut answer = Vec::new();
        let mut buffer = [0u8; 8192];
        // Until the server closes the connection (or resets it, having answered).
        while let Ok(n @ 1..) = reader.read(&mut buffer).await {
            answer.extend_from_slice(&buffer[..n]);
        }
        answer
    };
    let (_written, answer) = tokio::time::timeout(Duration::from_secs(30), async { tokio::join!(write, read) })
        .await
        .expect("the server answers within 30 s");
    let answer = String::from_utf8_lossy(&answer).to_string();
    let status = answer
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer: {answer:?}"));
    (status, answer)
}

/// Uploads as a member, expecting HTTP 200 and no GraphQL errors; the `uploadImage`
/// payload.
async fn upload(client: &Client, file: &File<'_>, alt: &str) -> Value {
    let response = post_upload(client, file, alt, true).await;
    let status = response.status();
    let body: Value = response.json().await.expect("a JSON body");
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("errors").is_none(), "unexpected errors: {body}");
    body["data"]["uploadImage"].clone()
}

async fn image_bytes_of(app: &TestApp, email: &str) -> i64 {
    app.count(&format!("SELECT image_bytes FROM members WHERE email_normalized = '{email}'")).await
}

/// The key in an image's address, `/uploads/<key>.<ext>`.
fn key_of(url: &str) -> &str {
    let key = url.strip_prefix("/uploads/").and_then(|name| name.split('.').next()).unwrap_or("");
    assert!(key.len() == 32 && key.bytes().all(|b| b.is_ascii_hexdigit()), "{url}");
    key
}

/// Asks for a data export, waits until it is built, and downloads it (as privacy.rs does).
async fn export_document(client: &Client) -> Value {
    let asked =
        client.data("mutation { requestDataExport { dataExport { id } userErrors { field code } } }", json!({})).await;
    let id = asked["requestDataExport"]["dataExport"]["id"].clone();
    assert!(id.is_string(), "{asked}");
    for _ in 0..200 {
        let data = client
            .data("{ viewer { dataExports(first: 10) { edges { node { id status downloadUrl } } } } }", json!({}))
            .await;
        let edges = data["viewer"]["dataExports"]["edges"].as_array().unwrap();
        let node = edges.iter().map(|e| &e["node"]).find(|n| n["id"] == id).expect("the export is listed");
        if node["status"] == "READY" {
            let url = node["downloadUrl"].as_str().unwrap();
            let response = client
                .app
                .http()
                .get(url)
                .header("cookie", format!("kettle_session={}", client.token()))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            return response.json().await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the export was never built");
}

/// A smooth RGB gradient as a PNG (compresses well; quick to process).
fn gradient_png(width: u32, height: u32) -> Vec<u8> {
    let image = RgbImage::from_fn(width, height, |x, y| {
        Rgb([(x * 255 / width.max(1)) as u8, (y * 255 / height.max(1)) as u8, 120])
    });
    encode(DynamicImage::ImageRgb8(image), ImageFormat::Png)
}

/// RGB noise from a linear congruential generator as a PNG: it does not compress, so its
/// size is about three bytes a pixel whatever the encoder.
fn noise_png(width: u32, height: u32, seed: u32) -> Vec<u8> {
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    let image = RgbImage::from_fn(width, height, |_, _| {
        let mut next = || {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 24) as u8
        };
        Rgb([next(), next(), next()])
    });
    encode(DynamicImage::ImageRgb8(image), ImageFormat::Png)
}

fn encode(image: DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, format).unwrap();
    out.into_inner()
}

/// A JPEG, left half red and right half blue, so that which way it was turned shows.
fn split_jpeg(width: u32, height: u32) -> Vec<u8> {
    let image =
        RgbImage::from_fn(width, height, |x, _| if x < width / 2 { Rgb([230, 20, 20]) } else { Rgb([20, 20, 230]) });
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, 95).encode_image(&image).unwrap();
    out
}

const SECRET_PLACE: &str = "KETTLE-SECRET-GPS-51.5N";
const SECRET_ARTIST: &str = "KETTLE-SECRET-ARTIST-Ada";

/// `jpeg` with an APP1 Exif segment right after its SOI marker: a big-endian TIFF header,
/// and one IFD holding ImageDescription and Artist (the `strings`, in that order) and
/// Orientation (`orientation`), the strings stored after the IFD.
fn jpeg_with_exif(jpeg: &[u8], orientation: u16, strings: &[&str; 2]) -> Vec<u8> {
    assert_eq!(&jpeg[..2], &[0xFF, 0xD8], "a JPEG starts with SOI");
    const ENTRIES: u16 = 3;
    let ifd_offset = 8u32;
    let strings_at = ifd_offset + 2 + u32::from(ENTRIES) * 12 + 4;
    let description = format!("{}\0", strings[0]);
    let artist = format!("{}\0", strings[1]);
    let entry = |tiff: &mut Vec<u8>, tag: u16, kind: u16, count: u32, value: [u8; 4]| {
        tiff.extend_from_slice(&tag.to_be_bytes());
        tiff.extend_from_slice(&kind.to_be_bytes());
        tiff.extend_from_slice(&count.to_be_bytes());
        tiff.extend_from_slice(&value);
    };
    let mut tiff = Vec::new();
    tiff.extend_from_slice(b"MM\0*");
    tiff.extend_from_slice(&ifd_offset.to_be_bytes());
    tiff.extend_from_slice(&ENTRIES.to_be_bytes());
    // Entries in ascending tag order, as TIFF requires.
    entry(&mut tiff, 0x010E, 2, description.len() as u32, strings_at.to_be_bytes());
    let [high, low] = orientation.to_be_bytes();
    entry(&mut tiff, 0x0112, 3, 1, [high, low, 0, 0]);
    entry(&mut tiff, 0x013B, 2, artist.len() as u32, (strings_at + description.len() as u32).to_be_bytes());
    tiff.extend_from_slice(&0u32.to_be_bytes());
    assert_eq!(tiff.len() as u32, strings_at);
    tiff.extend_from_slice(description.as_bytes());
    tiff.extend_from_slice(artist.as_bytes());

    let mut payload = b"Exif\0\0".to_vec();
    payload.extend_from_slice(&tiff);
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&(payload.len() as u16 + 2).to_be_bytes());
    out.extend_from_slice(&payload);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// The marker of each JPEG segment from SOI up to the start of the scan (SOS), in order:
/// where APP1 (0xE1, EXIF and XMP) would be.
fn jpeg_markers(jpeg: &[u8]) -> Vec<u8> {
    assert_eq!(&jpeg[..2], &[0xFF, 0xD8], "a JPEG starts with SOI");
    let mut markers = Vec::new();
    let mut at = 2;
    while at + 4 <= jpeg.len() {
        assert_eq!(jpeg[at], 0xFF, "a segment starts at {at}");
        let marker = jpeg[at + 1];
        markers.push(marker);
        if marker == 0xDA {
            break;
        }
        let length = usize::from(u16::from_be_bytes([jpeg[at + 2], jpeg[at + 3]]));
        at += 2 + length;
    }
    assert_eq!(markers.last(), Some(&0xDA), "the segments lead to a scan: {markers:02x?}");
    markers
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}

/// The decompression bomb, made once for every backend's run.
static BOMB: OnceLock<Vec<u8>> = OnceLock::new();

/// A PNG of `width` × `height` 8-bit grey pixels, all black, with every row really there:
/// the IDAT is the zlib stream of `height` rows of (filter 0, `width` zeros), compressed
/// as it is written, so the test never holds the decompressed pixels.
fn png_bomb(width: u32, height: u32) -> Vec<u8> {
    let row = vec![0u8; width as usize + 1];
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    for _ in 0..height {
        encoder.write_all(&row).unwrap();
    }
    png_with_header(width, height, &encoder.finish().unwrap())
}

/// A PNG with an IHDR for `width` × `height` 8-bit greyscale and `idat` as its one IDAT.
fn png_with_header(width: u32, height: u32, idat: &[u8]) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    // Bit depth 8, greyscale, deflate, adaptive filtering, not interlaced.
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
    png_chunk(&mut png, b"IHDR", &ihdr);
    png_chunk(&mut png, b"IDAT", idat);
    png_chunk(&mut png, b"IEND", &[]);
    png
}

fn png_chunk(png: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    png.extend_from_slice(&(data.len() as u32).to_be_bytes());
    png.extend_from_slice(kind);
    png.extend_from_slice(data);
    let mut crc = crc32fast::Hasher::new();
    crc.update(kind);
    crc.update(data);
    png.extend_from_slice(&crc.finalize().to_be_bytes());
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}
