//! Character encodings of exports: UTF-8 with or without BOM, Windows-1252 from old dealer systems,
//! UTF-16 with a BOM (Excel's "Unicode Text") and Mac Roman (Excel for Mac's "CSV").
//!
//! Detection never guesses silently: a UTF-16 BOM means UTF-16; a file that is valid UTF-8 is UTF-8; a
//! file with no valid multi-byte UTF-8 and some bytes that are not UTF-8 is Windows-1252, unless its lines
//! end in a bare CR, which is how Excel for Mac writes Mac Roman: that file is refused with the flag that
//! reads it. A file mixing UTF-8 and stray bytes is an error naming the first bad line, since decoding it
//! either way would mangle some names (README "Input").

use std::io::{self, BufRead, BufReader, Read};

use serde::Serialize;

/// A text encoding rrfeed reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Encoding {
    #[serde(rename = "utf-8")]
    Utf8,
    #[serde(rename = "windows-1252")]
    Windows1252,
    #[serde(rename = "utf-16le")]
    Utf16Le,
    #[serde(rename = "utf-16be")]
    Utf16Be,
    #[serde(rename = "macintosh")]
    MacRoman,
}

impl Encoding {
    /// Parses `utf-8`, `windows-1252` (`cp1252`), `utf-16le`, `utf-16be`, `macintosh` (`mac-roman`),
    /// in any case.
    pub fn from_name(name: &str) -> Option<Encoding> {
        match name.trim().to_ascii_lowercase().as_str() {
            "utf-8" | "utf8" => Some(Encoding::Utf8),
            "windows-1252" | "cp1252" | "windows1252" => Some(Encoding::Windows1252),
            "utf-16le" | "utf16le" => Some(Encoding::Utf16Le),
            "utf-16be" | "utf16be" => Some(Encoding::Utf16Be),
            "macintosh" | "mac-roman" | "macroman" | "x-mac-roman" => Some(Encoding::MacRoman),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Encoding::Utf8 => "utf-8",
            Encoding::Windows1252 => "windows-1252",
            Encoding::Utf16Le => "utf-16le",
            Encoding::Utf16Be => "utf-16be",
            Encoding::MacRoman => "macintosh",
        }
    }

    /// The decoder for an encoding other than UTF-8.
    fn decoder(self) -> Option<&'static encoding_rs::Encoding> {
        match self {
            Encoding::Utf8 => None,
            Encoding::Windows1252 => Some(encoding_rs::WINDOWS_1252),
            Encoding::Utf16Le => Some(encoding_rs::UTF_16LE),
            Encoding::Utf16Be => Some(encoding_rs::UTF_16BE),
            Encoding::MacRoman => Some(encoding_rs::MACINTOSH),
        }
    }
}

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";
const UTF16LE_BOM: &[u8] = b"\xFF\xFE";
const UTF16BE_BOM: &[u8] = b"\xFE\xFF";

/// The UTF-16 encoding a stream's first bytes announce with a BOM, if any.
pub fn utf16_bom(start: &[u8]) -> Option<Encoding> {
    if start.starts_with(UTF16LE_BOM) {
        Some(Encoding::Utf16Le)
    } else if start.starts_with(UTF16BE_BOM) {
        Some(Encoding::Utf16Be)
    } else {
        None
    }
}

/// What a scan of raw bytes found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detected {
    Encoding(Encoding),
    /// Valid UTF-8 multi-byte characters and invalid bytes in one file; the line of the first invalid byte.
    Mixed {
        first_invalid_line: u64,
    },
    /// Single-byte text whose lines end in a bare CR: Excel for Mac's Mac Roman, or an old Mac's
    /// Windows-1252; decoding it as either without being told would mangle accented names.
    MacLineEnds,
}

/// Incremental scan of a byte stream for UTF-8 validity.
#[derive(Debug, Default)]
pub struct Utf8Scan {
    carry: Vec<u8>,
    line: u64,
    multibyte_seen: bool,
    first_invalid_line: Option<u64>,
    lf_seen: bool,
    cr_seen: bool,
}

