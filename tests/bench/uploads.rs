//! What an image upload costs the server: `kettle::uploads::processing::process` (check by
//! content, decode, orient, re-encode without metadata at up to three widths) on a 12
//! megapixel camera photo (JPEG) and a 3 megapixel screenshot (PNG), made here
//! deterministically. Uploads run on the CPU pool one per core (`cpu::off_the_workers`),
//! so time per image and the memory one takes decide how many a server takes at once.
//!
//! `cargo bench --bench uploads` prints, for each, the median time over several runs, the
//! sizes kept, and the process's peak resident memory after them (VmHWM: an upper bound on
//! what one upload at a time needs). It asserts nothing about time, because the machine
//! decides that. Run any other way (`cargo test --all-targets` runs bench targets without
//! `--bench`) it processes one small image once, as a smoke test.

use std::time::{Duration, Instant};

use image::{codecs::jpeg::JpegEncoder, ImageEncoder, Rgb, RgbImage};
use kettle::uploads::processing;

/// A photo-like picture: smooth gradients with a little deterministic grain, which JPEG
/// compresses as it does a real photo (about 1 to 2 bytes a pixel at quality 90).
fn photo(width: u32, height: u32) -> Vec<u8> {
    let mut seed: u32 = 0x9e37_79b9;
    let picture = RgbImage::from_fn(width, height, |x, y| {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        let grain = (seed % 24) as i32 - 12;
        let channel = |base: u32| (base as i32 + grain).clamp(0, 255) as u8;
        Rgb([channel(x * 255 / width), channel(y * 255 / height), channel((x + y) * 127 / (width + height) + 64)])
    });
    let mut bytes = Vec::new();
    JpegEncoder::new_with_quality(&mut bytes, 90)
        .write_image(picture.as_raw(), width, height, image::ExtendedColorType::Rgb8)
        .expect("a JPEG encodes");
    bytes
}

/// A screenshot-like picture: flat panels and lines of "text", as PNG.
fn screenshot(width: u32, height: u32) -> Vec<u8> {
    let picture = RgbImage::from_fn(width, height, |x, y| {
        if y < 60 {
            Rgb([29, 112, 184])
        } else if (y / 24) % 2 == 0 && x % 9 < 6 && x > 40 && x < width - 40 {
            Rgb([11, 12, 12])
        } else {
            Rgb([255, 255, 255])
        }
    });
    let mut bytes = Vec::new();
    image::codecs::png::PngEncoder::new(&mut bytes)
        .write_image(picture.as_raw(), width, height, image::ExtendedColorType::Rgb8)
        .expect("a PNG encodes");
    bytes
}

/// The process's peak resident memory so far, in MB (Linux; 0 elsewhere).
fn peak_resident_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

fn measure(name: &str, bytes: &[u8], runs: usize) {
    let mut times: Vec<Duration> = Vec::new();
    let mut kept = None;
    for _ in 0..runs {
        let started = Instant::now();
        let processed = processing::process(bytes).expect("the image is kept");
        times.push(started.elapsed());
        kept = Some(processed);
    }
    times.sort();
    let kept = kept.expect("at least one run");
    let widths: Vec<String> =
        kept.files.iter().map(|f| format!("{}×{} {:.0} KB", f.width, f.height, f.data.len() as f64 / 1000.0)).collect();
    println!(
        "{name}: {:.1} MB in, median {:.0} ms over {runs} runs (fastest {:.0} ms); kept {}; peak resident memory {:.0} MB",
        bytes.len() as f64 / 1e6,
        times[times.len() / 2].as_secs_f64() * 1000.0,
        times[0].as_secs_f64() * 1000.0,
        widths.join(", "),
        peak_resident_mb(),
    );
}

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    if !benching {
        measure("smoke: 800×600 photo", &photo(800, 600), 1);
        return;
    }
    let camera = photo(4000, 3000);
    assert!(camera.len() <= processing::FILE_MAX, "the photo fits the upload limit: {} bytes", camera.len());
    measure("12 MP camera photo (JPEG)", &camera, 5);
    measure("3 MP screenshot (PNG)", &screenshot(2000, 1500), 5);
}
