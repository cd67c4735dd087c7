//! Verification of the `SDK-HMAC-SHA256` request signature used by Huawei Cloud SDKs (AK/SK).
//!
//! The server rebuilds the client's canonical request from the bytes it received: the method,
//! the path decoded and re-encoded segment by segment with a trailing `/`, the query pairs
//! decoded (a `+` stays a plus), sorted and re-encoded, exactly the headers the client listed in
//! `SignedHeaders`, and the SHA-256 of the body. The string to sign binds that hash to the
//! `X-Sdk-Date`; the signature is its HMAC-SHA256 under the secret key, compared in constant
//! time. Pure functions only: looking up the key and checking the clock happen elsewhere.

use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use percent_encoding::{percent_decode, percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub const ALGORITHM: &str = "SDK-HMAC-SHA256";
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// RFC 3986 unreserved characters stay literal; everything else is `%XX`.
const ENCODE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// Why a signature could not be checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("unsupported signing algorithm")]
    Algorithm,
    #[error("malformed Authorization header")]
    Malformed,
    #[error("signed header `{0}` is missing")]
    MissingHeader(String),
}

/// The parts of an `Authorization: SDK-HMAC-SHA256 ...` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthHeader {
    pub access_key: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
}

/// Reads both forms: `Access=<AK>` (current SDKs) and `Credential=<AK>/<date>/...` (legacy).
pub fn parse_authorization(value: &str) -> Result<AuthHeader, SignatureError> {
    let (algorithm, rest) = value.trim().split_once(' ').ok_or(SignatureError::Malformed)?;
    if algorithm != ALGORITHM {
        return Err(SignatureError::Algorithm);
    }
    let (mut access_key, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let Some((key, val)) = part.trim().split_once('=') else { continue };
        match key.trim() {
            "Access" => access_key = Some(val.trim().to_owned()),
            "Credential" => {
                access_key = val.trim().split('/').next().map(str::to_owned);
            }
            "SignedHeaders" => signed = Some(val.trim().to_owned()),
            "Signature" => signature = Some(val.trim().to_owned()),
            _ => {}
        }
    }
    let (Some(access_key), Some(signed), Some(signature)) = (access_key, signed, signature) else {
        return Err(SignatureError::Malformed);
    };
    if access_key.is_empty() || signed.is_empty() {
        return Err(SignatureError::Malformed);
    }
    let signed_headers = signed.split(';').map(|h| h.trim().to_ascii_lowercase()).collect();
    Ok(AuthHeader { access_key, signed_headers, signature })
}

/// A received request, as far as the signature covers it.
#[derive(Debug, Clone, Copy)]
pub struct Received<'a> {
    pub method: &'a str,
    pub raw_path: &'a str,
    pub raw_query: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

pub fn canonical_request(
    req: &Received<'_>,
    signed_headers: &[String],
) -> Result<String, SignatureError> {
    let mut out = String::with_capacity(512);
    out.push_str(&req.method.to_ascii_uppercase());
    out.push('\n');
    out.push_str(&canonical_uri(req.raw_path));
    out.push('\n');
    out.push_str(&canonical_query(req.raw_query));
    out.push('\n');
    for name in signed_headers {
        let mut values = req.headers.get_all(name.as_str()).iter().peekable();
        if values.peek().is_none() {
            return Err(SignatureError::MissingHeader(name.clone()));
        }
        let joined: Vec<_> = values.map(|v| String::from_utf8_lossy(v.as_bytes())).collect();
        out.push_str(name);
        out.push(':');
        out.push_str(joined.join(",").trim());
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&signed_headers.join(";"));
    out.push('\n');
    match req.headers.get("x-sdk-content-sha256") {
        Some(v) => out.push_str(&String::from_utf8_lossy(v.as_bytes())),
        None if req.body.is_empty() => out.push_str(EMPTY_SHA256),
        None => out.push_str(&hex::encode(Sha256::digest(req.body))),
    }
    Ok(out)
}

pub fn string_to_sign(sdk_date: &str, canonical_request: &str) -> String {
    let hash = hex::encode(Sha256::digest(canonical_request.as_bytes()));
    format!("{ALGORITHM}\n{sdk_date}\n{hash}")
}

