//! Pictures the server makes: profile pictures from an upload (cropped square, 128 px PNG, as
//! Mattermost stores them), the generated default (the user's initial, white, on a colour picked
//! by the user id, so it stays the same everywhere), and custom emoji images fitted to 128 px.
//!
//! Decoding goes through `files::images::decode`, with its guards against decompression bombs.

use crate::files::images::decode;
use ab_glyph::{Font, FontRef, PxScale, ScaleFont};
use image::codecs::png::PngEncoder;
use image::imageops::FilterType;
use image::{DynamicImage, ImageFormat, ImageReader, Rgba, RgbaImage};
use std::io::Cursor;

/// Side of a profile picture, in pixels.
pub const PROFILE_SIDE: u32 = 128;
/// Custom emoji larger than this on a side are scaled down to it.
pub const EMOJI_SIDE: u32 = 128;
/// Custom emoji images past this on a side are refused (Mattermost's limit on the original).
pub const EMOJI_MAX_ORIGINAL_SIDE: u32 = 1028;

/// Background colours of generated pictures: saturated enough that white reads on each.
const PALETTE: [[u8; 3]; 8] = [
    [0x1e, 0x88, 0xe5],
    [0x43, 0xa0, 0x47],
    [0xe5, 0x39, 0x35],
    [0x8e, 0x24, 0xaa],
    [0xf4, 0x51, 0x1e],
    [0x00, 0x89, 0x7b],
    [0x3f, 0x51, 0xb5],
    [0xc2, 0x18, 0x5b],
];

/// Why an upload is not a picture.
#[derive(Debug, thiserror::Error)]
pub enum PictureError {
    #[error("the file is not an image this server reads: {0}")]
    NotAnImage(String),
    #[error("the image is larger than {max} pixels")]
    TooManyPixels { max: u64 },
    #[error("the image is {width}×{height}; at most {max}×{max} is allowed")]
    TooLarge { width: u32, height: u32, max: u32 },
    #[error("the image could not be encoded: {0}")]
    Encode(String),
}

fn decode_bytes(bytes: &[u8], max_pixels: u64) -> Result<DynamicImage, PictureError> {
    decode(|| Ok(ImageReader::new(Cursor::new(bytes))), max_pixels)
        .map_err(|e| PictureError::NotAnImage(e.to_string()))?
        .ok_or(PictureError::TooManyPixels { max: max_pixels })
}

fn png(img: &DynamicImage) -> Result<Vec<u8>, PictureError> {
    let mut out = Vec::new();
    img.write_with_encoder(PngEncoder::new(&mut out))
        .map_err(|e| PictureError::Encode(e.to_string()))?;
    Ok(out)
}

/// A profile picture from an uploaded image: the centre square, 128 px, PNG.
pub fn profile_from_upload(bytes: &[u8], max_pixels: u64) -> Result<Vec<u8>, PictureError> {
    let img = decode_bytes(bytes, max_pixels)?;
    png(&img.resize_to_fill(PROFILE_SIDE, PROFILE_SIDE, FilterType::Lanczos3))
}

/// The generated picture of a user without one: the first letter of `username`, upper case,
/// centred in white on a colour chosen by `user_id`.
pub fn default_profile(username: &str, user_id: &[u8]) -> Result<Vec<u8>, PictureError> {
    let [r, g, b] = PALETTE[colour_index(user_id)];
    let mut img = RgbaImage::from_pixel(PROFILE_SIDE, PROFILE_SIDE, Rgba([r, g, b, 255]));
    let initial = username
        .chars()
        .next()
        .map(|c| c.to_uppercase().next().unwrap_or(c))
        .unwrap_or('?');
    draw_centred(&mut img, initial);
    png(&DynamicImage::ImageRgba8(img))
}

