//! Pictures and files over the real server: upload over HTTP as a guest, send in a
//! message, another member receives it and fetches the picture and its thumbnail;
//! what pictures lose on the way (EXIF, GPS) and how they turn upright; what is
//! refused (huge declared pixels, size, quotas, strangers' files); and how every
//! file is served (type by bytes, sandbox, inline only for pictures, ranges).
//!
//! Why one long file: every test uploads real pictures through the same helpers (the
//! JPEG with EXIF, the PNG bomb, the guest's `Authorization`) against a real server.

mod common;

use std::io::Cursor;
use std::time::{Duration, Instant};

use common::http::{request_bytes, BinaryResponse};
use common::*;
use image::{DynamicImage, ImageEncoder, RgbImage, Rgba, RgbaImage};
use natter_protocol::*;

/// A server whose files live in a directory of the test's own.
async fn server_with(
    tweak: impl FnOnce(&mut natter_server::Config),
) -> (TestServer, tempfile::TempDir, tempfile::TempDir) {
    let (dir, db) = temp_db();
    let files = tempfile::tempdir().expect("temp dir");
    let mut config = natter_server::Config::for_tests(sqlite_url(&db));
    config.files_dir = files.path().to_path_buf();
    tweak(&mut config);
    (TestServer::start_with(config).await, dir, files)
}

/// `Authorization: Guest <id>:<secret>` for a client's guest identity.
fn guest_auth(client: &Client) -> String {
    let creds = client.credentials.clone().expect("a guest identity");
    format!("Guest {}:{}", creds.user_id.0, creds.secret)
}

async fn upload(server: &TestServer, client: &Client, name: &str, bytes: &[u8]) -> BinaryResponse {
    let auth = guest_auth(client);
    request_bytes(
        server.addr,
        "POST",
        &format!("/api/uploads?name={name}"),
        &[("Authorization", &auth)],
        bytes,
    )
    .await
}

async fn uploaded(server: &TestServer, client: &Client, name: &str, bytes: &[u8]) -> Attachment {
    let answer = upload(server, client, name, bytes).await;
    assert_eq!(
        answer.status,
        201,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    answer.json()
}

async fn fetch(server: &TestServer, path: &str, headers: &[(&str, &str)]) -> BinaryResponse {
    request_bytes(server.addr, "GET", path, headers, &[]).await
}

/// A `width` × `height` photo-like JPEG (a gradient), with `exif` as its APP1 block.
fn jpeg(width: u32, height: u32, exif: Option<Vec<u8>>) -> Vec<u8> {
    let picture = RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x * 255 / width) as u8, (y * 255 / height) as u8, 128])
    });
    let mut bytes = Vec::new();
    let mut encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 90);
    if let Some(exif) = exif {
        encoder.set_exif_metadata(exif).expect("jpeg takes exif");
    }
    encoder
        .write_image(
            picture.as_raw(),
            width,
            height,
            image::ExtendedColorType::Rgb8,
        )
        .expect("encodes");
    bytes
}

fn png(width: u32, height: u32) -> Vec<u8> {
    let picture = RgbaImage::from_pixel(width, height, Rgba([10, 200, 30, 128]));
    let mut bytes = Cursor::new(Vec::new());
    DynamicImage::ImageRgba8(picture)
        .write_to(&mut bytes, image::ImageFormat::Png)
        .expect("encodes");
    bytes.into_inner()
}