pub fn sign(secret_key: &str, string_to_sign: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret_key.as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(string_to_sign.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Whether `auth.signature` is the signature of `req` under `secret_key`.
pub fn verify(
    req: &Received<'_>,
    auth: &AuthHeader,
    sdk_date: &str,
    secret_key: &str,
) -> Result<bool, SignatureError> {
    let canonical = canonical_request(req, &auth.signed_headers)?;
    let expected = sign(secret_key, &string_to_sign(sdk_date, &canonical));
    Ok(bool::from(expected.as_bytes().ct_eq(auth.signature.to_ascii_lowercase().as_bytes())))
}

fn encode(bytes: &[u8]) -> String {
    percent_encode(bytes, ENCODE).to_string()
}

fn canonical_uri(raw_path: &str) -> String {
    let decoded: Vec<u8> = percent_decode(raw_path.as_bytes()).collect();
    let mut out: String = decoded.split(|b| *b == b'/').map(encode).collect::<Vec<_>>().join("/");
    if !out.ends_with('/') {
        out.push('/');
    }
    out
}

fn canonical_query(raw_query: &str) -> String {
    let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = raw_query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k.as_bytes()).collect(), percent_decode(v.as_bytes()).collect())
        })
        .collect();
    pairs.sort();
    let encoded: Vec<String> =
        pairs.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect();
    encoded.join("&")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderName, HeaderValue};

    /// The signing vectors recorded from the official Python SDK, kept in the shared folder
    /// beside the checkout (`WORKBENCH_SDK_VECTORS` points elsewhere).
    fn vectors() -> serde_json::Value {
        let path = std::env::var("WORKBENCH_SDK_VECTORS").unwrap_or_else(|_| {
            format!("{}/../../../shared/docs/sdk-wire/vectors.json", env!("CARGO_MANIFEST_DIR"))
        });
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("signing vectors at {path}: {e}"));
        serde_json::from_str(&text).unwrap()
    }

    fn headers(list: &serde_json::Value) -> HeaderMap {
        let mut map = HeaderMap::new();
        for pair in list.as_array().unwrap() {
            let name = HeaderName::from_bytes(pair[0].as_str().unwrap().as_bytes()).unwrap();
            map.append(name, HeaderValue::from_str(pair[1].as_str().unwrap()).unwrap());
        }
        map
    }

    #[test]
    fn sdk_vectors_verify() {
        let vectors = vectors();
        assert_eq!(vectors.as_array().unwrap().len(), 2);
        for v in vectors.as_array().unwrap() {
            let map = headers(&v["headers"]);
            let req = Received {
                method: v["method"].as_str().unwrap(),
                raw_path: v["raw_path"].as_str().unwrap(),
                raw_query: v["raw_query"].as_str().unwrap(),
                headers: &map,
                body: v["body"].as_str().unwrap().as_bytes(),
            };
            let auth = parse_authorization(map["authorization"].to_str().unwrap()).unwrap();
            let canonical = canonical_request(&req, &auth.signed_headers).unwrap();
            assert_eq!(canonical, v["canonical_request"].as_str().unwrap());
            let date = map["x-sdk-date"].to_str().unwrap();
            assert_eq!(string_to_sign(date, &canonical), v["string_to_sign"].as_str().unwrap());
            let sk = v["sk"].as_str().unwrap();
            assert!(verify(&req, &auth, date, sk).unwrap());
            assert!(!verify(&req, &auth, date, "another secret").unwrap());

            let tampered = [req.body, b" "].concat();
            let changed = Received { body: &tampered, ..req };
            assert!(!verify(&changed, &auth, date, sk).unwrap());
        }
    }

    #[test]
    fn legacy_credential_form_is_read() {
        let auth = parse_authorization(
            "SDK-HMAC-SHA256 Credential=AK123/20240101/cn-north-4/mssi/sdk_request, \
             SignedHeaders=host;x-sdk-date, Signature=abc",
        )
        .unwrap();
        assert_eq!(auth.access_key, "AK123");
        assert_eq!(auth.signed_headers, ["host", "x-sdk-date"]);
    }

    #[test]
    fn other_algorithms_are_refused() {
        let err = parse_authorization("SDK-HMAC-SM3 Access=a, SignedHeaders=h, Signature=s");
        assert_eq!(err, Err(SignatureError::Algorithm));
        assert_eq!(parse_authorization("garbage"), Err(SignatureError::Malformed));
        assert_eq!(parse_authorization("SDK-HMAC-SHA256 Access=a"), Err(SignatureError::Malformed));
    }

    #[test]
    fn query_is_decoded_sorted_and_reencoded_keeping_plus() {
        assert_eq!(
            canonical_query("time_range=2020-11-10T00%3A00%3A00Z+to+x&b=2&a=1"),
            "a=1&b=2&time_range=2020-11-10T00%3A00%3A00Z%2Bto%2Bx"
        );
        assert_eq!(canonical_query(""), "");
    }

    #[test]
    fn path_segments_are_reencoded_with_trailing_slash() {
        assert_eq!(
            canonical_uri("/v3/p/abm/urn%3Aabm%3AX%3A%28a%2Cb%29"),
            "/v3/p/abm/urn%3Aabm%3AX%3A%28a%2Cb%29/"
        );
        assert_eq!(canonical_uri("/v1/p/flows"), "/v1/p/flows/");
        assert_eq!(canonical_uri("/a b"), "/a%20b/");
    }

    #[test]
    fn a_missing_signed_header_is_an_error() {
        let map = HeaderMap::new();
        let req =
            Received { method: "GET", raw_path: "/", raw_query: "", headers: &map, body: b"" };
        assert_eq!(
            canonical_request(&req, &["host".into()]),
            Err(SignatureError::MissingHeader("host".into()))
        );
    }
}
