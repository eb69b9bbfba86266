//! Making an uploaded picture safe to show: refuse it from its header when it declares
//! more pixels than allowed (a small file can declare 50,000 × 50,000), decode it with
//! the decoder's memory bounded, turn it upright by its EXIF orientation, and encode
//! it again — which leaves every metadata block behind (EXIF, GPS, XMP, comments).
//! A picture larger than a thumbnail also gets one (long side [`THUMB_SIDE`]).
//!
//! Everything here is blocking CPU work: [`super::Files`] runs it on blocking threads,
//! a few at a time.

use std::fs::File;
use std::io::{BufReader, Cursor};
use std::path::Path;

use image::codecs::gif::{GifDecoder, GifEncoder, Repeat};
use image::codecs::jpeg::JpegEncoder;
use image::{
    AnimationDecoder, DynamicImage, Frame, ImageDecoder, ImageFormat, ImageReader, Limits,
};

use super::sniff::PictureFormat;

/// The long side of a thumbnail, in pixels.
pub const THUMB_SIDE: u32 = 800;
/// JPEG quality of re-encoded photos and thumbnails.
const JPEG_QUALITY: u8 = 85;

/// A picture made safe: its bytes, type and upright size, and a thumbnail when it is
/// larger than one.
#[derive(Debug)]
pub struct Processed {
    /// The re-encoded picture.
    pub bytes: Vec<u8>,
    /// Its type.
    pub mime: &'static str,
    /// The extension its name gets.
    pub extension: &'static str,
    /// Upright width.
    pub width: u32,
    /// Upright height.
    pub height: u32,
    /// A smaller copy (of [`thumbnail_mime`]).
    pub thumbnail: Option<Vec<u8>>,
}

/// Why a picture was refused.
#[derive(Debug, thiserror::Error)]
pub enum PictureError {
    /// More pixels than allowed, read from the header.
    #[error("the picture is {width} × {height} pixels; at most {limit} pixels are taken")]
    TooManyPixels {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
        /// The limit.
        limit: u64,
    },
    /// Not readable as the picture its bytes announce.
    #[error("the picture cannot be read: {0}")]
    Unreadable(String),
}

impl From<image::ImageError> for PictureError {
    fn from(err: image::ImageError) -> Self {
        PictureError::Unreadable(err.to_string())
    }
}

impl From<std::io::Error> for PictureError {
    fn from(err: std::io::Error) -> Self {
        PictureError::Unreadable(err.to_string())
    }
}

/// Decodes the picture in `path` (of `format`, sniffed from its bytes) and encodes it
/// again, upright and without metadata, refusing more than `max_pixels`.
pub fn process(
    path: &Path,
    format: PictureFormat,
    max_pixels: u64,
) -> Result<Processed, PictureError> {
    // The size from the header alone (imagesize reads a few bytes and decompresses
    // nothing), so a picture declaring too many pixels is refused as that, before any
    // decoder — whose own header reading may inflate chunks — sees it.
    let declared =
        imagesize::size(path).map_err(|err| PictureError::Unreadable(err.to_string()))?;
    let width = u32::try_from(declared.width).unwrap_or(u32::MAX);
    let height = u32::try_from(declared.height).unwrap_or(u32::MAX);
    check_pixels(width, height, 1, max_pixels)?;
    let open =
        || -> Result<BufReader<File>, PictureError> { Ok(BufReader::new(File::open(path)?)) };
    if format == PictureFormat::Gif {
        let mut decoder = GifDecoder::new(open()?)?;
        decoder.set_limits(limits(max_pixels))?;
        return animation(decoder, max_pixels);
    }
    let image_format = match format {
        PictureFormat::Jpeg => ImageFormat::Jpeg,
        PictureFormat::Png => ImageFormat::Png,
        PictureFormat::WebP | PictureFormat::Gif => ImageFormat::WebP,
    };
    // Every decoder is bounded from its construction (some read ahead while making
    // sense of the header, and not all take limits set later).
    let mut reader = ImageReader::with_format(open()?, image_format);
    reader.limits(limits(max_pixels));
    let mut decoder = reader.into_decoder()?;
    let (width, height) = decoder.dimensions();
    check_pixels(width, height, 1, max_pixels)?;
    let orientation = decoder.orientation()?;
    let mut picture = DynamicImage::from_decoder(decoder)?;
    picture.apply_orientation(orientation);
    // Photos stay JPEG; anything with transparency becomes PNG (so does a WebP, which
    // browsers show but not every program people download it into).
    let (bytes, mime, extension) = match format {
        PictureFormat::Jpeg => (jpeg(&picture)?, "image/jpeg", "jpg"),
        _ if picture.color().has_alpha() || format == PictureFormat::Png => {
            (png(&picture)?, "image/png", "png")
        }
        _ => (jpeg(&picture)?, "image/jpeg", "jpg"),
    };
    let thumbnail = thumbnail(&picture, mime == "image/jpeg")?;
    Ok(Processed {
        bytes,
        mime,
        extension,
        width: picture.width(),
        height: picture.height(),
        thumbnail,
    })
}