/// A little-endian EXIF block: orientation 6 (the camera was turned: rotate 90°
/// clockwise to show upright), a description naming a home, and a GPS directory.
fn exif_turned_with_gps() -> Vec<u8> {
    let mut tiff = b"II\x2a\x00\x08\x00\x00\x00".to_vec();
    let entries: u16 = 3;
    let ifd0_len = 2 + entries as u32 * 12 + 4;
    let description_at = 8 + ifd0_len;
    let description = b"HOME-AT-51.5007N-0.1246W\0";
    let gps_at = description_at + description.len() as u32;
    tiff.extend_from_slice(&entries.to_le_bytes());
    // ImageDescription, ASCII, at description_at
    tiff.extend_from_slice(&0x010Eu16.to_le_bytes());
    tiff.extend_from_slice(&2u16.to_le_bytes());
    tiff.extend_from_slice(&(description.len() as u32).to_le_bytes());
    tiff.extend_from_slice(&description_at.to_le_bytes());
    // Orientation, SHORT, 6
    tiff.extend_from_slice(&0x0112u16.to_le_bytes());
    tiff.extend_from_slice(&3u16.to_le_bytes());
    tiff.extend_from_slice(&1u32.to_le_bytes());
    tiff.extend_from_slice(&[6, 0, 0, 0]);
    // GPSInfo, LONG, pointer
    tiff.extend_from_slice(&0x8825u16.to_le_bytes());
    tiff.extend_from_slice(&4u16.to_le_bytes());
    tiff.extend_from_slice(&1u32.to_le_bytes());
    tiff.extend_from_slice(&gps_at.to_le_bytes());
    tiff.extend_from_slice(&0u32.to_le_bytes());
    tiff.extend_from_slice(description);
    // GPS directory: GPSLatitudeRef "N"
    tiff.extend_from_slice(&1u16.to_le_bytes());
    tiff.extend_from_slice(&0x0001u16.to_le_bytes());
    tiff.extend_from_slice(&2u16.to_le_bytes());
    tiff.extend_from_slice(&2u32.to_le_bytes());
    tiff.extend_from_slice(b"N\0\0\0");
    tiff.extend_from_slice(&0u32.to_le_bytes());
    tiff
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn a_picture_goes_up_rides_a_message_and_comes_back_upright_without_its_metadata() {
    let (server, _db, _files) = server_with(|_| {}).await;
    let mut ann = server.user("Ann").await;
    let mut bo = server.user("Bo").await;
    let (room, _) = ann.join_channel(DEFAULT_CHANNEL).await;
    bo.join_channel(DEFAULT_CHANNEL).await;

    // A 1200 × 900 photo taken with the camera turned, with a home's GPS position.
    let original = jpeg(1200, 900, Some(exif_turned_with_gps()));
    assert!(contains(&original, b"HOME-AT-51.5007N"));
    let photo = uploaded(&server, &ann, "beach.JPG", &original).await;
    assert_eq!(photo.mime, "image/jpeg");
    assert_eq!(photo.name, "beach.jpg");
    // Upright: the 1200 × 900 frame is shown 900 wide and 1200 tall.
    assert_eq!((photo.width, photo.height), (Some(900), Some(1200)));

    ann.send(ClientMsg::Send {
        reply_to: None,
        room,
        client_id: "with-photo".into(),
        text: String::new(),
        attachments: vec![photo.id.clone()],
    })
    .await;
    let got = bo
        .recv_until(|m| match m {
            ServerMsg::Message { message } if !message.attachments.is_empty() => {
                Some(message.clone())
            }
            _ => None,
        })
        .await;
    assert_eq!(got.attachments, std::slice::from_ref(&photo));
    assert_eq!(got.text, "");

    let served = fetch(&server, &format!("/api/files/{}", photo.id.0), &[]).await;
    assert_eq!(served.status, 200);
    assert_eq!(served.header("content-type"), Some("image/jpeg"));
    assert!(served
        .header("content-disposition")
        .is_some_and(|d| d.starts_with("inline;")));
    assert_eq!(
        served.header("content-security-policy"),
        Some("sandbox; default-src 'none'")
    );
    assert_eq!(served.header("x-content-type-options"), Some("nosniff"));
    assert!(served
        .header("cache-control")
        .is_some_and(|c| c.contains("immutable")));
    assert_eq!(served.body.len() as u64, photo.size);
    // Every metadata block is gone: no EXIF, no description, no GPS.
    assert!(!contains(&served.body, b"Exif\0\0"));
    assert!(!contains(&served.body, b"HOME-AT"));
    let decoded = image::load_from_memory(&served.body).expect("a picture");
    assert_eq!((decoded.width(), decoded.height()), (900, 1200));

    let thumb = fetch(&server, &format!("/api/files/{}/thumb", photo.id.0), &[]).await;
    assert_eq!(thumb.status, 200);
    assert_eq!(thumb.header("content-type"), Some("image/jpeg"));
    let small = image::load_from_memory(&thumb.body).expect("a thumbnail");
    assert_eq!((small.width(), small.height()), (600, 800));

    // History carries the attachment too (a newcomer, a reload).
    let (page, _) = bo.history_page(room, 1_000).await;
    assert!(page.iter().any(|m| m.attachments == [photo.clone()]));

    // A range of it, as a browser resuming a download asks.
    let range = fetch(
        &server,
        &format!("/api/files/{}", photo.id.0),
        &[("Range", "bytes=0-9")],
    )
    .await;
    assert_eq!(range.status, 206);
    assert_eq!(range.body, served.body[..10]);
    server.stop().await;
}

#[tokio::test]
async fn a_small_file_declaring_fifty_thousand_squared_pixels_is_refused_unread() {
    let (server, _db, _files) = server_with(|_| {}).await;
    let ann = server.user("Ann").await;
    // A PNG signature and a header declaring 50,000 × 50,000 (10 GB as RGBA), then
    // nothing worth decoding.
    let mut header = Vec::new();
    header.extend_from_slice(&50_000u32.to_be_bytes());
    header.extend_from_slice(&50_000u32.to_be_bytes());
    header.extend_from_slice(&[8, 6, 0, 0, 0]);
    let mut bomb = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut bomb, b"IHDR", &header);
    // An empty zlib stream: the pixels a decoder would be asked to inflate.
    chunk(&mut bomb, b"IDAT", b"\x78\x9c\x03\x00\x00\x00\x00\x01");
    chunk(&mut bomb, b"IEND", b"");
    assert!(bomb.len() < 100);
    let started = Instant::now();
    let rss_before = resident_bytes();
    let answer = upload(&server, &ann, "small.png", &bomb).await;
    // Nothing was allocated for its 2.5 billion pixels (the server runs in this process).
    let grown = resident_bytes().saturating_sub(rss_before);
    assert!(grown < 64 << 20, "resident memory grew by {grown} bytes");
    assert_eq!(answer.status, 422);
    let error: account::ApiError = answer.json();
    assert_eq!(
        error.code,
        account::ApiErrorCode::TooManyPixels,
        "{}",
        error.message
    );
    assert!(error.message.contains("50000 × 50000"), "{}", error.message);
    // Refused from the header: no time spent decoding.
    assert!(started.elapsed() < Duration::from_secs(5));
    server.stop().await;
}

