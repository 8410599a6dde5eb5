//! Turning an uploaded file into the images Kettle keeps, or refusing it.
//!
//! The file is judged by its bytes, never its name or declared type: only PNG, JPEG,
//! WebP and GIF signatures are decoded, and nothing else (SVG, which can hold script,
//! included) is an image here. Before a pixel is decoded, the header's dimensions are
//! checked against [`SIDE_MAX`] and [`PIXELS_MAX`], so a small file that claims to be
//! enormous (a decompression bomb) is refused having cost a header read; the decoder
//! also runs under `image::Limits` as a second line.
//!
//! What is kept is a fresh encoding of the decoded pixels, turned upright first (by the
//! EXIF orientation, which would otherwise be lost with the rest): PNG for PNG and GIF
//! (the first frame) and for anything with transparency, JPEG otherwise. Encoders write
//! no metadata, so EXIF (camera, time, location), XMP, comments and colour profiles are
//! all gone. Each image is kept at its own width, at most [`WIDTHS`]'s largest, and at
//! each smaller width of [`WIDTHS`], for `srcset`.

use std::io::Cursor;

use image::{
    codecs::{
        jpeg::JpegEncoder,
        png::{CompressionType, FilterType as PngFilter, PngEncoder},
    },
    imageops::FilterType,
    DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits,
};

/// The largest file accepted, in bytes: a phone photo fits with room to spare.
pub const FILE_MAX: usize = 10_000_000;
/// The most pixels an image may have: 25 megapixels (a 6,000 × 4,000 camera photo
/// fits). Decoded, that is 100 MB, so decoding is also bounded to one image per core.
pub const PIXELS_MAX: u64 = 25_000_000;
/// The longest side accepted, in pixels.
pub const SIDE_MAX: u32 = 10_000;
/// The widths kept, smallest first; an image narrower than the largest is kept at its
/// own width and at each smaller one.
pub const WIDTHS: [u32; 3] = [480, 960, 1600];
/// JPEG quality for what Kettle re-encodes: visually lossless for photos.
const JPEG_QUALITY: u8 = 85;

/// How an image is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Png,
    Jpeg,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Png => "png",
            Format::Jpeg => "jpeg",
        }
    }

    pub fn parse(name: &str) -> Option<Format> {
        match name {
            "png" => Some(Format::Png),
            "jpeg" => Some(Format::Jpeg),
            _ => None,
        }
    }

    /// The file extension in its address.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Png => "png",
            Format::Jpeg => "jpg",
        }
    }

    pub fn media_type(self) -> &'static str {
        match self {
            Format::Png => "image/png",
            Format::Jpeg => "image/jpeg",
        }
    }
}

/// One width of an image, encoded.
#[derive(Debug)]
pub struct Encoded {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

/// An upload made fit to keep: each width, smallest first (the last is the image's own).
#[derive(Debug)]
pub struct Processed {
    pub format: Format,
    pub files: Vec<Encoded>,
}

impl Processed {
    /// The largest width kept.
    pub fn largest(&self) -> &Encoded {
        self.files.last().expect("an image is kept at one width at least")
    }

    /// Bytes over every width: what counts towards the quota.
    pub fn bytes(&self) -> usize {
        self.files.iter().map(|f| f.data.len()).sum()
    }
}

/// Why a file is not kept.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// Not a PNG, JPEG, WebP or GIF by its content.
    NotAnImage,
    /// Over [`FILE_MAX`] bytes.
    TooLarge,
    /// Over [`SIDE_MAX`] on a side or [`PIXELS_MAX`] in all (by its header).
    TooManyPixels { width: u32, height: u32 },
    /// Its header is an image's, but its pixels could not be decoded.
    Damaged,
}

