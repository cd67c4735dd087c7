//! ABM URNs: `urn:abm:<EntityType>:<key>`.
//!
//! A generated key is 30 lower-case hex characters. A composite key is a parenthesised,
//! comma-separated list whose parts may themselves be URNs with composite keys, e.g.
//! `urn:abm:Metamodel3-Dataset:(urn:abm:Metamodel3-DataPlatformInstance:(MySQL,3ca1),db.t)`.
//! Splitting is paren-depth aware, so commas and colons inside nested parts never split the
//! outer level. `Display` gives back exactly the parsed text.

use std::fmt;

use rand::Rng;

/// The longest URN accepted (contract §4.7).
pub const MAX_URN_LEN: usize = 2000;

const PREFIX: &str = "urn:abm:";

/// A parsed URN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Urn {
    entity_type: String,
    key: UrnKey,
}

/// The key part of a URN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrnKey {
    /// A plain key such as a generated hex id.
    Simple(String),
    /// A parenthesised list of parts.
    Composite(Vec<UrnPart>),
}

/// One part of a composite key: a nested URN or a plain value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrnPart {
    Urn(Box<Urn>),
    Value(String),
}

/// Why a string is not a URN.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid urn: {0}")]
pub struct UrnError(String);

impl Urn {
    /// A new URN for `entity_type` with a random 30-hex-character key.
    pub fn generate(entity_type: &str) -> Self {
        let mut rng = rand::thread_rng();
        let key: String =
            (0..30).map(|_| char::from(b"0123456789abcdef"[rng.gen_range(0..16)])).collect();
        Self { entity_type: entity_type.to_owned(), key: UrnKey::Simple(key) }
    }

    /// Parses `text`, which must be at most [`MAX_URN_LEN`] characters.
    pub fn parse(text: &str) -> Result<Self, UrnError> {
        if text.chars().count() > MAX_URN_LEN {
            return Err(UrnError(format!("longer than {MAX_URN_LEN} characters")));
        }
        if text.contains('\0') {
            return Err(UrnError("contains a NUL character".into()));
        }
        parse_urn(text)
    }

    /// The entity type named by the URN, e.g. `Metamodel3-Dataset`.
    pub fn entity_type(&self) -> &str {
        &self.entity_type
    }

    /// The key part.
    pub fn key(&self) -> &UrnKey {
        &self.key
    }
}

fn parse_urn(text: &str) -> Result<Urn, UrnError> {
    let Some(rest) = text.strip_prefix(PREFIX) else {
        return Err(UrnError(format!("{text:?} does not start with {PREFIX:?}")));
    };
    let Some((entity_type, key)) = rest.split_once(':') else {
        return Err(UrnError(format!("{text:?} has no key after the entity type")));
    };
    if entity_type.is_empty() || entity_type.contains(['(', ')', ',']) {
        return Err(UrnError(format!("{text:?} has an invalid entity type")));
    }
    let key = parse_key(key)?;
    Ok(Urn { entity_type: entity_type.to_owned(), key })
}

fn parse_key(key: &str) -> Result<UrnKey, UrnError> {
    if key.is_empty() {
        return Err(UrnError("empty key".into()));
    }
    let Some(inner) = key.strip_prefix('(') else {
        if key.contains(['(', ')', ',']) {
            return Err(UrnError(format!("unbalanced or stray delimiter in key {key:?}")));
        }
        return Ok(UrnKey::Simple(key.to_owned()));
    };
    let Some(inner) = inner.strip_suffix(')') else {
        return Err(UrnError(format!("composite key {key:?} does not end with ')'")));
    };
    let parts = split_top_level(inner)?;
    let parts = parts.into_iter().map(parse_part).collect::<Result<Vec<_>, _>>()?;
    Ok(UrnKey::Composite(parts))
}

fn parse_part(part: &str) -> Result<UrnPart, UrnError> {
    if part.starts_with(PREFIX) {
        return Ok(UrnPart::Urn(Box::new(parse_urn(part)?)));
    }
    if part.contains(['(', ')']) {
        return Err(UrnError(format!("parenthesis inside plain part {part:?}")));
    }
    Ok(UrnPart::Value(part.to_owned()))
}

/// Splits on commas at depth zero; fails on unbalanced parentheses or an empty part.
fn split_top_level(text: &str) -> Result<Vec<&str>, UrnError> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                let Some(d) = depth.checked_sub(1) else {
                    return Err(UrnError(format!("unbalanced ')' in {text:?}")));
                };
                depth = d;
            }
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(UrnError(format!("unbalanced '(' in {text:?}")));
    }
    parts.push(&text[start..]);
    if parts.iter().any(|p| p.is_empty()) {
        return Err(UrnError(format!("empty part in {text:?}")));
    }
    Ok(parts)
}

impl fmt::Display for Urn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}:{}", self.entity_type, self.key)
    }
}

impl fmt::Display for UrnKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Simple(key) => f.write_str(key),
            Self::Composite(parts) => {
                f.write_str("(")?;
                for (i, part) in parts.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    match part {
                        UrnPart::Urn(urn) => write!(f, "{urn}")?,
                        UrnPart::Value(value) => f.write_str(value)?,
                    }
                }
                f.write_str(")")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATASET: &str = "urn:abm:Metamodel3-Dataset:(urn:abm:Metamodel3-DataPlatformInstance:\
        (MySQL,3ca1d906860167e88b9bfe0577a69),def.sys.x$wait_classes_global_by_avg_latency)";

    #[test]
    fn composite_urn_round_trips_and_exposes_its_parts() {
        let urn = Urn::parse(DATASET).unwrap();
        assert_eq!(urn.to_string(), DATASET);
        assert_eq!(urn.entity_type(), "Metamodel3-Dataset");
        let UrnKey::Composite(parts) = urn.key() else { panic!("expected a composite key") };
        assert_eq!(parts.len(), 2);
        let UrnPart::Urn(platform) = &parts[0] else { panic!("expected a nested urn") };
        assert_eq!(platform.entity_type(), "Metamodel3-DataPlatformInstance");
        assert_eq!(platform.key().to_string(), "(MySQL,3ca1d906860167e88b9bfe0577a69)");
        assert_eq!(parts[1], UrnPart::Value("def.sys.x$wait_classes_global_by_avg_latency".into()));
    }

    #[test]
    fn generated_urn_has_thirty_lower_hex_characters() {
        let urn = Urn::generate("Metamodel3-SubjectArea").to_string();
        let key = urn.strip_prefix("urn:abm:Metamodel3-SubjectArea:").unwrap();
        assert_eq!(key.len(), 30);
        assert!(key.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)));
        assert_eq!(Urn::parse(&urn).unwrap().to_string(), urn);
    }

    #[test]
    fn malformed_urns_are_refused() {
        for bad in [
            "",
            "urn:abm:",
            "urn:abm:Type",
            "urn:abm:Type:",
            "urn:x:Type:abc",
            "urn:abm:Type:(a,b",
            "urn:abm:Type:(a,b))",
            "urn:abm:Type:(a,,b)",
            "urn:abm:Type:a,b",
            "urn:abm:Type:(urn:abm:T:(x),y(z))",
            "urn:abm:Type:a\0b",
        ] {
            assert!(Urn::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn length_limit_is_two_thousand_characters() {
        let at_limit = format!("urn:abm:T:{}", "a".repeat(MAX_URN_LEN - 10));
        assert!(Urn::parse(&at_limit).is_ok());
        let over = format!("{at_limit}a");
        assert!(Urn::parse(&over).is_err());
    }
}