/// This process's resident memory (`VmRSS`), in bytes.
fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("procfs");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Appends a PNG chunk: length, type, data, CRC.
fn chunk(png: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    png.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let mut typed = kind.to_vec();
    typed.extend_from_slice(data);
    png.extend_from_slice(&typed);
    png.extend_from_slice(&crc32(&typed).to_be_bytes());
}

/// CRC-32 (IEEE) of a PNG chunk's type and data.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[tokio::test]
async fn markup_is_only_ever_a_sandboxed_download_and_bytes_decide_the_type() {
    let (server, _db, _files) = server_with(|_| {}).await;
    let ann = server.user("Ann").await;
    for (name, bytes) in [
        (
            "cat.svg",
            &b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>"[..],
        ),
        (
            "page.html",
            b"<!doctype html><script>alert(document.cookie)</script>",
        ),
    ] {
        let file = uploaded(&server, &ann, name, bytes).await;
        assert_eq!(file.mime, "text/plain; charset=utf-8", "{name}");
        assert_eq!(file.name, name);
        assert_eq!((file.width, file.height), (None, None));
        let served = fetch(&server, &format!("/api/files/{}", file.id.0), &[]).await;
        assert_eq!(served.status, 200);
        assert_eq!(
            served.header("content-type"),
            Some("text/plain; charset=utf-8")
        );
        assert!(served
            .header("content-disposition")
            .is_some_and(|d| d.starts_with(&format!("attachment; filename=\"{name}\""))));
        assert_eq!(
            served.header("content-security-policy"),
            Some("sandbox; default-src 'none'")
        );
        assert_eq!(served.body, bytes);
        // Not a picture: no thumbnail.
        let thumb = fetch(&server, &format!("/api/files/{}/thumb", file.id.0), &[]).await;
        assert_eq!(thumb.status, 404);
    }
    // A PNG named like a text file is a PNG, and its name says so.
    let disguised = uploaded(&server, &ann, "notes.txt", &png(40, 30)).await;
    assert_eq!(disguised.mime, "image/png");
    assert_eq!(disguised.name, "notes.png");
    assert_eq!((disguised.width, disguised.height), (Some(40), Some(30)));
    // A small picture is its own thumbnail.
    let thumb = fetch(
        &server,
        &format!("/api/files/{}/thumb", disguised.id.0),
        &[],
    )
    .await;
    assert_eq!(thumb.status, 200);
    assert_eq!(thumb.header("content-type"), Some("image/png"));
    server.stop().await;
}

