//! Splitting PEM text into blocks, each decoded on its own.
//!
//! `pem::parse_many` fails the whole input when one block is bad; the bundling rule must
//! skip and report a bad block of `old` and still use the others, and should decode `old`
//! only up to the block it carries. So blocks are located here (the `-----BEGIN`/`-----END`
//! lines, found with `memchr`) and each body is decoded by the `base64` crate on demand (the
//! `pem` crate's parser collects characters one by one, a quarter of the time of a 10,000
//! certificate merge). Text between blocks, CRLF line endings and surrounding whitespace are
//! tolerated, as OpenSSL tolerates them; headers (`Proc-Type:`, encrypted keys) are not.

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

    /// Decodes the block (framing and base64): its label and contents, or why not.
    pub(crate) fn decode(&self) -> Result<(&str, Vec<u8>), String> {
        use base64::Engine as _;
        let text = self.text.map_err(str::to_owned)?;
        let label = self
            .label()
            .filter(|l| !l.is_empty())
            .ok_or("BEGIN line without a label")?;
        let body_start = memchr::memchr(b'\n', text).ok_or("nothing after the BEGIN line")? + 1;
        let end_at = memchr::memmem::rfind(text, END).ok_or("no END line")?;
        if end_at < body_start {
            return Err("END on the BEGIN line".into());
        }
        let end_line = text[end_at..].trim_ascii_end();
        let end_label = end_line
            .strip_prefix(END)
            .and_then(|l| l.strip_suffix(b"-----"))
            .unwrap_or_default();
        if end_label != label.as_bytes() {
            return Err(format!(
                "END label {:?} does not match BEGIN label {label:?}",
                String::from_utf8_lossy(end_label)
            ));
        }
        let body = &text[body_start..end_at];
        if memchr::memchr(b':', body).is_some() {
            return Err("PEM headers (an encrypted key?) are not supported".into());
        }
        let clean: Vec<u8> = body
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        let contents = base64::engine::general_purpose::STANDARD
            .decode(&clean)
            .map_err(|e| format!("bad base64: {e}"))?;
        Ok((label, contents))
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
    memchr::memmem::find(haystack, needle)
}

/// Decodes every block of `input`, which must all be `CERTIFICATE` blocks (at least one),
/// and returns their DER. The error names the block.
pub(crate) fn certificates(input: &[u8], origin: &Origin) -> Result<Vec<Vec<u8>>, Error> {
    let mut out = Vec::new();
    for block in blocks(input) {
        let (label, der) = block.decode().map_err(|reason| Error::MalformedPem {
            origin: origin.clone(),
            block: block.index,
            reason,
        })?;
        if label != "CERTIFICATE" {
            return Err(Error::NotACertificate {
                origin: origin.clone(),
                block: block.index,
                label: label.to_owned(),
            });
        }
        out.push(der);
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

/// Like [`parse_certificate`], without decoding extension contents: all the bundling rule
/// needs is a well-formed certificate and its validity, ten thousand at a time.
pub(crate) fn parse_certificate_shallow(
    der: &[u8],
) -> Result<x509_parser::certificate::X509Certificate<'_>, String> {
    use x509_parser::nom::Parser;
    let mut parser =
        x509_parser::certificate::X509CertificateParser::new().with_deep_parse_extensions(false);
    match parser.parse(der) {
        Ok(([], cert)) => Ok(cert),
        Ok((rest, _)) => Err(format!("{} bytes after the certificate", rest.len())),
        Err(e) => Err(e.to_string()),
    }
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
