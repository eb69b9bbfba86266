//! A file's type from its first bytes — never from its name or the client's header,
//! both of which the uploader chooses.

/// What the first bytes say a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniffed {
    /// A picture natter decodes, re-encodes and shows inline.
    Picture(PictureFormat),
    /// Anything else: stored as it is and only ever served as a download, under this
    /// type and with this extension (if one is known).
    Other {
        /// The `Content-Type` it is served with.
        mime: &'static str,
        /// The extension its name gets, when the type has one.
        extension: Option<&'static str>,
    },
}

/// The picture formats natter takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PictureFormat {
    /// JPEG (`FF D8 FF`).
    Jpeg,
    /// PNG (its 8-byte signature).
    Png,
    /// GIF87a / GIF89a.
    Gif,
    /// WebP (a RIFF container of type `WEBP`).
    WebP,
}

/// How many leading bytes [`sniff`] looks at.
pub const SNIFF_BYTES: usize = 512;

/// The type of a file whose first bytes (up to [`SNIFF_BYTES`]) are `head`.
pub fn sniff(head: &[u8]) -> Sniffed {
    if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Sniffed::Picture(PictureFormat::Jpeg);
    }
    if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Sniffed::Picture(PictureFormat::Png);
    }
    if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
        return Sniffed::Picture(PictureFormat::Gif);
    }
    if head.len() >= 12 && head.starts_with(b"RIFF") && &head[8..12] == b"WEBP" {
        return Sniffed::Picture(PictureFormat::WebP);
    }
    let other = |mime, extension| Sniffed::Other { mime, extension };
    if head.starts_with(b"%PDF-") {
        return other("application/pdf", Some("pdf"));
    }
    if head.starts_with(b"PK\x03\x04") {
        return other("application/zip", None);
    }
    if looks_like_text(head) {
        // HTML and SVG land here too: served as a plain-text download, never rendered.
        return other("text/plain; charset=utf-8", None);
    }
    other("application/octet-stream", None)
}

/// UTF-8 without NUL bytes (a multi-byte character cut off at the end still counts).
fn looks_like_text(head: &[u8]) -> bool {
    if head.is_empty() || head.contains(&0) {
        return false;
    }
    match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(err) => err.error_len().is_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pictures_are_known_by_their_signatures_whatever_the_name() {
        assert_eq!(
            sniff(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10]),
            Sniffed::Picture(PictureFormat::Jpeg)
        );
        assert_eq!(
            sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"),
            Sniffed::Picture(PictureFormat::Png)
        );
        assert_eq!(sniff(b"GIF89a\x01\0"), Sniffed::Picture(PictureFormat::Gif));
        assert_eq!(
            sniff(b"RIFF\x24\0\0\0WEBPVP8 "),
            Sniffed::Picture(PictureFormat::WebP)
        );
        // A RIFF that is not WebP (a WAV) is not a picture.
        assert!(matches!(
            sniff(b"RIFF\x24\0\0\0WAVEfmt "),
            Sniffed::Other { .. }
        ));
    }

    #[test]
    fn markup_is_text_and_binary_is_a_download() {
        let text = |head: &[u8]| {
            sniff(head)
                == Sniffed::Other {
                    mime: "text/plain; charset=utf-8",
                    extension: None,
                }
        };
        assert!(text(
            b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>"
        ));
        assert!(text(b"<!doctype html><script>alert(1)</script>"));
        assert!(text("caf\u{e9}".as_bytes()));
        // Cut inside a multi-byte character: still text.
        assert!(text(&"caf\u{e9}".as_bytes()[..4]));
        assert_eq!(
            sniff(b"%PDF-1.7\n"),
            Sniffed::Other {
                mime: "application/pdf",
                extension: Some("pdf")
            }
        );
        for binary in [&b"\0\x01\x02"[..], &[0xC3, 0x28, 0x41], b""] {
            assert_eq!(
                sniff(binary),
                Sniffed::Other {
                    mime: "application/octet-stream",
                    extension: None
                }
            );
        }
    }
}
