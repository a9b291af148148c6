//! Splitting PEM text into blocks, each decoded on its own.
//!
//! `pem::parse_many` fails the whole input when one block is bad; the bundling rule must
//! skip and report a bad block of `old` and still use the others, and should decode `old`
//! only up to the block it carries. So blocks are located here (the `-----BEGIN`/`-----END`
//! lines) and each one is decoded by the `pem` crate. Text between blocks, CRLF line endings
//! and surrounding whitespace are tolerated, as OpenSSL tolerates them.

use crate::error::{Error, Origin};

/// One PEM block: its 1-based position and its text, decoded only on demand.
pub(crate) struct Block<'a> {
    pub(crate) index: usize,
    text: Result<&'a [u8], &'static str>,
}

impl Block<'_> {
    /// The label of the BEGIN line (`CERTIFICATE`, `PRIVATE KEY`), read without decoding.
    pub(crate) fn label(&self) -> Option<&str> {
        let text = self.text.ok()?;
        let rest = &text[BEGIN.len()..];
        let end = find(rest, b"-----")?;
        std::str::from_utf8(&rest[..end]).ok()
    }

    /// Decodes the block (base64 and framing), or says why it cannot be.
    pub(crate) fn decode(&self) -> Result<pem::Pem, String> {
        let text = self.text.map_err(str::to_owned)?;
        let text = std::str::from_utf8(text).map_err(|_| "not ASCII text".to_owned())?;
        pem::parse(text.trim_end()).map_err(|e| e.to_string())
    }
}

/// Iterates over the PEM blocks of `input`, decoding each lazily.
pub(crate) fn blocks(input: &[u8]) -> Blocks<'_> {
    Blocks {
        rest: input,
        index: 0,
    }
}

pub(crate) struct Blocks<'a> {
    rest: &'a [u8],
    index: usize,
}

const BEGIN: &[u8] = b"-----BEGIN ";
const END: &[u8] = b"-----END ";

impl<'a> Iterator for Blocks<'a> {
    type Item = Block<'a>;

    fn next(&mut self) -> Option<Block<'a>> {
        let start = find(self.rest, BEGIN)?;
        self.index += 1;
        let block = &self.rest[start..];
        let body = BEGIN.len();
        let end = find(&block[body..], END).map(|i| i + body);
        let next_begin = find(&block[body..], BEGIN).map(|i| i + body);
        let end = match (end, next_begin) {
            (Some(end), Some(nb)) if nb < end => {
                self.rest = &block[nb..];
                return Some(
                    self.failed("no END line before the next BEGIN line (truncated PEM?)"),
                );
            }
            (Some(end), _) => end,
            (None, _) => {
                self.rest = &[];
                return Some(self.failed("no END line (truncated PEM?)"));
            }
        };
        let line_len = block[end..]
            .iter()
            .position(|&b| b == b'\n')
            .unwrap_or(block.len() - end);
        let text = &block[..end + line_len];
        self.rest = &block[end + line_len..];
        Some(Block {
            index: self.index,
            text: Ok(text),
        })
    }
}

impl<'a> Blocks<'a> {
    fn failed(&self, reason: &'static str) -> Block<'a> {
        Block {
            index: self.index,
            text: Err(reason),
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Decodes every block of `input`, which must all be `CERTIFICATE` blocks (at least one),
/// and returns their DER. The error names the block.
pub(crate) fn certificates(input: &[u8], origin: &Origin) -> Result<Vec<Vec<u8>>, Error> {
    let mut out = Vec::new();
    for block in blocks(input) {
        let pem = block.decode().map_err(|reason| Error::MalformedPem {
            origin: origin.clone(),
            block: block.index,
            reason,
        })?;
        if pem.tag() != "CERTIFICATE" {
            return Err(Error::NotACertificate {
                origin: origin.clone(),
                block: block.index,
                label: pem.tag().to_owned(),
            });
        }
        out.push(pem.into_contents());
    }
    if out.is_empty() {
        return Err(Error::NoPemBlock {
            origin: origin.clone(),
        });
    }
    Ok(out)
}

/// Encodes DER certificates as PEM with LF line endings (what rcgen and OpenSSL write).
pub(crate) fn encode_certificates<'a>(ders: impl IntoIterator<Item = &'a [u8]>) -> String {
    let config = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
    let mut out = String::new();
    for der in ders {
        out.push_str(&pem::encode_config(
            &pem::Pem::new("CERTIFICATE", der.to_vec()),
            config,
        ));
    }
    out
}

/// Parses one DER certificate, refusing trailing bytes: a block with junk after the
/// certificate would be copied verbatim into every bundle, and stricter TLS stacks reject
/// the whole file for it.
pub(crate) fn parse_certificate(
    der: &[u8],
) -> Result<x509_parser::certificate::X509Certificate<'_>, String> {
    match x509_parser::parse_x509_certificate(der) {
        Ok(([], cert)) => Ok(cert),
        Ok((rest, _)) => Err(format!("{} bytes after the certificate", rest.len())),
        Err(e) => Err(e.to_string()),
    }
}
