//! Undoing `Content-Encoding` so a compressed body can be scanned.
//!
//! gzip, deflate (zlib-wrapped, or raw as some clients send it) and brotli,
//! stacked as the header lists them. Decoding streams: output is produced as
//! input arrives, in bounded pieces. A body that inflates past
//! [`MAX_RATIO`] times its compressed size (once past [`RATIO_GRACE`]) is a
//! decompression bomb and is refused, as is any encoding not listed here:
//! what cannot be inspected is not sent.

use std::io::Write;

/// Largest decoded/encoded size ratio accepted once past [`RATIO_GRACE`].
pub const MAX_RATIO: u64 = 100;
/// Decoded bytes allowed before the ratio is enforced (small bodies
/// compress well legitimately).
pub const RATIO_GRACE: u64 = 1024 * 1024;
/// Encodings stacked at most.
const MAX_LAYERS: usize = 3;

/// Why a body cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// An encoding the proxy cannot undo.
    #[error("content encoding `{0}` cannot be inspected")]
    Unsupported(String),
    /// More layers than [`MAX_LAYERS`].
    #[error("{0} stacked content encodings are more than the proxy inspects")]
    TooManyLayers(usize),
    /// The data is not in the declared encoding.
    #[error("the body is not valid {encoding}: {reason}")]
    Corrupt {
        /// Which encoding failed.
        encoding: &'static str,
        /// What the decoder said.
        reason: String,
    },
    /// It inflates too much.
    #[error("the body inflates {decoded} bytes from {encoded} (over {MAX_RATIO}:1): a decompression bomb")]
    Bomb {
        /// Decoded so far.
        decoded: u64,
        /// Encoded so far.
        encoded: u64,
    },
}

enum Layer {
    Gzip(flate2::write::MultiGzDecoder<Vec<u8>>),
    /// "deflate" is zlib-wrapped by the standard, but some clients send raw
    /// deflate: the first two bytes decide.
    Sniffing(Vec<u8>),
    Zlib(flate2::write::ZlibDecoder<Vec<u8>>),
    RawDeflate(flate2::write::DeflateDecoder<Vec<u8>>),
    Brotli(Box<brotli_decompressor::DecompressorWriter<Vec<u8>>>),
}

/// Whether two bytes start a zlib stream (RFC 1950: deflate method, check bits).
fn zlib_header(b: &[u8]) -> bool {
    b.len() >= 2 && b[0] & 0x0f == 8 && (u16::from(b[0]) << 8 | u16::from(b[1])) % 31 == 0
}

/// Writes `input` into a decoder writing to a `Vec`, and takes what came out.
fn feed<W: Write>(
    w: &mut W,
    out: impl Fn(&mut W) -> &mut Vec<u8>,
    input: &[u8],
) -> std::io::Result<Vec<u8>> {
    w.write_all(input)?;
    Ok(std::mem::take(out(w)))
}

