//! Precompression of the built web client: a `.br` and a `.gz` beside every file the
//! server may serve compressed, so it never compresses at request time.
//!
//! Why at build time: brotli at its best setting shrinks the client's `.wasm` far more
//! than the fast levels a server can afford per request, and it costs seconds of CPU —
//! once per build here, never per visitor. The server picks the file the browser
//! accepts (`Accept-Encoding`) and falls back to the plain one.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

/// Extensions worth compressing (the page itself is served by the server, with its
/// policy, and is tiny).
const COMPRESSIBLE: &[&str] = &["js", "wasm", "css", "svg", "json", "txt"];

/// Sizes of one file: plain, brotli, gzip.
pub struct Sizes {
    /// The file's name.
    pub name: String,
    /// Bytes as built.
    pub plain: u64,
    /// Bytes of the `.br`.
    pub brotli: u64,
    /// Bytes of the `.gz`.
    pub gzip: u64,
}

/// Writes `<file>.br` and `<file>.gz` beside every compressible file in `dir` and says
/// what it saved.
pub fn precompress(dir: &Path) -> Result<Vec<Sizes>> {
    let mut sizes = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        let compressible = path
            .extension()
            .and_then(|ext| ext.to_str())
            .is_some_and(|ext| COMPRESSIBLE.contains(&ext));
        if !path.is_file() || !compressible {
            continue;
        }
        let plain = std::fs::read(&path)?;
        let brotli = brotli_best(&plain)?;
        let gzip = gzip_best(&plain)?;
        let with_suffix = |suffix: &str| {
            let mut name = path.clone().into_os_string();
            name.push(suffix);
            name
        };
        std::fs::write(with_suffix(".br"), &brotli)?;
        std::fs::write(with_suffix(".gz"), &gzip)?;
        sizes.push(Sizes {
            name: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            plain: plain.len() as u64,
            brotli: brotli.len() as u64,
            gzip: gzip.len() as u64,
        });
    }
    sizes.sort_by_key(|file| std::cmp::Reverse(file.plain));
    for file in &sizes {
        println!(
            "    {:<48} {:>9} plain  {:>9} br  {:>9} gz",
            file.name,
            kib(file.plain),
            kib(file.brotli),
            kib(file.gzip)
        );
    }
    Ok(sizes)
}

fn kib(bytes: u64) -> String {
    format!("{:.1} KiB", bytes as f64 / 1024.0)
}

/// Brotli at quality 11 with a 4 MiB window: slow, and smallest.
fn brotli_best(data: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    {
        let mut writer = brotli::CompressorWriter::new(&mut out, 64 * 1024, 11, 22);
        writer.write_all(data)?;
        writer.flush()?;
    }
    Ok(out)
}

/// gzip at level 9, for browsers and proxies without brotli.
fn gzip_best(data: &[u8]) -> Result<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(data)?;
    Ok(encoder.finish()?)
}