/// A GIF, frame by frame, so an animation stays one. Each frame's own pixels count
/// against the limit, and no frame may be larger than the picture.
fn animation(
    decoder: GifDecoder<BufReader<File>>,
    max_pixels: u64,
) -> Result<Processed, PictureError> {
    let (width, height) = decoder.dimensions();
    check_pixels(width, height, 1, max_pixels)?;
    let mut frames: Vec<Frame> = Vec::new();
    let mut pixels: u64 = 0;
    for frame in decoder.into_frames() {
        let frame = frame?;
        let (w, h) = frame.buffer().dimensions();
        if w > width || h > height {
            return Err(PictureError::Unreadable(format!(
                "a {w} × {h} frame in a {width} × {height} picture"
            )));
        }
        pixels = pixels.saturating_add(u64::from(w) * u64::from(h));
        if pixels > max_pixels {
            return Err(PictureError::TooManyPixels {
                width,
                height,
                limit: max_pixels,
            });
        }
        frames.push(frame);
    }
    let Some(first) = frames.first() else {
        return Err(PictureError::Unreadable("the GIF has no frames".into()));
    };
    let still = DynamicImage::ImageRgba8(first.buffer().clone());
    let thumbnail = thumbnail(&still, false)?;
    let mut bytes = Vec::new();
    {
        // Speed 10 of 30: quantising at speed 1 takes seconds a frame on big pictures.
        let mut encoder = GifEncoder::new_with_speed(&mut bytes, 10);
        encoder.set_repeat(Repeat::Infinite)?;
        encoder.encode_frames(frames)?;
    }
    Ok(Processed {
        bytes,
        mime: "image/gif",
        extension: "gif",
        width,
        height,
        thumbnail,
    })
}

/// The decoder's bounds: no side beyond what the pixel limit allows at all, and memory
/// for the limit's pixels at 4 bytes each (plus a margin for the decoder's own tables).
fn limits(max_pixels: u64) -> Limits {
    let mut limits = Limits::default();
    limits.max_alloc = Some(max_pixels.saturating_mul(4).saturating_add(64 << 20));
    limits
}

fn check_pixels(width: u32, height: u32, frames: u64, limit: u64) -> Result<(), PictureError> {
    let pixels = u64::from(width)
        .saturating_mul(u64::from(height))
        .saturating_mul(frames);
    if pixels > limit {
        return Err(PictureError::TooManyPixels {
            width,
            height,
            limit,
        });
    }
    Ok(())
}

fn jpeg(picture: &DynamicImage) -> Result<Vec<u8>, PictureError> {
    let mut bytes = Vec::new();
    let encoder = JpegEncoder::new_with_quality(&mut bytes, JPEG_QUALITY);
    DynamicImage::ImageRgb8(picture.to_rgb8()).write_with_encoder(encoder)?;
    Ok(bytes)
}

fn png(picture: &DynamicImage) -> Result<Vec<u8>, PictureError> {
    let mut bytes = Cursor::new(Vec::new());
    picture.write_to(&mut bytes, ImageFormat::Png)?;
    Ok(bytes.into_inner())
}

/// A copy whose long side is [`THUMB_SIDE`], for a picture larger than that: JPEG
/// for a JPEG, PNG for the rest (which may have transparency) — see
/// [`thumbnail_mime`].
fn thumbnail(picture: &DynamicImage, as_jpeg: bool) -> Result<Option<Vec<u8>>, PictureError> {
    if picture.width().max(picture.height()) <= THUMB_SIDE {
        return Ok(None);
    }
    let small = picture.thumbnail(THUMB_SIDE, THUMB_SIDE);
    Ok(Some(if as_jpeg { jpeg(&small)? } else { png(&small)? }))
}

/// The type of the thumbnail of a picture of type `mime`.
pub fn thumbnail_mime(mime: &str) -> &'static str {
    if mime == "image/jpeg" {
        "image/jpeg"
    } else {
        "image/png"
    }
}