impl Layer {
    fn name(&self) -> &'static str {
        match self {
            Layer::Gzip(_) => "gzip",
            Layer::Sniffing(_) | Layer::Zlib(_) | Layer::RawDeflate(_) => "deflate",
            Layer::Brotli(_) => "br",
        }
    }

    fn corrupt(&self, e: std::io::Error) -> DecodeError {
        DecodeError::Corrupt {
            encoding: self.name(),
            reason: e.to_string(),
        }
    }

    /// Feeds `input`; returns what came out.
    fn push(&mut self, input: &[u8]) -> Result<Vec<u8>, DecodeError> {
        let result = match self {
            Layer::Gzip(d) => feed(d, |d| d.get_mut(), input),
            Layer::Sniffing(seen) => {
                seen.extend_from_slice(input);
                if seen.len() < 2 {
                    return Ok(Vec::new());
                }
                let buffered = std::mem::take(seen);
                *self = if zlib_header(&buffered) {
                    Layer::Zlib(flate2::write::ZlibDecoder::new(Vec::new()))
                } else {
                    Layer::RawDeflate(flate2::write::DeflateDecoder::new(Vec::new()))
                };
                return self.push(&buffered);
            }
            Layer::Zlib(d) => feed(d, |d| d.get_mut(), input),
            Layer::RawDeflate(d) => feed(d, |d| d.get_mut(), input),
            Layer::Brotli(d) => feed(d.as_mut(), |d| d.get_mut(), input),
        };
        result.map_err(|e| self.corrupt(e))
    }

    /// The end of the input: flushes what is left and checks the stream was complete.
    fn finish(&mut self) -> Result<Vec<u8>, DecodeError> {
        let result = match self {
            Layer::Gzip(d) => d.try_finish().map(|_| std::mem::take(d.get_mut())),
            Layer::Sniffing(seen) if seen.is_empty() => Ok(Vec::new()),
            Layer::Sniffing(_) => Err(std::io::Error::other("truncated")),
            Layer::Zlib(d) => d.try_finish().map(|_| std::mem::take(d.get_mut())),
            Layer::RawDeflate(d) => d.try_finish().map(|_| std::mem::take(d.get_mut())),
            Layer::Brotli(d) => d.close().map(|_| std::mem::take(d.get_mut())),
        };
        result.map_err(|e| self.corrupt(e))
    }
}

/// Decodes one body's stacked content encodings, enforcing the bounds.
pub struct BodyDecoder {
    /// Innermost (applied last by the sender) first.
    layers: Vec<Layer>,
    encoded: u64,
    decoded: u64,
}

impl BodyDecoder {
    /// A decoder for a `Content-Encoding` header value (its values joined);
    /// `None` when the body is not encoded (absent or `identity`).
    pub fn for_header(value: &str) -> Result<Option<Self>, DecodeError> {
        let names: Vec<String> = value
            .split(',')
            .map(|s| s.trim().to_ascii_lowercase())
            .filter(|s| !s.is_empty() && s != "identity")
            .collect();
        if names.is_empty() {
            return Ok(None);
        }
        if names.len() > MAX_LAYERS {
            return Err(DecodeError::TooManyLayers(names.len()));
        }
        let mut layers = Vec::new();
        // The last encoding listed was applied last, so it is undone first.
        for n in names.iter().rev() {
            layers.push(match n.as_str() {
                "gzip" | "x-gzip" => Layer::Gzip(flate2::write::MultiGzDecoder::new(Vec::new())),
                "deflate" => Layer::Sniffing(Vec::new()),
                "br" => Layer::Brotli(Box::new(brotli_decompressor::DecompressorWriter::new(
                    Vec::new(),
                    4096,
                ))),
                other => return Err(DecodeError::Unsupported(other.to_string())),
            });
        }
        Ok(Some(Self {
            layers,
            encoded: 0,
            decoded: 0,
        }))
    }

    fn account(&mut self, out: &[u8]) -> Result<(), DecodeError> {
        self.decoded += out.len() as u64;
        if self.decoded > RATIO_GRACE && self.decoded > MAX_RATIO * self.encoded.max(1) {
            return Err(DecodeError::Bomb {
                decoded: self.decoded,
                encoded: self.encoded,
            });
        }
        Ok(())
    }

    /// Feeds encoded bytes; returns the decoded bytes now available.
    pub fn push(&mut self, input: &[u8]) -> Result<Vec<u8>, DecodeError> {
        self.encoded += input.len() as u64;
        let mut data = input.to_vec();
        for layer in &mut self.layers {
            // Decode in slices so one small chunk cannot inflate into one
            // huge allocation before the ratio is checked.
            let mut out = Vec::new();
            for piece in data.chunks(16 * 1024) {
                out.extend(layer.push(piece)?);
                if out.len() as u64 > RATIO_GRACE && out.len() as u64 > MAX_RATIO * self.encoded {
                    return Err(DecodeError::Bomb {
                        decoded: self.decoded + out.len() as u64,
                        encoded: self.encoded,
                    });
                }
            }
            data = out;
        }
        self.account(&data)?;
        Ok(data)
    }

