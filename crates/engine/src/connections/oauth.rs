//! OAuth2 client credentials: fetching access tokens and keeping them until shortly before
//! they expire.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Tokens are refreshed this long before the expiry the token endpoint announced.
const REFRESH_MARGIN: Duration = Duration::from_secs(60);
/// Lifetime assumed when the endpoint announces none.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);

/// A fetched token and when to fetch the next one.
#[derive(Clone)]
struct Cached {
    token: String,
    refresh_at: Instant,
}

/// Access tokens by connection (id and version), in memory only.
#[derive(Default)]
pub(crate) struct TokenCache {
    tokens: Mutex<HashMap<String, Cached>>,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenCache(..)")
    }
}

/// What the token endpoint needs.
pub(crate) struct ClientCredentials<'a> {
    pub(crate) token_url: &'a str,
    pub(crate) client_id: &'a str,
    pub(crate) client_secret: &'a str,
    pub(crate) scope: Option<&'a str>,
}

impl TokenCache {
    /// A valid token for `key`, fetched when none is cached or the cached one is about to
    /// expire.
    pub(crate) async fn token(
        &self,
        client: &reqwest::Client,
        key: &str,
        creds: &ClientCredentials<'_>,
    ) -> Result<String, String> {
        if let Some(hit) = self.get(key) {
            return Ok(hit);
        }
        let (token, lifetime) = fetch(client, creds).await?;
        let refresh_at = Instant::now() + lifetime.saturating_sub(REFRESH_MARGIN);
        let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        if tokens.len() > 10_000 {
            tokens.clear();
        }
        tokens.insert(key.to_owned(), Cached { token: token.clone(), refresh_at });
        Ok(token)
    }

    fn get(&self, key: &str) -> Option<String> {
        let tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        tokens.get(key).filter(|c| Instant::now() < c.refresh_at).map(|c| c.token.clone())
    }
}

/// One client-credentials grant. Error texts name the endpoint's answer, never a credential.
pub(crate) async fn fetch(
    client: &reqwest::Client,
    creds: &ClientCredentials<'_>,
) -> Result<(String, Duration), String> {
    let mut form = vec![
        ("grant_type", "client_credentials"),
        ("client_id", creds.client_id),
        ("client_secret", creds.client_secret),
    ];
    if let Some(scope) = creds.scope {
        form.push(("scope", scope));
    }
    let url = reqwest::Url::parse(creds.token_url)
        .map_err(|e| format!("`token_url` is not a valid URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("`token_url` must be an http or https URL, not `{}:`", url.scheme()));
    }
    let response =
        client.post(url).form(&form).timeout(Duration::from_secs(30)).send().await.map_err(
            |e| format!("token request failed: {}", crate::connectors::http::describe(e)),
        )?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        let reason = body.get("error").and_then(Value::as_str).unwrap_or("no error code");
        return Err(format!("token endpoint answered HTTP {} ({reason})", status.as_u16()));
    }
    let Some(token) = body.get("access_token").and_then(Value::as_str) else {
        return Err("token endpoint answered without `access_token`".into());
    };
    let lifetime = body
        .get("expires_in")
        .and_then(|v| v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok())))
        .map_or(DEFAULT_LIFETIME, Duration::from_secs);
    Ok((token.to_owned(), lifetime))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A token request used to fail with a bare "builder error" (bad URL) or "error sending
    /// request" (nothing listening), without saying why.
    #[tokio::test]
    async fn token_request_failures_say_why_and_never_name_the_secret() {
        let client = reqwest::Client::new();
        let creds = |token_url| ClientCredentials {
            token_url,
            client_id: "id",
            client_secret: "S3CRET",
            scope: None,
        };
        let err = fetch(&client, &creds("not a url")).await.unwrap_err();
        assert!(err.contains("`token_url` is not a valid URL"), "{err}");
        let err = fetch(&client, &creds("ftp://127.0.0.1/token")).await.unwrap_err();
        assert!(err.contains("http or https"), "{err}");

        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let url = format!("http://127.0.0.1:{port}/token?key=S3CRET");
        let err = fetch(&client, &creds(&url)).await.unwrap_err();
        assert!(err.to_lowercase().contains("connection refused"), "{err}");
        assert!(!err.contains("S3CRET"), "{err}");
    }
}
