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
    /// Where the END line starts in `text`.
    end_at: usize,
    /// The label of the BEGIN line, if it is text.
    label: Option<&'a str>,
}

/// Where the label of the BEGIN line at the start of `text` ends: labels may hold single
/// hyphens, and the label ends at the first run of five.
fn label_end(text: &[u8]) -> Option<usize> {
    let rest = &text[BEGIN.len()..];
    memchr::memchr_iter(b'-', rest)
        .find(|&i| rest[i..].starts_with(b"-----"))
        .map(|i| i + BEGIN.len())
}

impl Block<'_> {
    /// The label of the BEGIN line (`CERTIFICATE`, `PRIVATE KEY`), read without decoding.
    pub(crate) fn label(&self) -> Option<&str> {
        self.label
    }

    /// Decodes the block (framing and base64): its label and contents, or why not.
    pub(crate) fn decode(&self) -> Result<(&str, Vec<u8>), String> {
        self.decode_checked().map(|d| (d.label, d.contents))
    }

    /// Like [`Block::decode`], also telling whether the block's text is already exactly what
    /// [`encode_certificates`] writes (then it can be copied instead of re-encoded).
    pub(crate) fn decode_checked(&self) -> Result<Decoded<'_>, String> {
        let mut scratch = Scratch::default();
        let (label, canonical) = self.decode_into(&mut scratch)?;
        Ok(Decoded {
            label,
            contents: scratch.contents,
            canonical,
        })
    }

    /// Like [`Block::decode_checked`], decoding into `scratch.contents` (replacing what was
    /// there): a caller decoding many blocks in a row allocates nothing per block. Returns
    /// the label and the canonical text, if any.
    pub(crate) fn decode_into(
        &self,
        scratch: &mut Scratch,
    ) -> Result<(&str, Option<&[u8]>), String> {
        use base64::Engine as _;
        let text = self.text.map_err(str::to_owned)?;
        let label = self
            .label()
            .filter(|l| !l.is_empty())
            .ok_or("BEGIN line without a label")?;
        let body_start = memchr::memchr(b'\n', text).ok_or("nothing after the BEGIN line")? + 1;
        let end_at = self.end_at;
        if end_at < body_start {
            return Err("END on the BEGIN line".into());
        }
        let end_line = &text[end_at..];
        let end_label = end_line
            .trim_ascii_end()
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
        // Copy the base64 line by line (memchr for the line ends, trimming each line),
        // noting whether the layout is the canonical one: BEGIN line, 64-column LF lines,
        // END line. Whitespace inside a line is rare: the decoder refuses it, and only then
        // is the body filtered byte by byte.
        let mut canonical = body_start == BEGIN.len() + label.len() + 6
            && end_line.len() == END.len() + label.len() + 5
            && !body.is_empty();
        let Scratch { clean, contents } = scratch;
        clean.clear();
        clean.reserve(body.len());
        let mut start = 0;
        for nl in memchr::memchr_iter(b'\n', body) {
            let line = &body[start..nl];
            start = nl + 1;
            let content = line.trim_ascii();
            canonical &= line.len() == content.len()
                && (content.len() == LINE || (start == body.len() && !content.is_empty()));
            clean.extend_from_slice(content);
        }
        // Text after the last line end (the END line follows on the same line).
        canonical &= start == body.len();
        clean.extend_from_slice(body[start..].trim_ascii());
        let engine = &base64::engine::general_purpose::STANDARD;
        contents.clear();
        if engine.decode_vec(&*clean, contents).is_err() {
            canonical = false;
            clean.clear();
            clean.extend(body.iter().filter(|b| !b.is_ascii_whitespace()));
            contents.clear();
            engine
                .decode_vec(&*clean, contents)
                .map_err(|e| format!("bad base64: {e}"))?;
        }
        // Canonical base64 (no stray trailing bits) is implied by a successful decode.
        Ok((label, canonical.then_some(text)))
    }
}

/// Buffers reused from block to block by [`Block::decode_into`].
#[derive(Default)]
pub(crate) struct Scratch {
    clean: Vec<u8>,
    /// The last block's decoded contents.
    pub(crate) contents: Vec<u8>,
}

/// A decoded block.
pub(crate) struct Decoded<'a> {
    pub(crate) label: &'a str,
    pub(crate) contents: Vec<u8>,
    /// The block's text (without the final newline) when it is laid out exactly as
    /// [`encode_certificates`] would write it.
    pub(crate) canonical: Option<&'a [u8]>,
}

/// Base64 columns per line in PEM (RFC 7468).
const LINE: usize = 64;

