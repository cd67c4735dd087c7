//! A lean HTTP/1.1 client for the hot request loops, where the load generator shares the
//! machine's cores with the server and PostgreSQL under test: every microsecond it spends on a
//! request is one the system under test does not get. One keep-alive connection, no pool, no
//! redirects, no JSON tree; the body goes out as given and comes back as bytes.
//!
//! Everything else (setup, reads, the other scenarios) keeps using `reqwest`.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

const AUTH_TOKEN: HeaderName = HeaderName::from_static("x-auth-token");

/// One connection to a server, opened on first use, and opened again after the server closed
/// it or an exchange on it failed.
pub(crate) struct Http1 {
    addr: SocketAddr,
    host: HeaderValue,
    token: Option<HeaderValue>,
    conn: Option<SendRequest<Full<Bytes>>>,
}

impl Http1 {
    /// A client of the server at `addr`; `token`, if any, is sent as `X-Auth-Token`.
    pub(crate) fn new(addr: SocketAddr, token: Option<&str>) -> anyhow::Result<Http1> {
        Ok(Http1 {
            addr,
            host: HeaderValue::try_from(addr.to_string())?,
            token: token.map(HeaderValue::from_str).transpose()?,
            conn: None,
        })
    }

    pub(crate) async fn get(&mut self, uri: &Uri) -> anyhow::Result<(StatusCode, Bytes)> {
        self.send(Method::GET, uri, Bytes::new()).await
    }

    /// POSTs `json`, already serialized.
    pub(crate) async fn post_json(
        &mut self,
        uri: &Uri,
        json: impl Into<Bytes>,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        self.send(Method::POST, uri, json.into()).await
    }

    async fn send(
        &mut self,
        method: Method,
        uri: &Uri,
        body: Bytes,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        let mut request =
            Request::builder().method(method).uri(uri.clone()).header(HOST, self.host.clone());
        if !body.is_empty() {
            request = request.header(CONTENT_TYPE, "application/json");
        }
        if let Some(token) = &self.token {
            request = request.header(AUTH_TOKEN, token.clone());
        }
        // hyper sets Content-Length from the full body's exact size.
        let request = request.body(Full::new(body))?;

        // The connection is out of `self` during the exchange and is put back only when the
        // exchange completed: after an error the next request starts on a new one.
        let mut conn = self.connection().await?;
        let response = conn.send_request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        self.conn = Some(conn);
        Ok((status, body))
    }

    /// The kept connection once it can take a request, or a new one if there is none or the
    /// server closed it while it was idle (which is not an error of the next request).
    async fn connection(&mut self) -> anyhow::Result<SendRequest<Full<Bytes>>> {
        if let Some(mut conn) = self.conn.take() {
            if conn.ready().await.is_ok() {
                return Ok(conn);
            }
        }
        let stream = TcpStream::connect(self.addr).await?;
        // A request is written whole; waiting for an ACK before sending it (Nagle) only adds
        // latency.
        stream.set_nodelay(true)?;
        let (conn, driver) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        // The driver does the connection's I/O; it ends when `conn` is dropped or the server
        // closes, and any error it ends with shows in the exchange that was under way.
        tokio::spawn(driver);
        Ok(conn)
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    const OK: &str = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";

    /// A server that takes one request per connection: on the first connection it answers
    /// `first` (nothing, if empty), on later ones `OK`, and then closes.
    async fn one_shot_server(first: &'static str) -> anyhow::Result<SocketAddr> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            let mut answer = first;
            while let Ok((mut stream, _)) = listener.accept().await {
                let (mut request, mut buf) = (Vec::new(), [0; 1024]);
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = stream.write_all(answer.as_bytes()).await;
                let _ = stream.shutdown().await;
                // Read what is left until the client closes, so that closing sends no reset.
                let _ = stream.read_to_end(&mut request).await;
                answer = OK;
            }
        });
        Ok(addr)
    }

    async fn within_10s<T>(test: impl Future<Output = T>) -> T {
        tokio::time::timeout(Duration::from_secs(10), test).await.expect("the test hung")
    }

    #[tokio::test]
    async fn a_connection_the_server_closed_is_reopened_without_an_error() -> anyhow::Result<()> {
        let first = "HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nfirst";
        let mut http = Http1::new(one_shot_server(first).await?, None)?;
        let root = Uri::from_static("/");
        let answers =
            within_10s(async { anyhow::Ok((http.get(&root).await?, http.get(&root).await?)) });
        let (first, second) = answers.await?;
        assert_eq!(first, (StatusCode::OK, Bytes::from("first")));
        assert_eq!(second, (StatusCode::OK, Bytes::from("ok")));
        Ok(())
    }

    #[tokio::test]
    async fn a_failed_exchange_is_an_error_and_the_next_request_reconnects() -> anyhow::Result<()> {
        let mut http = Http1::new(one_shot_server("").await?, Some("secret"))?;
        let root = Uri::from_static("/");
        let (first, second) = within_10s(async {
            (http.post_json(&root, r#"{"n":1}"#).await, http.post_json(&root, r#"{"n":2}"#).await)
        })
        .await;
        assert!(first.is_err(), "{first:?}");
        assert_eq!(second?, (StatusCode::OK, Bytes::from("ok")));
        Ok(())
    }
}