impl Utf8Scan {
    /// Feeds the next bytes of the stream. Only a character cut at the end of `bytes` is copied (to be
    /// completed by the next call); lines are counted only until the first invalid byte is found.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.lf_seen = self.lf_seen || memchr::memchr(b'\n', bytes).is_some();
        self.cr_seen = self.cr_seen || memchr::memchr(b'\r', bytes).is_some();
        let rest = match self.complete_carry(bytes) {
            Some(rest) => rest,
            None => return,
        };
        self.feed_slice(rest);
    }

    /// Judges the character cut at the end of the previous feed with the first bytes of `bytes`;
    /// returns the bytes after it, or `None` when `bytes` did not complete it either.
    fn complete_carry<'b>(&mut self, bytes: &'b [u8]) -> Option<&'b [u8]> {
        if self.carry.is_empty() {
            return Some(bytes);
        }
        let carried = self.carry.len();
        let mut joined = std::mem::take(&mut self.carry);
        joined.extend_from_slice(&bytes[..bytes.len().min(4 - carried)]);
        let first_len = match std::str::from_utf8(&joined) {
            Ok(text) => text.chars().next().map_or(joined.len(), char::len_utf8),
            Err(e) if e.valid_up_to() > 0 => {
                let valid = std::str::from_utf8(&joined[..e.valid_up_to()]).expect("checked valid");
                valid.chars().next().map_or(0, char::len_utf8)
            }
            Err(e) => match e.error_len() {
                None => {
                    self.carry = joined;
                    return None;
                }
                Some(n) => {
                    self.first_invalid_line.get_or_insert(self.line + 1);
                    return Some(&bytes[n.saturating_sub(carried)..]);
                }
            },
        };
        self.multibyte_seen = true;
        Some(&bytes[first_len - carried..])
    }

    /// Scans `bytes`; an incomplete character at its end goes to `carry`.
    fn feed_slice(&mut self, bytes: &[u8]) {
        // The common case, a whole buffer of valid text, checked at SIMD speed; std's check then
        // finds where anything else goes wrong.
        if simdutf8::basic::from_utf8(bytes).is_ok() {
            self.note_valid(bytes);
            return;
        }
        let mut rest = bytes;
        loop {
            match std::str::from_utf8(rest) {
                Ok(text) => {
                    self.note_valid(text.as_bytes());
                    return;
                }
                Err(e) => {
                    let (valid, after) = rest.split_at(e.valid_up_to());
                    self.note_valid(valid);
                    match e.error_len() {
                        None => {
                            self.carry = after.to_vec();
                            return;
                        }
                        Some(n) => {
                            self.first_invalid_line.get_or_insert(self.line + 1);
                            self.count_lines(&after[..n]);
                            rest = &after[n..];
                        }
                    }
                }
            }
        }
    }

    fn note_valid(&mut self, text: &[u8]) {
        self.count_lines(text);
        self.multibyte_seen = self.multibyte_seen || !text.is_ascii();
    }

    /// Lines matter only for naming the first invalid one.
    fn count_lines(&mut self, bytes: &[u8]) {
        if self.first_invalid_line.is_none() {
            self.line += memchr::memchr_iter(b'\n', bytes).count() as u64;
        }
    }

    /// The verdict once the stream (or the part of it scanned) has been fed. `complete` says whether the
    /// end of the stream was reached: an incomplete character at the end is invalid only then.
    pub fn verdict(&self, complete: bool) -> Detected {
        let first_invalid = self
            .first_invalid_line
            .or((complete && !self.carry.is_empty()).then_some(self.line + 1));
        match first_invalid {
            None => Detected::Encoding(Encoding::Utf8),
            Some(_) if !self.multibyte_seen && self.cr_seen && !self.lf_seen => {
                Detected::MacLineEnds
            }
            Some(_) if !self.multibyte_seen => Detected::Encoding(Encoding::Windows1252),
            Some(line) => Detected::Mixed {
                first_invalid_line: line,
            },
        }
    }
}

/// Scans a whole file (after any BOM) to detect its encoding.
pub fn detect_file(path: &std::path::Path) -> io::Result<Detected> {
    let mut file = BufReader::with_capacity(1 << 16, std::fs::File::open(path)?);
    if let Some(utf16) = utf16_bom(file.fill_buf()?) {
        return Ok(Detected::Encoding(utf16));
    }
    let mut scan = Utf8Scan::default();
    let mut first = true;
    loop {
        let buf = file.fill_buf()?;
        if buf.is_empty() {
            return Ok(scan.verdict(true));
        }
        let skip = if first && buf.starts_with(UTF8_BOM) {
            3
        } else {
            0
        };
        first = false;
        scan.feed(&buf[skip..]);
        let n = buf.len();
        file.consume(n);
    }
}

/// Detects the encoding from the bytes buffered at the start of a stream that cannot be read twice.
pub fn detect_prefix(prefix: &[u8], complete: bool) -> Detected {
    if let Some(utf16) = utf16_bom(prefix) {
        return Detected::Encoding(utf16);
    }
    let mut scan = Utf8Scan::default();
    scan.feed(prefix.strip_prefix(UTF8_BOM).unwrap_or(prefix));
    scan.verdict(complete)
}

/// Removes a UTF-8 BOM at the start of `reader`; says whether there was one.
pub fn skip_bom(reader: &mut impl BufRead) -> io::Result<bool> {
    let buf = reader.fill_buf()?;
    if buf.starts_with(UTF8_BOM) {
        reader.consume(UTF8_BOM.len());
        Ok(true)
    } else {
        Ok(false)
    }
}