/// Iterates over the PEM blocks of `input`, decoding each lazily.
pub(crate) fn blocks(input: &[u8]) -> Blocks<'_> {
    Blocks {
        rest: input,
        index: 0,
        begin: memchr::memmem::Finder::new(BEGIN),
        end: memchr::memmem::Finder::new(END),
    }
}

pub(crate) struct Blocks<'a> {
    rest: &'a [u8],
    index: usize,
    // Built once per input: a searcher's set-up costs as much as a short search.
    begin: memchr::memmem::Finder<'static>,
    end: memchr::memmem::Finder<'static>,
}

const BEGIN: &[u8] = b"-----BEGIN ";
const END: &[u8] = b"-----END ";

impl<'a> Iterator for Blocks<'a> {
    type Item = Block<'a>;

    fn next(&mut self) -> Option<Block<'a>> {
        let start = self.begin.find(self.rest)?;
        self.index += 1;
        let block = &self.rest[start..];
        let body = BEGIN.len();
        let end = self.end.find(&block[body..]).map(|i| i + body);
        // Only a BEGIN before that END matters (a truncated block). The label ends at the
        // first run of five hyphens, so a BEGIN before the END starts there or later; in a
        // well-formed block no hyphen follows the label's run before the END line, and
        // then the search for one is skipped (it is most of the time of a tiny block).
        let before_end = &block[body..end.unwrap_or(block.len())];
        let label_at = label_end(block);
        let may_hold_begin = match (label_at, end) {
            (Some(at), Some(end)) if at < end => {
                block[at..].starts_with(BEGIN)
                    || memchr::memchr(b'-', &block[(at + 5).min(end)..end]).is_some()
            }
            (Some(_), Some(_)) => false,
            _ => true,
        };
        let next_begin = if may_hold_begin {
            self.begin.find(before_end).map(|i| i + body)
        } else {
            None
        };
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
        let line_len = memchr::memchr(b'\n', &block[end..]).unwrap_or(block.len() - end);
        let text = &block[..end + line_len];
        self.rest = &block[end + line_len..];
        Some(Block {
            index: self.index,
            text: Ok(text),
            end_at: end,
            // The END line is in `text`, so the label ends within it.
            label: label_at
                .filter(|&at| at <= text.len())
                .and_then(|at| std::str::from_utf8(&text[body..at]).ok()),
        })
    }
}

impl<'a> Blocks<'a> {
    fn failed(&self, reason: &'static str) -> Block<'a> {
        Block {
            index: self.index,
            text: Err(reason),
            end_at: 0,
            label: None,
        }
    }
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
    let mut out = String::new();
    for der in ders {
        push_certificate(&mut out, der, None);
    }
    out
}

/// Appends one certificate as PEM: `canonical` (its text as read, already in this exact
/// layout; see [`Block::decode_checked`]) is copied, otherwise `der` is encoded.
pub(crate) fn push_certificate(out: &mut String, der: &[u8], canonical: Option<&[u8]>) {
    if let Some(text) = canonical.and_then(|t| std::str::from_utf8(t).ok()) {
        out.push_str(text);
        out.push('\n');
        return;
    }
    let config = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
    out.push_str(&pem::encode_config(
        &pem::Pem::new("CERTIFICATE", der.to_vec()),
        config,
    ));
}

/// Whether `der` is a certificate a TLS stack accepts as a trust anchor: rustls-webpki's
/// parse (outer structure, version, serial, names, validity, key, extensions framing; v1
/// certificates allowed), without checking any signature. It is what every certificate put
/// into a `ca.crt` must pass, since rustls-based components load their roots through it,
/// and it is fast enough to run on ten thousand certificates.
pub(crate) fn check_trust_anchor(der: &[u8]) -> Result<(), String> {
    let der = rustls_pki_types::CertificateDer::from(der);
    webpki::anchor_from_trusted_cert(&der)
        .map(drop)
        .map_err(|e| format!("not usable as a trust anchor: {e}"))
}

/// Like [`parse_certificate`], without decoding extension contents: all the bundling rule
/// needs is a well-formed certificate and its validity, ten thousand at a time.
pub(crate) fn parse_certificate_shallow(
    der: &[u8],
) -> Result<x509_parser::certificate::X509Certificate<'_>, String> {
    use x509_parser::nom::Parser;
    // Most junk fails here, told plainly and without building a parser error.
    if !starts_as_sequence(der) {
        return Err(NOT_A_SEQUENCE.to_owned());
    }
    let mut parser =
        x509_parser::certificate::X509CertificateParser::new().with_deep_parse_extensions(false);
    match parser.parse(der) {
        Ok(([], cert)) => Ok(cert),
        Ok((rest, _)) => Err(format!("{} bytes after the certificate", rest.len())),
        Err(e) => Err(e.to_string()),
    }
}