#[tokio::test]
async fn only_the_uploader_sends_a_file_and_ids_cannot_be_guessed() {
    let (server, _db, _files) = server_with(|_| {}).await;
    let mut ann = server.user("Ann").await;
    let mut bo = server.user("Bo").await;
    let (room, _) = ann.join_channel(DEFAULT_CHANNEL).await;
    bo.join_channel(DEFAULT_CHANNEL).await;
    let file = uploaded(&server, &ann, "a.png", &png(8, 8)).await;
    assert_eq!(file.id.0.len(), 26, "128 random bits");

    // Bo names Ann's file: refused.
    bo.send(ClientMsg::Send {
        reply_to: None,
        room,
        client_id: "steal".into(),
        text: "mine now".into(),
        attachments: vec![file.id.clone()],
    })
    .await;
    assert_eq!(bo.expect_error().await.0, ErrorCode::NoSuchFile);
    // Eleven files: refused.
    ann.send(ClientMsg::Send {
        reply_to: None,
        room,
        client_id: "many".into(),
        text: String::new(),
        attachments: vec![file.id.clone(); 11],
    })
    .await;
    assert_eq!(ann.expect_error().await.0, ErrorCode::TooManyFiles);
    // No text and no file: still refused.
    ann.send(ClientMsg::Send {
        reply_to: None,
        room,
        client_id: "empty".into(),
        text: " ".into(),
        attachments: vec![],
    })
    .await;
    assert_eq!(ann.expect_error().await.0, ErrorCode::InvalidText);

    // A resend with the same client_id is acknowledged with the same seq, once.
    let send = ClientMsg::Send {
        reply_to: None,
        room,
        client_id: "once".into(),
        text: "look".into(),
        attachments: vec![file.id.clone()],
    };
    ann.send(send.clone()).await;
    let first = ann
        .recv_until(|m| match m {
            ServerMsg::Ack { client_id, seq, .. } if client_id == "once" => Some(*seq),
            _ => None,
        })
        .await;
    ann.send(send).await;
    let again = ann
        .recv_until(|m| match m {
            ServerMsg::Ack { client_id, seq, .. } if client_id == "once" => Some(*seq),
            _ => None,
        })
        .await;
    assert_eq!(first, again);
    // Once sent here, the file cannot go to another room (it lives as long as this one).
    ann.send(ClientMsg::CreateChannel {
        name: "elsewhere".into(),
        delete_when_empty: false,
    })
    .await;
    let (elsewhere, _) = ann.expect_joined().await;
    ann.send(ClientMsg::Send {
        reply_to: None,
        room: elsewhere,
        client_id: "forward".into(),
        text: "again".into(),
        attachments: vec![file.id.clone()],
    })
    .await;
    assert_eq!(ann.expect_error().await.0, ErrorCode::NoSuchFile);

    // Someone without the message has no id to ask for; guessing finds nothing.
    for path in [
        "/api/files/aaaaaaaaaaaaaaaaaaaaaaaaaa".to_string(),
        "/api/files/..%2F..%2Fetc%2Fpasswd".to_string(),
        format!("/api/files/{}x", file.id.0),
    ] {
        let answer = fetch(&server, &path, &[]).await;
        assert_eq!(answer.status, 404, "{path}");
    }
    server.stop().await;
}