impl Refused {
    /// What to tell the member.
    pub fn message(&self) -> String {
        match self {
            Refused::NotAnImage => "The file is not an image Kettle can show: upload a PNG, JPEG, WebP or GIF.".into(),
            Refused::TooLarge => format!("The file is larger than {} MB: make it smaller and try again.", FILE_MAX / 1_000_000),
            Refused::TooManyPixels { width, height } => format!(
                "The image is {width} × {height} pixels, more than Kettle takes ({} megapixels, and at most {SIDE_MAX} on a side): make it smaller and try again.",
                PIXELS_MAX / 1_000_000
            ),
            Refused::Damaged => "The image could not be read: the file may be damaged or incomplete.".into(),
        }
    }
}

/// Checks, decodes and re-encodes an upload (CPU-bound: run it off the async workers).
pub fn process(bytes: &[u8]) -> Result<Processed, Refused> {
    if bytes.len() > FILE_MAX {
        return Err(Refused::TooLarge);
    }
    let source = match image::guess_format(bytes) {
        Ok(format @ (ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::WebP | ImageFormat::Gif)) => format,
        _ => return Err(Refused::NotAnImage),
    };
    // The header is read with no limits, and only the header: the dimensions are checked
    // here, with a message that names them, before the decoder may allocate anything.
    let mut reader = ImageReader::with_format(Cursor::new(bytes), source);
    reader.no_limits();
    let mut decoder = reader.into_decoder().map_err(|e| refusal(&e, (0, 0)))?;
    let (width, height) = decoder.dimensions();
    if width > SIDE_MAX || height > SIDE_MAX || u64::from(width) * u64::from(height) > PIXELS_MAX {
        return Err(Refused::TooManyPixels { width, height });
    }
    if width == 0 || height == 0 {
        return Err(Refused::Damaged);
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(SIDE_MAX);
    limits.max_image_height = Some(SIDE_MAX);
    // The decoded image at 16 bits a channel, with room for the decoder's own buffers.
    limits.max_alloc = Some(PIXELS_MAX * 8 + (64 << 20));
    decoder.set_limits(limits).map_err(|e| refusal(&e, (width, height)))?;
    // A damaged orientation tag is no reason to refuse the picture.
    let orientation = decoder.orientation().ok();
    let mut image = DynamicImage::from_decoder(decoder).map_err(|e| refusal(&e, (width, height)))?;
    if let Some(orientation) = orientation {
        image.apply_orientation(orientation);
    }

    let format = if source == ImageFormat::Jpeg || (source == ImageFormat::WebP && !image.color().has_alpha()) {
        Format::Jpeg
    } else {
        Format::Png
    };
    let image = match (format, image.color().has_alpha()) {
        (Format::Jpeg, _) => DynamicImage::ImageRgb8(image.into_rgb8()),
        (Format::Png, true) => DynamicImage::ImageRgba8(image.into_rgba8()),
        (Format::Png, false) => DynamicImage::ImageRgb8(image.into_rgb8()),
    };

    let own = image.width().min(WIDTHS[WIDTHS.len() - 1]);
    let mut widths: Vec<u32> = WIDTHS.iter().copied().filter(|w| *w < own).collect();
    widths.push(own);
    let mut files = Vec::with_capacity(widths.len());
    for width in widths {
        let scaled = if width == image.width() {
            image.clone()
        } else {
            let height = (u64::from(image.height()) * u64::from(width) / u64::from(image.width())).max(1) as u32;
            image.resize_exact(width, height, FilterType::Triangle)
        };
        files.push(Encoded { width: scaled.width(), height: scaled.height(), data: encode(&scaled, format)? });
    }
    Ok(Processed { format, files })
}

fn encode(image: &DynamicImage, format: Format) -> Result<Vec<u8>, Refused> {
    let mut out = Vec::new();
    let written = match format {
        Format::Png => image.write_with_encoder(PngEncoder::new_with_quality(
            &mut out,
            CompressionType::Default,
            PngFilter::Adaptive,
        )),
        Format::Jpeg => image.write_with_encoder(JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY)),
    };
    // Encoding pixels we decoded ourselves into memory fails only on a codec fault.
    written.map_err(|err| {
        tracing::error!(error = %err, "re-encoding a decoded image failed");
        Refused::Damaged
    })?;
    Ok(out)
}