    /// The end of the body: the rest of the decoded bytes, or why the body
    /// was incomplete.
    pub fn finish(&mut self) -> Result<Vec<u8>, DecodeError> {
        if self.encoded == 0 {
            // No body at all (a HEAD response, a 204): nothing to decode.
            return Ok(Vec::new());
        }
        let mut carry: Vec<u8> = Vec::new();
        for layer in &mut self.layers {
            let mut out = if carry.is_empty() {
                Vec::new()
            } else {
                layer.push(&carry)?
            };
            out.extend(layer.finish()?);
            carry = out;
        }
        self.account(&carry)?;
        Ok(carry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn decode_all(header: &str, data: &[u8], chunk: usize) -> Result<Vec<u8>, DecodeError> {
        let mut d = BodyDecoder::for_header(header)?.expect("encoded");
        let mut out = Vec::new();
        for c in data.chunks(chunk) {
            out.extend(d.push(c)?);
        }
        out.extend(d.finish()?);
        Ok(out)
    }

    #[test]
    fn gzip_deflate_and_brotli_round_trip_in_any_chunking() {
        let text = b"the quick brown fox jumps over the lazy dog ".repeat(200);
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        zlib.write_all(&text).unwrap();
        let zlib = zlib.finish().unwrap();
        let mut raw = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        raw.write_all(&text).unwrap();
        let raw = raw.finish().unwrap();
        let mut br = Vec::new();
        {
            let mut w = brotli::CompressorWriter::new(&mut br, 4096, 5, 22);
            w.write_all(&text).unwrap();
        }
        let gz = gzip(&text);
        let stacked = gzip(&br);
        for chunk in [1usize, 7, 1000, 1 << 20] {
            assert_eq!(
                decode_all("gzip", &gz, chunk).unwrap(),
                text,
                "gzip/{chunk}"
            );
            assert_eq!(
                decode_all("deflate", &zlib, chunk).unwrap(),
                text,
                "zlib/{chunk}"
            );
            assert_eq!(
                decode_all("deflate", &raw, chunk).unwrap(),
                text,
                "raw/{chunk}"
            );
            assert_eq!(decode_all("br", &br, chunk).unwrap(), text, "br/{chunk}");
            assert_eq!(
                decode_all("br, gzip", &stacked, chunk).unwrap(),
                text,
                "br,gzip/{chunk}"
            );
        }
    }

    #[test]
    fn identity_is_no_decoding_and_unknown_encodings_are_refused() {
        assert!(BodyDecoder::for_header("identity").unwrap().is_none());
        assert!(BodyDecoder::for_header("").unwrap().is_none());
        assert!(matches!(
            BodyDecoder::for_header("zstd"),
            Err(DecodeError::Unsupported(e)) if e == "zstd"
        ));
        assert!(matches!(
            BodyDecoder::for_header("gzip, gzip, gzip, gzip"),
            Err(DecodeError::TooManyLayers(4))
        ));
    }

    #[test]
    fn bombs_and_corrupt_bodies_are_refused() {
        let bomb = gzip(&vec![0u8; 64 * 1024 * 1024]);
        let err = decode_all("gzip", &bomb, 16 * 1024).unwrap_err();
        assert!(matches!(err, DecodeError::Bomb { .. }), "{err}");
        let err = decode_all("gzip", b"this is not gzip at all", 4).unwrap_err();
        assert!(matches!(err, DecodeError::Corrupt { .. }), "{err}");
        let gz = gzip(b"hello world, truncated");
        let err = decode_all("gzip", &gz[..gz.len() - 6], 4).unwrap_err();
        assert!(matches!(err, DecodeError::Corrupt { .. }), "{err}");
    }
}