/// Why DER that does not start with a SEQUENCE (tag 0x30) is no certificate.
pub(crate) const NOT_A_SEQUENCE: &str = "it does not start with a DER SEQUENCE";

/// Whether `der` starts as every certificate does, with a SEQUENCE (most junk does not,
/// and is told so without building a parser error).
pub(crate) fn starts_as_sequence(der: &[u8]) -> bool {
    der.first() == Some(&0x30)
}

/// Parses one DER certificate, refusing trailing bytes: a block with junk after the
/// certificate would be copied verbatim into every bundle, and stricter TLS stacks reject
/// the whole file for it.
pub(crate) fn parse_certificate(
    der: &[u8],
) -> Result<x509_parser::certificate::X509Certificate<'_>, String> {
    if !starts_as_sequence(der) {
        return Err(NOT_A_SEQUENCE.to_owned());
    }
    match x509_parser::parse_x509_certificate(der) {
        Ok(([], cert)) => Ok(cert),
        Ok((rest, _)) => Err(format!("{} bytes after the certificate", rest.len())),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Ca, CaParams, SeededEntropy};
    use time::macros::datetime;

    /// Lays `der` out as PEM with `width`-column lines and `eol` line ends, `pad` around
    /// each base64 line.
    fn layout(der: &[u8], width: usize, eol: &str, pad: &str) -> String {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let mut out = format!("-----BEGIN CERTIFICATE-----{eol}");
        for line in b64.as_bytes().chunks(width) {
            out.push_str(pad);
            out.push_str(std::str::from_utf8(line).unwrap());
            out.push_str(pad);
            out.push_str(eol);
        }
        out.push_str(&format!("-----END CERTIFICATE-----{eol}"));
        out
    }

    #[test]
    fn canonical_blocks_are_copied_and_others_re_encoded_to_the_same_text() {
        let now = datetime!(2026-01-01 0:00 UTC);
        let ca = Ca::generate(&CaParams::new("ca"), now, &mut SeededEntropy::new(7)).unwrap();
        let der = ca.cert_der();
        let expected = encode_certificates([der]);
        assert_eq!(
            expected,
            ca.cert_pem(),
            "rcgen and we write the same layout"
        );
        let cases = [
            (layout(der, 64, "\n", ""), true),
            (layout(der, 64, "\r\n", ""), false),
            (layout(der, 76, "\n", ""), false),
            (layout(der, 48, "\n", ""), false),
            (layout(der, 64, "\n", " "), false),
            (layout(der, 64, "\n", "").trim_end().to_owned(), true),
            (
                format!("junk before\n{}junk after", layout(der, 64, "\n", "")),
                true,
            ),
            (
                layout(der, 64, "\n", "").replacen("\nMII", "\nM II", 1),
                false,
            ),
            (
                layout(der, 64, "\n", "").replace("\n-----END", "\n\n-----END"),
                false,
            ),
        ];
        for (i, (text, canonical)) in cases.iter().enumerate() {
            let block = blocks(text.as_bytes()).next().unwrap();
            let decoded = block
                .decode_checked()
                .unwrap_or_else(|e| panic!("case {i}: {e}"));
            assert_eq!(decoded.contents, der, "case {i}");
            assert_eq!(
                decoded.canonical.is_some(),
                *canonical,
                "case {i}: {text:?}"
            );
            let mut out = String::new();
            push_certificate(&mut out, &decoded.contents, decoded.canonical);
            assert_eq!(out, expected, "case {i}");
        }
    }

    #[test]
    fn labels_may_hold_hyphens_and_armour_is_located() {
        let text = "x\n-----BEGIN X9-42 DH-PARAMS-----\nAAAA\n-----END X9-42 DH-PARAMS-----\n";
        let block = blocks(text.as_bytes()).next().unwrap();
        assert_eq!(block.label(), Some("X9-42 DH-PARAMS"));
        let decoded = block.decode_checked().unwrap();
        assert_eq!(decoded.contents, [0, 0, 0]);
        let truncated = "-----BEGIN CERTIFICATE-----\nAAAA\n-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let found: Vec<_> = blocks(truncated.as_bytes())
            .map(|b| b.decode().map(|d| d.1))
            .collect();
        assert_eq!(found.len(), 2);
        assert!(
            found[0]
                .as_ref()
                .unwrap_err()
                .contains("no END line before the next BEGIN")
        );
        assert_eq!(found[1].as_deref(), Ok(&[0u8, 0, 0][..]));
    }
}
