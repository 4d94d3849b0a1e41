//! DNS names as they go into certificates. The rules that allow names are the policy's
//! ([`ca_api::policy::NameRule`]), applied to the normalised names by [`crate::profile`].
//!
//! A [`DnsName`] is normalised (ASCII lowercase) and validated once, so everything after that
//! compares plain strings: every replica reaches the same verdict for the same input. Only the
//! ASCII form is accepted; internationalised names must arrive as A-labels (`xn--...`), which are
//! checked to be well-formed Punycode that round-trips (RFC 3492). The full IDNA2008 code point
//! tables (RFC 5892) are not applied.

use std::fmt;

/// RFC 1035 2.3.4: at most 253 characters in the dotted text form, 63 per label.
pub const MAX_NAME_LEN: usize = 253;
pub const MAX_LABEL_LEN: usize = 63;

/// Why a string is not a DNS name we put in a certificate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("the name is empty")]
    Empty,
    #[error("the name is {len} characters long; at most {MAX_NAME_LEN} are allowed")]
    TooLong { len: usize },
    #[error("the name ends with a dot; give it without the trailing dot")]
    TrailingDot,
    #[error("the name has an empty label (two dots in a row, or a leading dot)")]
    EmptyLabel,
    #[error("label {label:?} is longer than {MAX_LABEL_LEN} characters")]
    LabelTooLong { label: String },
    #[error("the name contains {ch:?}; internationalised names must be given as A-labels (xn--...)")]
    NonAscii { ch: char },
    #[error("the name contains {ch:?}; only letters, digits and '-' are allowed in a label")]
    InvalidCharacter { ch: char },
    #[error("label {label:?} starts or ends with '-'")]
    HyphenAtEdge { label: String },
    #[error("label {label:?} has '--' in the third and fourth positions but is not an A-label (xn--)")]
    ReservedLabel { label: String },
    #[error("label {label:?} is not a valid A-label")]
    InvalidALabel { label: String },
    #[error("a wildcard is only allowed as the whole leftmost label, followed by at least one label")]
    MisplacedWildcard,
    #[error("the last label is all digits, which is not a host name (use an IP address entry instead)")]
    NumericTopLabel,
}

/// A validated, normalised DNS name: lowercase ASCII labels, no trailing dot, possibly a wildcard
/// `*` as the whole leftmost label.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DnsName(String);