/// FNV-1a of the id, so a user's colour is the same on every node and across restarts.
fn colour_index(user_id: &[u8]) -> usize {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in user_id {
        hash ^= u32::from(*byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash as usize % PALETTE.len()
}

/// Draws `letter` in white, centred, half the picture high; a letter the font lacks is drawn
/// as `?`.
fn draw_centred(img: &mut RgbaImage, letter: char) {
    let Ok(font) = FontRef::try_from_slice(epaint_default_fonts::UBUNTU_LIGHT) else {
        return;
    };
    let letter = if font.glyph_id(letter).0 == 0 {
        '?'
    } else {
        letter
    };
    let scale = PxScale::from(PROFILE_SIDE as f32 * 0.5);
    let glyph = font.as_scaled(scale).scaled_glyph(letter);
    let Some(outlined) = font.outline_glyph(glyph) else {
        return;
    };
    let bounds = outlined.px_bounds();
    let (width, height) = (bounds.width(), bounds.height());
    let side = PROFILE_SIDE as f32;
    let left = ((side - width) / 2.0).round() as i64;
    let top = ((side - height) / 2.0).round() as i64;
    outlined.draw(|x, y, coverage| {
        let (px, py) = (left + i64::from(x), top + i64::from(y));
        if px < 0 || py < 0 || px >= i64::from(img.width()) || py >= i64::from(img.height()) {
            return;
        }
        let pixel = img.get_pixel_mut(px as u32, py as u32);
        let alpha = coverage.clamp(0.0, 1.0);
        for channel in 0..3 {
            let under = f32::from(pixel.0[channel]);
            pixel.0[channel] = (under + (255.0 - under) * alpha).round() as u8;
        }
    });
}

/// A custom emoji image ready to store, and its content type. GIFs are kept as uploaded (they
/// may be animated); other images larger than [`EMOJI_SIDE`] are scaled to fit it, as PNG.
pub fn emoji_image(bytes: &[u8], max_pixels: u64) -> Result<(Vec<u8>, &'static str), PictureError> {
    let format = image::guess_format(bytes).map_err(|e| PictureError::NotAnImage(e.to_string()))?;
    let mime = match format {
        ImageFormat::Gif => "image/gif",
        ImageFormat::Png => "image/png",
        ImageFormat::Jpeg => "image/jpeg",
        ImageFormat::WebP => "image/webp",
        ImageFormat::Bmp => "image/bmp",
        other => {
            return Err(PictureError::NotAnImage(format!(
                "{other:?} is not an emoji format"
            )))
        }
    };
    let img = decode_bytes(bytes, max_pixels)?;
    let (width, height) = (img.width(), img.height());
    if width > EMOJI_MAX_ORIGINAL_SIDE || height > EMOJI_MAX_ORIGINAL_SIDE {
        return Err(PictureError::TooLarge {
            width,
            height,
            max: EMOJI_MAX_ORIGINAL_SIDE,
        });
    }
    if format == ImageFormat::Gif || (width <= EMOJI_SIDE && height <= EMOJI_SIDE) {
        return Ok((bytes.to_vec(), mime));
    }
    let fitted = img.resize(EMOJI_SIDE, EMOJI_SIDE, FilterType::Lanczos3);
    Ok((png(&fitted)?, "image/png"))
}

/// The content type of stored picture bytes (emoji keep their uploaded format).
pub fn content_type(bytes: &[u8]) -> &'static str {
    match image::guess_format(bytes) {
        Ok(ImageFormat::Gif) => "image/gif",
        Ok(ImageFormat::Jpeg) => "image/jpeg",
        Ok(ImageFormat::WebP) => "image/webp",
        Ok(ImageFormat::Bmp) => "image/bmp",
        _ => "image/png",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(png_bytes: &[u8]) -> RgbaImage {
        image::load_from_memory(png_bytes).unwrap().to_rgba8()
    }

    #[test]
    fn the_default_picture_is_a_128px_png_with_a_white_initial_on_the_users_colour() {
        let bytes = default_profile("alice", b"some-user-id").unwrap();
        assert_eq!(image::guess_format(&bytes).unwrap(), ImageFormat::Png);
        let img = decoded(&bytes);
        assert_eq!(img.dimensions(), (PROFILE_SIDE, PROFILE_SIDE));
        let background = *img.get_pixel(2, 2);
        let [r, g, b] = PALETTE[colour_index(b"some-user-id")];
        assert_eq!(background, Rgba([r, g, b, 255]));
        // The letter: some pixels near the centre are (almost) white.
        let white = img
            .pixels()
            .filter(|p| p.0[0] > 240 && p.0[1] > 240 && p.0[2] > 240)
            .count();
        assert!(white > 100, "only {white} white pixels");
        // Same user, same picture; another user's initial differs.
        assert_eq!(default_profile("alice", b"some-user-id").unwrap(), bytes);
        assert_ne!(default_profile("bob", b"some-user-id").unwrap(), bytes);
        // An empty name or a letter outside the font still draws.
        assert!(default_profile("", b"x").is_ok());
        assert!(default_profile("語", b"x").is_ok());
    }

    #[test]
    fn an_upload_becomes_its_centre_square_at_128px() {
        let mut upload = Vec::new();
        let rgb = DynamicImage::ImageRgb8(
            DynamicImage::ImageRgba8(RgbaImage::from_fn(400, 200, |x, _| {
                if (100..300).contains(&x) {
                    Rgba([255, 0, 0, 255])
                } else {
                    Rgba([0, 0, 255, 255])
                }
            }))
            .to_rgb8(),
        );
        rgb.write_to(&mut Cursor::new(&mut upload), ImageFormat::Jpeg)
            .unwrap();
        let picture = decoded(&profile_from_upload(&upload, 1 << 24).unwrap());
        assert_eq!(picture.dimensions(), (PROFILE_SIDE, PROFILE_SIDE));
        // The centre square was red all over.
        let centre = picture.get_pixel(64, 64);
        assert!(centre.0[0] > 200 && centre.0[2] < 60, "{centre:?}");
        let edge = picture.get_pixel(2, 64);
        assert!(
            edge.0[0] > 200,
            "the blue sides were cropped away: {edge:?}"
        );
    }

    #[test]
    fn bad_uploads_are_typed_errors() {
        assert!(matches!(
            profile_from_upload(b"not an image at all", 1 << 24),
            Err(PictureError::NotAnImage(_))
        ));
        let mut big = Vec::new();
        DynamicImage::ImageRgb8(image::RgbImage::new(300, 300))
            .write_to(&mut Cursor::new(&mut big), ImageFormat::Png)
            .unwrap();
        assert!(matches!(
            profile_from_upload(&big, 1000),
            Err(PictureError::TooManyPixels { .. })
        ));
    }

    #[test]
    fn emoji_images_are_fitted_to_128px_and_gifs_kept() {
        let mut large = Vec::new();
        DynamicImage::ImageRgb8(image::RgbImage::new(512, 256))
            .write_to(&mut Cursor::new(&mut large), ImageFormat::Png)
            .unwrap();
        let (fitted, mime) = emoji_image(&large, 1 << 24).unwrap();
        assert_eq!(mime, "image/png");
        assert_eq!(decoded(&fitted).dimensions(), (128, 64));
        let mut small = Vec::new();
        DynamicImage::ImageRgb8(image::RgbImage::new(32, 32))
            .write_to(&mut Cursor::new(&mut small), ImageFormat::Gif)
            .unwrap();
        let (kept, mime) = emoji_image(&small, 1 << 24).unwrap();
        assert_eq!((kept, mime), (small, "image/gif"));
        let mut huge = Vec::new();
        DynamicImage::ImageRgb8(image::RgbImage::new(1100, 10))
            .write_to(&mut Cursor::new(&mut huge), ImageFormat::Png)
            .unwrap();
        assert!(matches!(
            emoji_image(&huge, 1 << 24),
            Err(PictureError::TooLarge { .. })
        ));
        assert!(emoji_image(b"GIF89a but not really", 1 << 24).is_err());
    }
}