#[tokio::test]
async fn uploads_say_who_they_are_and_meet_their_limits() {
    let (server, _db, _files) = server_with(|config| {
        config.max_upload_bytes = 2_000;
        config.upload_bytes_per_day = 3_000;
        config.allowed_origins = vec!["https://chat.example".into()];
    })
    .await;
    let ann = server.user("Ann").await;
    let text = |n: usize| "x".repeat(n).into_bytes();

    // Nobody, a wrong secret, another site: refused before anything is stored.
    let anonymous = request_bytes(
        server.addr,
        "POST",
        "/api/uploads?name=a.txt",
        &[],
        &text(10),
    )
    .await;
    assert_eq!(anonymous.status, 401);
    assert_eq!(
        anonymous.json::<account::ApiError>().code,
        account::ApiErrorCode::NotSignedIn
    );
    let wrong = format!("Guest {}:not-the-secret", ann.id().0);
    let forged = request_bytes(
        server.addr,
        "POST",
        "/api/uploads?name=a.txt",
        &[("Authorization", &wrong)],
        &text(10),
    )
    .await;
    assert_eq!(forged.status, 401);
    let auth = guest_auth(&ann);
    let foreign = request_bytes(
        server.addr,
        "POST",
        "/api/uploads?name=a.txt",
        &[("Authorization", &auth), ("Origin", "https://evil.example")],
        &text(10),
    )
    .await;
    assert_eq!(foreign.status, 403);

    // The wrong method, and a name said twice: typed refusals, like every /api answer.
    let listing = request_bytes(
        server.addr,
        "GET",
        "/api/uploads",
        &[("Authorization", &auth)],
        &[],
    )
    .await;
    assert_eq!(listing.status, 405);
    assert_eq!(
        listing.json::<account::ApiError>().code,
        account::ApiErrorCode::MethodNotAllowed
    );
    let twice = upload(&server, &ann, "a.txt&name=b.txt", &text(10)).await;
    assert_eq!(twice.status, 400);
    assert_eq!(
        twice.json::<account::ApiError>().code,
        account::ApiErrorCode::BadRequest
    );

    // Over the size limit: 413, said in its own words.
    let big = upload(&server, &ann, "big.txt", &text(2_001)).await;
    assert_eq!(big.status, 413);
    assert_eq!(
        big.json::<account::ApiError>().code,
        account::ApiErrorCode::TooLarge
    );

    // The day's bytes: 1,500 + 1,500 fit, the next is refused — even after the files
    // went with a room that deleted itself (their rows are gone, the log is not).
    let mut ann = ann;
    ann.send(ClientMsg::CreateChannel {
        name: "shredder".into(),
        delete_when_empty: true,
    })
    .await;
    let (shredder, _) = ann.expect_joined().await;
    let first = uploaded(&server, &ann, "1.txt", &text(1_500)).await;
    let second = uploaded(&server, &ann, "2.txt", &text(1_500)).await;
    ann.say_with(shredder, "both", "", vec![first.id, second.id])
        .await;
    ann.send(ClientMsg::Leave { room: shredder }).await;
    ann.recv_until(|m| matches!(m, ServerMsg::Left { .. }).then_some(()))
        .await;
    let over = upload(&server, &ann, "3.txt", &text(10)).await;
    assert_eq!(over.status, 429);
    assert_eq!(
        over.json::<account::ApiError>().code,
        account::ApiErrorCode::QuotaExceeded
    );
    assert!(over.header("retry-after").is_some());

    server.stop().await;
}

#[tokio::test]
async fn uploads_a_minute_are_counted_per_person_and_per_address() {
    let (server, _db, _files) = server_with(|config| config.uploads_per_minute = 4).await;
    let bo = server.user("Bo").await;
    let mut statuses = Vec::new();
    for n in 0..5 {
        statuses.push(
            upload(&server, &bo, &format!("{n}.txt"), b"hello")
                .await
                .status,
        );
    }
    assert_eq!(statuses, [201, 201, 201, 201, 429]);
    let refused = upload(&server, &bo, "again.txt", b"hello").await;
    assert!(refused
        .json::<account::ApiError>()
        .message
        .contains("uploaded many files"));
    // A fresh guest from the same address meets the address's bucket.
    let newcomer = server.user("Cy").await;
    assert_eq!(
        upload(&server, &newcomer, "x.txt", b"hello").await.status,
        429
    );
    server.stop().await;
}

#[tokio::test]
async fn deleting_a_room_deletes_its_files() {
    let (server, _db, _files) = server_with(|_| {}).await;
    let mut ann = server.user("Ann").await;
    ann.send(ClientMsg::CreateChannel {
        name: "ephemeral".into(),
        delete_when_empty: true,
    })
    .await;
    let (room, _) = ann.expect_joined().await;
    let file = uploaded(&server, &ann, "gone.png", &png(16, 16)).await;
    ann.say_with(room, "c-1", "soon gone", vec![file.id.clone()])
        .await;
    let path = format!("/api/files/{}", file.id.0);
    assert_eq!(fetch(&server, &path, &[]).await.status, 200);
    ann.send(ClientMsg::Leave { room }).await;
    ann.recv_until(|m| matches!(m, ServerMsg::Left { .. }).then_some(()))
        .await;
    assert_eq!(fetch(&server, &path, &[]).await.status, 404);
    server.stop().await;
}