impl DnsName {
    /// Normalises (ASCII lowercase) and validates `input`.
    pub fn parse(input: &str) -> Result<Self, NameError> {
        if input.is_empty() {
            return Err(NameError::Empty);
        }
        if let Some(ch) = input.chars().find(|c| !c.is_ascii()) {
            return Err(NameError::NonAscii { ch });
        }
        let name = input.to_ascii_lowercase();
        if name.len() > MAX_NAME_LEN {
            return Err(NameError::TooLong { len: name.len() });
        }
        if name.ends_with('.') {
            return Err(NameError::TrailingDot);
        }
        let labels: Vec<&str> = name.split('.').collect();
        for (position, label) in labels.iter().enumerate() {
            if *label == "*" {
                // The wildcard must stand alone as the leftmost label and cover something.
                if position != 0 || labels.len() < 2 {
                    return Err(NameError::MisplacedWildcard);
                }
                continue;
            }
            check_label(label)?;
        }
        let top = labels[labels.len() - 1];
        if top.bytes().all(|b| b.is_ascii_digit()) {
            // Keeps "127.0.0.1" and the like out of dNSName entries (RFC 3696 2).
            return Err(NameError::NumericTopLabel);
        }
        Ok(DnsName(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the leftmost label is `*`.
    pub fn is_wildcard(&self) -> bool {
        self.0.starts_with("*.")
    }
}

impl fmt::Display for DnsName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for DnsName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// RFC 1123 host name label rules (letters, digits, hyphen; no hyphen at either end), and
/// RFC 5890 2.3.1: `??--` labels are reserved unless they are A-labels.
fn check_label(label: &str) -> Result<(), NameError> {
    if label.is_empty() {
        return Err(NameError::EmptyLabel);
    }
    if label.len() > MAX_LABEL_LEN {
        return Err(NameError::LabelTooLong { label: label.to_string() });
    }
    if let Some(ch) = label.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')) {
        return Err(NameError::InvalidCharacter { ch });
    }
    if label.starts_with('-') || label.ends_with('-') {
        return Err(NameError::HyphenAtEdge { label: label.to_string() });
    }
    if label.get(2..4) == Some("--") {
        match label.strip_prefix("xn--") {
            Some(encoded) if valid_a_label(encoded) => {}
            Some(_) => return Err(NameError::InvalidALabel { label: label.to_string() }),
            None => return Err(NameError::ReservedLabel { label: label.to_string() }),
        }
    }
    Ok(())
}

/// An A-label's Punycode part is valid if it decodes, the result holds at least one non-ASCII
/// character (otherwise it is a fake A-label), none that a label cannot hold, and encoding it again
/// gives the same string (so one name has one spelling).
fn valid_a_label(encoded: &str) -> bool {
    let Some(decoded) = punycode::decode(encoded) else {
        return false;
    };
    let acceptable = |c: &char| {
        !(c.is_control()
            || c.is_whitespace()
            || c.is_uppercase()
            // Dots that IDNA mapping would turn into label separators.
            || matches!(*c, '\u{3002}' | '\u{ff0e}' | '\u{ff61}'))
    };
    decoded.iter().any(|c| !c.is_ascii())
        && decoded.iter().all(acceptable)
        && punycode::encode(&decoded).as_deref() == Some(encoded)
}

/// RFC 3492 Punycode, with every arithmetic step checked (a label is at most 63 characters, but
/// its digits can still describe huge numbers).
mod punycode {
    const BASE: u32 = 36;
    const T_MIN: u32 = 1;
    const T_MAX: u32 = 26;
    const SKEW: u32 = 38;
    const DAMP: u32 = 700;
    const INITIAL_BIAS: u32 = 72;
    const INITIAL_N: u32 = 128;

    fn adapt(mut delta: u32, num_points: u32, first_time: bool) -> u32 {
        delta /= if first_time { DAMP } else { 2 };
        delta += delta / num_points;
        let mut k = 0;
        while delta > ((BASE - T_MIN) * T_MAX) / 2 {
            delta /= BASE - T_MIN;
            k += BASE;
        }
        k + (BASE - T_MIN + 1) * delta / (delta + SKEW)
    }

    fn threshold(k: u32, bias: u32) -> u32 {
        if k <= bias {
            T_MIN
        } else if k >= bias + T_MAX {
            T_MAX
        } else {
            k - bias
        }
    }

    fn digit_value(byte: u8) -> Option<u32> {
        match byte {
            b'a'..=b'z' => Some(u32::from(byte - b'a')),
            b'0'..=b'9' => Some(u32::from(byte - b'0') + 26),
            _ => None,
        }
    }

    fn digit_char(digit: u32) -> Option<char> {
        match digit {
            0..=25 => char::from_u32(u32::from(b'a') + digit),
            26..=35 => char::from_u32(u32::from(b'0') + digit - 26),
            _ => None,
        }
    }

    /// RFC 3492 6.2 (lowercase input: the caller has already lowercased the name).
    pub fn decode(input: &str) -> Option<Vec<char>> {
        let (basic, extended) = match input.rfind('-') {
            Some(at) => (&input[..at], &input[at + 1..]),
            None => ("", input),
        };
        let mut output: Vec<char> = basic.chars().collect();
        let (mut n, mut i, mut bias) = (INITIAL_N, 0u32, INITIAL_BIAS);
        let mut digits = extended.bytes().peekable();
        while digits.peek().is_some() {
            let old_i = i;
            let mut w = 1u32;
            let mut k = BASE;
            loop {
                let digit = digit_value(digits.next()?)?;
                i = i.checked_add(digit.checked_mul(w)?)?;
                let t = threshold(k, bias);
                if digit < t {
                    break;
                }
                w = w.checked_mul(BASE - t)?;
                k += BASE;
            }
            let length = u32::try_from(output.len()).ok()? + 1;
            bias = adapt(i - old_i, length, old_i == 0);
            n = n.checked_add(i / length)?;
            i %= length;
            let ch = char::from_u32(n)?;
            if ch.is_ascii() {
                return None;
            }
            output.insert(usize::try_from(i).ok()?, ch);
            i += 1;
        }
        Some(output)
    }

    /// RFC 3492 6.3.
    pub fn encode(input: &[char]) -> Option<String> {
        let mut output: String = input.iter().filter(|c| c.is_ascii()).collect();
        let basic = u32::try_from(output.len()).ok()?;
        if basic > 0 {
            output.push('-');
        }
        let total = u32::try_from(input.len()).ok()?;
        let (mut n, mut delta, mut bias, mut handled) = (INITIAL_N, 0u32, INITIAL_BIAS, basic);
        while handled < total {
            let m = input.iter().map(|&c| c as u32).filter(|&c| c >= n).min()?;
            delta = delta.checked_add((m - n).checked_mul(handled + 1)?)?;
            n = m;
            for &c in input {
                let c = c as u32;
                if c < n {
                    delta = delta.checked_add(1)?;
                }
                if c == n {
                    let mut q = delta;
                    let mut k = BASE;
                    loop {
                        let t = threshold(k, bias);
                        if q < t {
                            break;
                        }
                        output.push(digit_char(t + (q - t) % (BASE - t))?);
                        q = (q - t) / (BASE - t);
                        k += BASE;
                    }
                    output.push(digit_char(q)?);
                    bias = adapt(delta, handled + 1, handled == basic);
                    delta = 0;
                    handled += 1;
                }
            }
            delta = delta.checked_add(1)?;
            n = n.checked_add(1)?;
        }
        Some(output)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_names_are_lowercased_and_kept() {
        for (input, normalised) in [
            ("example.com", "example.com"),
            ("WWW.Example.COM", "www.example.com"),
            ("localhost", "localhost"),
            ("a-b.c0.example", "a-b.c0.example"),
            ("*.example.com", "*.example.com"),
            ("*.localhost", "*.localhost"),
            ("123.example.com", "123.example.com"),
            ("xn--bcher-kva.example", "xn--bcher-kva.example"),
            ("XN--BCHER-KVA.example", "xn--bcher-kva.example"),
            ("xn--nxasmq6b.com", "xn--nxasmq6b.com"),
        ] {
            assert_eq!(DnsName::parse(input).map(|n| n.to_string()), Ok(normalised.to_string()), "{input}");
        }
    }

    #[test]
    fn invalid_names_give_the_reason() {
        let long_label = "a".repeat(64);
        let long_name = ["a".repeat(63), "b".repeat(63), "c".repeat(63), "d".repeat(62)].join(".");
        assert_eq!(long_name.len(), 254);
        let cases: Vec<(&str, NameError)> = vec![
            ("", NameError::Empty),
            ("example.com.", NameError::TrailingDot),
            (".example.com", NameError::EmptyLabel),
            ("a..example.com", NameError::EmptyLabel),
            (&long_label, NameError::LabelTooLong { label: long_label.clone() }),
            (&long_name, NameError::TooLong { len: 254 }),
            ("bücher.example", NameError::NonAscii { ch: 'ü' }),
            ("under_score.example", NameError::InvalidCharacter { ch: '_' }),
            ("sp ace.example", NameError::InvalidCharacter { ch: ' ' }),
            ("-a.example", NameError::HyphenAtEdge { label: "-a".into() }),
            ("a-.example", NameError::HyphenAtEdge { label: "a-".into() }),
            ("ab--cd.example", NameError::ReservedLabel { label: "ab--cd".into() }),
            ("xn--abc.example", NameError::InvalidALabel { label: "xn--abc".into() }),
            // The Punycode of plain ASCII ends in '-', so fake A-labels fall to the hyphen rule.
            ("xn--abc-.example", NameError::HyphenAtEdge { label: "xn--abc-".into() }),
            // Decodes to a control character.
            ("xn--a.example", NameError::InvalidALabel { label: "xn--a".into() }),
            ("xn--99999999999999.example", NameError::InvalidALabel { label: "xn--99999999999999".into() }),
            ("*", NameError::MisplacedWildcard),
            ("a.*.example", NameError::MisplacedWildcard),
            ("*.*.example", NameError::MisplacedWildcard),
            ("*a.example", NameError::InvalidCharacter { ch: '*' }),
            ("127.0.0.1", NameError::NumericTopLabel),
            ("example.123", NameError::NumericTopLabel),
        ];
        for (input, error) in cases {
            assert_eq!(DnsName::parse(input), Err(error), "{input:?}");
        }
    }

    #[test]
    fn punycode_round_trips_rfc3492_samples() {
        // RFC 3492 7.1 (A) Arabic and (L) Japanese samples, lowercased.
        for (unicode, encoded) in [
            (
                "\u{0644}\u{064A}\u{0647}\u{0645}\u{0627}\u{0628}\u{062A}\u{0643}\u{0644}\u{0645}\u{0648}\u{0634}\u{0639}\u{0631}\u{0628}\u{064A}\u{061F}",
                "egbpdaj6bu4bxfgehfvwxn",
            ),
            ("3\u{5E74}b\u{7D44}\u{91D1}\u{516B}\u{5148}\u{751F}", "3b-ww4c5e180e575a65lsy2b"),
            ("b\u{fc}cher", "bcher-kva"),
        ] {
            let chars: Vec<char> = unicode.chars().collect();
            assert_eq!(punycode::encode(&chars).as_deref(), Some(encoded));
            assert_eq!(punycode::decode(encoded), Some(chars));
        }
    }

    proptest::proptest! {
        #[test]
        fn parsing_never_panics_and_is_idempotent(input in "\\PC{0,80}") {
            if let Ok(parsed) = DnsName::parse(&input) {
                proptest::prop_assert_eq!(DnsName::parse(parsed.as_str()), Ok(parsed.clone()));
            }
        }

        #[test]
        fn name_like_strings_never_panic_and_valid_ones_are_canonical(input in "[a-zA-Z0-9*.-]{0,70}") {
            if let Ok(parsed) = DnsName::parse(&input) {
                proptest::prop_assert_eq!(parsed.as_str(), input.to_ascii_lowercase());
            }
        }

        #[test]
        fn punycode_decoding_never_panics(input in "[a-z0-9-]{0,63}") {
            let _ = punycode::decode(&input);
        }

        #[test]
        fn punycode_encoding_round_trips(label in "[a-z0-9\u{80}-\u{2fff}]{1,20}") {
            let chars: Vec<char> = label.chars().collect();
            let encoded = punycode::encode(&chars).unwrap();
            proptest::prop_assert_eq!(punycode::decode(&encoded), Some(chars));
        }
    }
}
