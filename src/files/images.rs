//! Thumbnails, previews and mini previews of uploaded images (Mattermost's sizes: thumbnail
//! fits 120×100, preview at most 1920 wide, mini preview 16×16, all JPEG quality 90), with the
//! width and height after EXIF orientation.
//!
//! Runs on the blocking pool, from the upload's temp file. Decompression bombs are stopped
//! twice: the pixel count read from the header must be within `MaxImageResolution` before any
//! decoding, and the decoder runs under `image::Limits` (allocation cap), so a tiny file that
//! claims 20000×20000 pixels costs a header read. Any failure means "no preview"; the file still
//! uploads.

use image::codecs::jpeg::JpegEncoder;
use image::imageops::FilterType;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};
use std::io::{BufRead, Seek};
use std::path::Path;

pub const THUMBNAIL_WIDTH: u32 = 120;
pub const THUMBNAIL_HEIGHT: u32 = 100;
pub const PREVIEW_MAX_WIDTH: u32 = 1920;
pub const MINI_PREVIEW_SIZE: u32 = 16;
const JPEG_QUALITY: u8 = 90;
/// Most memory the decoder may allocate for one image.
const MAX_DECODE_ALLOC: u64 = 512 << 20;

/// What an image yields; `None` parts failed or were skipped.
#[derive(Debug, Default)]
pub struct Derived {
    pub width: u32,
    pub height: u32,
    pub thumbnail: Option<Vec<u8>>,
    pub preview: Option<Vec<u8>>,
    pub mini_preview: Vec<u8>,
}

/// Extensions whose files are decoded for previews.
pub fn is_image_extension(extension: &str) -> bool {
    matches!(extension, "png" | "jpg" | "jpeg" | "gif" | "webp" | "bmp")
}

/// Whether the first bytes of a file look like an image this server decodes.
pub fn looks_like_image(head: &[u8]) -> bool {
    matches!(
        image::guess_format(head),
        Ok(ImageFormat::Png
            | ImageFormat::Jpeg
            | ImageFormat::Gif
            | ImageFormat::WebP
            | ImageFormat::Bmp)
    )
}

/// Reads the image at `path`; `None` when it is not a decodable image within `max_pixels`.
pub fn derive(path: &Path, max_pixels: u64) -> Option<Derived> {
    match try_derive(path, max_pixels) {
        Ok(derived) => derived,
        Err(e) => {
            tracing::debug!("no preview for an upload: {e}");
            None
        }
    }
}

fn try_derive(path: &Path, max_pixels: u64) -> Result<Option<Derived>, image::ImageError> {
    let Some(img) = decode(|| ImageReader::open(path), max_pixels)? else {
        return Ok(None);
    };
    let (width, height) = (img.width(), img.height());
    if width == 0 || height == 0 {
        return Ok(None);
    }
    let thumbnail = jpeg(&thumbnail_of(&img))?;
    let preview_img = if width > PREVIEW_MAX_WIDTH {
        let scaled = (height as u64 * PREVIEW_MAX_WIDTH as u64 / width as u64).max(1) as u32;
        img.resize_exact(PREVIEW_MAX_WIDTH, scaled, FilterType::Triangle)
    } else {
        img.clone()
    };
    let preview = jpeg(&preview_img)?;
    drop(preview_img);
    let mini =
        jpeg(&img.resize_to_fill(MINI_PREVIEW_SIZE, MINI_PREVIEW_SIZE, FilterType::Triangle))?;
    Ok(Some(Derived {
        width,
        height,
        thumbnail: Some(thumbnail),
        preview: Some(preview),
        mini_preview: mini,
    }))
}

/// Decodes an image under both bomb guards and turns it upright by its EXIF orientation;
/// `None` when its header claims more than `max_pixels`. `open` is called twice: once for the
/// header, once to decode.
pub fn decode<R: BufRead + Seek>(
    mut open: impl FnMut() -> std::io::Result<ImageReader<R>>,
    max_pixels: u64,
) -> Result<Option<DynamicImage>, image::ImageError> {
    let (width, height) = open()?.with_guessed_format()?.into_dimensions()?;
    if (width as u64).saturating_mul(height as u64) > max_pixels {
        tracing::debug!("image of {width}×{height} is past MaxImageResolution: not decoded");
        return Ok(None);
    }
    let mut reader = open()?.with_guessed_format()?;
    let mut limits = Limits::default();
    limits.max_alloc = Some(MAX_DECODE_ALLOC);
    limits.max_image_width = Some(width.max(1));
    limits.max_image_height = Some(height.max(1));
    reader.limits(limits);
    let mut decoder = reader.into_decoder()?;
    let orientation = decoder.orientation()?;
    let mut img = DynamicImage::from_decoder(decoder)?;
    img.apply_orientation(orientation);
    Ok(Some(img))
}

/// Mattermost's thumbnail: small images as they are; wider-than-120:100 ones 100 high,
/// the others 120 wide.
fn thumbnail_of(img: &DynamicImage) -> DynamicImage {
    let (w, h) = (img.width() as u64, img.height() as u64);
    if h < THUMBNAIL_HEIGHT as u64 && w < THUMBNAIL_WIDTH as u64 {
        return img.clone();
    }
    if h * (THUMBNAIL_WIDTH as u64) < w * (THUMBNAIL_HEIGHT as u64) {
        let new_w = (w * THUMBNAIL_HEIGHT as u64 / h).max(1) as u32;
        img.resize_exact(new_w, THUMBNAIL_HEIGHT, FilterType::Triangle)
    } else {
        let new_h = (h * THUMBNAIL_WIDTH as u64 / w).max(1) as u32;
        img.resize_exact(THUMBNAIL_WIDTH, new_h, FilterType::Triangle)
    }
}

fn jpeg(img: &DynamicImage) -> Result<Vec<u8>, image::ImageError> {
    let rgb = img.to_rgb8();
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY).encode_image(&rgb)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wide_image_gets_mattermosts_sizes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wide.png");
        image::RgbImage::from_pixel(3000, 500, image::Rgb([200, 10, 10]))
            .save(&path)
            .unwrap();
        let derived = derive(&path, 33_177_600).expect("an image");
        assert_eq!((derived.width, derived.height), (3000, 500));
        let thumb = image::load_from_memory(&derived.thumbnail.unwrap()).unwrap();
        assert_eq!((thumb.width(), thumb.height()), (600, 100));
        let preview = image::load_from_memory(&derived.preview.unwrap()).unwrap();
        assert_eq!((preview.width(), preview.height()), (1920, 320));
        let mini = image::load_from_memory(&derived.mini_preview).unwrap();
        assert_eq!((mini.width(), mini.height()), (16, 16));
    }

    #[test]
    fn too_many_pixels_or_not_an_image_means_no_preview() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.png");
        image::GrayImage::new(200, 200).save(&path).unwrap();
        assert!(derive(&path, 199 * 200).is_none());
        let text = dir.path().join("notes.png");
        std::fs::write(&text, b"not a picture at all").unwrap();
        assert!(derive(&text, 33_177_600).is_none());
    }
}