#[tokio::test]
async fn the_sweep_deletes_unsent_files_after_a_day_and_bytes_no_file_uses() {
    use natter_server::files::{FileSettings, Files};
    use natter_server::store::files::FileRecord;
    use natter_server::store::memory::MemoryStore;
    use natter_server::store::Store;

    let dir = tempfile::tempdir().expect("temp dir");
    let store: std::sync::Arc<dyn Store> = std::sync::Arc::new(MemoryStore::new());
    let files = Files::new(
        FileSettings {
            dir: dir.path().to_path_buf(),
            max_upload_bytes: 1_000,
            bytes_per_day: 1_000_000,
            max_image_pixels: 1_000_000,
            image_concurrency: 1,
            remote: None,
        },
        store.clone(),
    )
    .expect("local storage");
    // Two blobs on disk, written two hours ago: one an unsent upload of two days ago,
    // one a sent file's.
    let two_hours_ago = std::time::SystemTime::now() - Duration::from_secs(7_200);
    for hash in ["aa11", "bb22"] {
        let path = dir.path().join("blobs").join(&hash[..2]).join(hash);
        std::fs::create_dir_all(path.parent().expect("a folder")).expect("mkdir");
        std::fs::write(&path, hash).expect("write");
        std::fs::File::options()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_modified(two_hours_ago))
            .expect("set mtime");
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let record = |id: &str, blob: &str, created_at: i64| FileRecord {
        id: FileId(id.into()),
        uploader: UserId("ann".into()),
        blob: blob.into(),
        thumb: None,
        name: "x.txt".into(),
        mime: "text/plain; charset=utf-8".into(),
        size: 4,
        width: None,
        height: None,
        created_at,
        room: None,
    };
    store
        .create_file(&record(
            "unsentaaaaaaaaaaaaaaaaaaaa",
            "aa11",
            now - 2 * 86_400_000,
        ))
        .await
        .expect("stored");
    let mut sent = record("sentbbbbbbbbbbbbbbbbbbbbbb", "bb22", now - 2 * 86_400_000);
    sent.room = Some(RoomId(1));
    store.create_file(&sent).await.expect("stored");

    assert_eq!(files.sweep().await.expect("swept"), 1);
    assert!(
        !dir.path().join("blobs/aa/aa11").exists(),
        "the unsent file's bytes went"
    );
    assert!(
        dir.path().join("blobs/bb/bb22").exists(),
        "a sent file's bytes stay"
    );
    assert!(store
        .file(&FileId("unsentaaaaaaaaaaaaaaaaaaaa".into()))
        .await
        .expect("read")
        .is_none());
}

#[tokio::test]
async fn an_animation_stays_animated_and_a_webp_becomes_a_picture_every_program_opens() {
    use image::codecs::gif::{GifDecoder, GifEncoder, Repeat};
    use image::{AnimationDecoder, Delay, Frame};

    let (server, _db, _files) = server_with(|_| {}).await;
    let ann = server.user("Ann").await;

    // Three frames of 30 × 20.
    let mut gif = Vec::new();
    {
        let mut encoder = GifEncoder::new(&mut gif);
        encoder.set_repeat(Repeat::Infinite).expect("repeat");
        let frames = (0..3u8).map(|i| {
            Frame::from_parts(
                RgbaImage::from_pixel(30, 20, Rgba([i * 80, 40, 200, 255])),
                0,
                0,
                Delay::from_numer_denom_ms(100, 1),
            )
        });
        encoder.encode_frames(frames).expect("encodes");
    }
    let animation = uploaded(&server, &ann, "wave.gif", &gif).await;
    assert_eq!(animation.mime, "image/gif");
    assert_eq!((animation.width, animation.height), (Some(30), Some(20)));
    let served = fetch(&server, &format!("/api/files/{}", animation.id.0), &[]).await;
    let frames = GifDecoder::new(Cursor::new(served.body))
        .expect("a GIF")
        .into_frames()
        .collect_frames()
        .expect("frames");
    assert_eq!(frames.len(), 3, "every frame kept");

    // A lossless WebP with transparency comes back as a PNG of the same size.
    let mut webp = Vec::new();
    image::codecs::webp::WebPEncoder::new_lossless(&mut webp)
        .write_image(
            RgbaImage::from_pixel(24, 16, Rgba([200, 10, 10, 120])).as_raw(),
            24,
            16,
            image::ExtendedColorType::Rgba8,
        )
        .expect("encodes");
    let converted = uploaded(&server, &ann, "sticker.webp", &webp).await;
    assert_eq!(converted.mime, "image/png");
    assert_eq!(converted.name, "sticker.png");
    assert_eq!((converted.width, converted.height), (Some(24), Some(16)));
    server.stop().await;
}