fn refusal(err: &image::ImageError, (width, height): (u32, u32)) -> Refused {
    match err {
        image::ImageError::Limits(_) => Refused::TooManyPixels { width, height },
        image::ImageError::Unsupported(_) => Refused::NotAnImage,
        _ => Refused::Damaged,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageEncoder, Rgb, RgbImage, Rgba, RgbaImage};

    fn png(width: u32, height: u32) -> Vec<u8> {
        let image = RgbImage::from_fn(width, height, |x, y| Rgb([(x % 251) as u8, (y % 241) as u8, 90]));
        let mut out = Vec::new();
        PngEncoder::new(&mut out).write_image(&image, width, height, image::ExtendedColorType::Rgb8).unwrap();
        out
    }

    #[test]
    fn keeps_each_width_below_its_own_and_its_own() {
        let processed = process(&png(1000, 500)).unwrap();
        assert_eq!(processed.format, Format::Png);
        let widths: Vec<(u32, u32)> = processed.files.iter().map(|f| (f.width, f.height)).collect();
        assert_eq!(widths, [(480, 240), (960, 480), (1000, 500)]);
        for file in &processed.files {
            let decoded = image::load_from_memory(&file.data).unwrap();
            assert_eq!((decoded.width(), decoded.height()), (file.width, file.height));
        }
        let wide = process(&png(2400, 100)).unwrap();
        assert_eq!(wide.files.iter().map(|f| f.width).collect::<Vec<_>>(), [480, 960, 1600]);
        let small = process(&png(300, 200)).unwrap();
        assert_eq!(small.files.iter().map(|f| (f.width, f.height)).collect::<Vec<_>>(), [(300, 200)]);
    }

    #[test]
    fn photos_stay_jpeg_and_transparency_stays_png() {
        let image = RgbImage::from_fn(64, 32, |x, _| Rgb([x as u8 * 4, 20, 30]));
        let mut jpeg = Vec::new();
        JpegEncoder::new_with_quality(&mut jpeg, 90).encode_image(&image).unwrap();
        assert_eq!(process(&jpeg).unwrap().format, Format::Jpeg);

        let clear = RgbaImage::from_pixel(10, 10, Rgba([1, 2, 3, 0]));
        let mut out = Vec::new();
        PngEncoder::new(&mut out).write_image(&clear, 10, 10, image::ExtendedColorType::Rgba8).unwrap();
        let processed = process(&out).unwrap();
        assert_eq!(processed.format, Format::Png);
        assert!(image::load_from_memory(&processed.files[0].data).unwrap().color().has_alpha());
    }

    #[test]
    fn refuses_what_is_not_an_image_by_its_content() {
        assert_eq!(process(b"hello, this is text").unwrap_err(), Refused::NotAnImage);
        let svg = b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>";
        assert_eq!(process(svg).unwrap_err(), Refused::NotAnImage);
        let mut cut = png(200, 200);
        cut.truncate(cut.len() / 2);
        assert_eq!(process(&cut).unwrap_err(), Refused::Damaged);
        assert_eq!(process(&vec![0u8; FILE_MAX + 1]).unwrap_err(), Refused::TooLarge);
    }

    /// A header that claims 20,000 × 20,000 pixels is refused before anything decodes.
    #[test]
    fn refuses_too_many_pixels_from_the_header() {
        let mut bytes = png(1, 1);
        // IHDR's width and height sit at bytes 16..24; the chunk's CRC is not checked
        // before the dimensions are read, but set it right all the same.
        bytes[16..20].copy_from_slice(&20_000u32.to_be_bytes());
        bytes[20..24].copy_from_slice(&20_000u32.to_be_bytes());
        let crc = crc32(&bytes[12..29]);
        bytes[29..33].copy_from_slice(&crc.to_be_bytes());
        assert!(matches!(process(&bytes).unwrap_err(), Refused::TooManyPixels { .. }));
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &byte in data {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }
}