/// Wraps `reader` so that it yields UTF-8: other encodings are decoded (a UTF-16 BOM dropped), UTF-8
/// passes through unchanged (invalid UTF-8 is then reported by the format reader with its line).
pub fn decoded<'a>(reader: impl Read + 'a, encoding: Encoding) -> Box<dyn BufRead + 'a> {
    match encoding.decoder() {
        None => Box::new(BufReader::with_capacity(1 << 16, reader)),
        Some(decoder) => Box::new(BufReader::with_capacity(
            1 << 16,
            encoding_rs_io::DecodeReaderBytesBuilder::new()
                .encoding(Some(decoder))
                .bom_override(false)
                .strip_bom(matches!(encoding, Encoding::Utf16Le | Encoding::Utf16Be))
                .build(reader),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_with_multibyte_characters_is_utf8() {
        assert_eq!(
            detect_prefix("Zoë,Müller\n".as_bytes(), true),
            Detected::Encoding(Encoding::Utf8)
        );
    }

    #[test]
    fn high_bytes_that_are_not_utf8_are_windows_1252() {
        assert_eq!(
            detect_prefix(b"name\nZo\xEB M\xFCller\n", true),
            Detected::Encoding(Encoding::Windows1252)
        );
    }

    #[test]
    fn a_mix_of_utf8_and_stray_bytes_names_the_first_bad_line() {
        let bytes = "name\nZoë\nok\nM\u{fc}ller\n".as_bytes().to_vec();
        let mut bad = bytes.clone();
        bad.extend_from_slice(b"Caf\xE9\n");
        assert_eq!(
            detect_prefix(&bad, true),
            Detected::Mixed {
                first_invalid_line: 5
            }
        );
    }

    #[test]
    fn a_character_split_across_reads_is_not_an_error() {
        let text = "ab\u{e9}cd".as_bytes();
        let mut scan = Utf8Scan::default();
        scan.feed(&text[..3]);
        scan.feed(&text[3..]);
        assert_eq!(scan.verdict(true), Detected::Encoding(Encoding::Utf8));
    }

    #[test]
    fn any_split_of_the_stream_gives_the_verdict_of_one_read() {
        let inputs: [&[u8]; 5] = [
            "a\nZoë 😀\n€uro\n".as_bytes(),
            b"name\nZo\xEB\nM\xFCller\xF0\x9F\n",
            b"ok\n\xE2\x82\xAC\n\xE2\x82A\n\xC3",
            b"\xF0\x9F\x98\x80\n\xE9\n",
            b"\xF0\x9F\x98",
        ];
        for input in inputs {
            let whole = detect_prefix(input, true);
            for size in 1..=5 {
                let mut scan = Utf8Scan::default();
                input.chunks(size).for_each(|chunk| scan.feed(chunk));
                assert_eq!(scan.verdict(true), whole, "{input:?} in reads of {size}");
            }
        }
    }

    #[test]
    fn windows_1252_decodes_to_utf8() {
        let mut out = String::new();
        decoded(&b"Caf\xE9 \x93quoted\x94"[..], Encoding::Windows1252)
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "Café \u{201c}quoted\u{201d}");
    }

    #[test]
    fn utf16_is_known_by_its_bom_and_decoded_without_it() {
        let le: Vec<u8> = b"\xFF\xFE"
            .iter()
            .copied()
            .chain("Zoë\tA".encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        assert_eq!(
            detect_prefix(&le, true),
            Detected::Encoding(Encoding::Utf16Le)
        );
        let mut out = String::new();
        decoded(&le[..], Encoding::Utf16Le)
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "Zoë\tA");
        assert_eq!(
            detect_prefix(b"\xFE\xFF\x00A", true),
            Detected::Encoding(Encoding::Utf16Be)
        );
    }

    #[test]
    fn single_byte_text_with_bare_cr_line_ends_is_not_guessed() {
        assert_eq!(
            detect_prefix(b"Name\rJos\x8E\r", true),
            Detected::MacLineEnds
        );
        assert_eq!(
            detect_prefix(b"Name\r\nJos\xE9\r\n", true),
            Detected::Encoding(Encoding::Windows1252)
        );
        let mut out = String::new();
        decoded(&b"Jos\x8E Mu\x96oz"[..], Encoding::MacRoman)
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "José Muñoz");
    }

    #[test]
    fn encoding_names_accept_cp1252() {
        assert_eq!(Encoding::from_name("CP1252"), Some(Encoding::Windows1252));
        assert_eq!(Encoding::from_name("utf8"), Some(Encoding::Utf8));
        assert_eq!(Encoding::from_name("latin1"), None);
    }
}
