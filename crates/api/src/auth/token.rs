//! IAM-style tokens: signed JWTs carried in `X-Auth-Token`, scoped to one project.

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// What a token asserts about its bearer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// User id.
    pub sub: String,
    pub name: String,
    pub domain_id: String,
    pub domain_name: String,
    pub project_id: String,
    pub project_name: String,
    pub admin: bool,
    pub actions: Vec<String>,
    pub iat: i64,
    pub exp: i64,
}

/// Issues and checks tokens under one HMAC key.
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKeys(..)")
    }
}

impl TokenKeys {
    pub fn new(secret: &[u8]) -> Self {
        TokenKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        }
    }

    pub fn issue(&self, claims: &Claims) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .expect("HS256 encoding of plain claims cannot fail")
    }

    /// The claims of a valid, unexpired token.
    pub fn check(&self, token: &str) -> Option<Claims> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation).ok().map(|d| d.claims)
    }
}

pub fn timestamp(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Claims {
        Claims {
            sub: "u".into(),
            name: "admin".into(),
            domain_id: "d".into(),
            domain_name: "default".into(),
            project_id: "p".into(),
            project_name: "cn-north-4".into(),
            admin: true,
            actions: vec![],
            iat: 0,
            exp,
        }
    }

    #[test]
    fn tokens_round_trip_and_expire() {
        let keys = TokenKeys::new(b"k");
        let future = Utc::now().timestamp() + 60;
        let token = keys.issue(&claims(future));
        assert_eq!(keys.check(&token).unwrap().project_id, "p");
        assert!(TokenKeys::new(b"other").check(&token).is_none());
        let expired = keys.issue(&claims(Utc::now().timestamp() - 1));
        assert!(keys.check(&expired).is_none());
        assert!(keys.check("not a token").is_none());
    }
}
