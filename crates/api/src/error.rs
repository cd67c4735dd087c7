//! The one error type of the API and its rendering as the MSSI error envelope.
//!
//! Every failure leaves as `{"error_code", "error_msg", "request_id"}` with the status the
//! contract documents for that code. Internal failures (database, bugs) are answered with a
//! generic text; their detail is stored in the response extensions and logged once by the
//! request-logging middleware, never sent to the client.

use std::fmt;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::request_id;

pub type ApiResult<T, E = ApiError> = Result<T, E>;

/// The MSSI error codes the server emits, with their documented status and wire text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    ConnectorNotFound,
    ConnectorCannotDelete,
    ConnectorInUse,
    ConnectorNameEmpty,
    FlowNotFound,
    DuplicateFlowName,
    TemplateNotFound,
    ConnectionNotFound,
    DuplicateConnectionName,
    DataFormat,
    NoPermission,
    BindFailed,
    NotSwagger,
    ConnectionInUse,
    FlowIsEnabled,
    FlowNotExist,
    ConnectorNotExist,
    ConnectNotExist,
    Forbidden,
    TimeRangeInvalid,
    TriggerTypeInvalid,
    NoTriggerStep,
    ParamInvalid,
    RunNotFound,
    TimeRangeTooLong,
    FlowDisabled,
    ActionNotExist,
    ActionNotInConnector,
    FlowUnknown,
    AbmInternal,
    AbmParamsInvalid,
    AbmQuota,
    AbmNotFound,
    AbmNoPermission,
    PayloadTooLarge,
    RouteNotFound,
    /// `FlowNotExist` at a hook URL, where an unknown flow is a missing resource.
    HookNotFound,
    /// `FlowDisabled` at a hook URL: a disabled flow serves nothing there.
    HookDisabled,
    MethodNotAllowed,
}

impl Code {
    /// The wire code, documented HTTP status and default message.
    pub fn parts(self) -> (&'static str, StatusCode, &'static str) {
        use StatusCode as S;
        match self {
            Code::ConnectorNotFound => ("MSSI.00010001", S::BAD_REQUEST, "connector is not found"),
            Code::ConnectorCannotDelete => {
                ("MSSI.00010004", S::BAD_REQUEST, "connector can not delete")
            }
            Code::ConnectorInUse => (
                "MSSI.00010005",
                S::BAD_REQUEST,
                "connector was used in flow or template can not delete",
            ),
            Code::ConnectorNameEmpty => {
                ("MSSI.00010006", S::BAD_REQUEST, "connector name can not be null")
            }
            Code::FlowNotFound => ("MSSI.00011001", S::BAD_REQUEST, "flow not found"),
            Code::DuplicateFlowName => ("MSSI.00011004", S::BAD_REQUEST, "duplicate flowName"),
            Code::TemplateNotFound => ("MSSI.00012001", S::BAD_REQUEST, "template not found"),
            Code::ConnectionNotFound => ("MSSI.00015001", S::BAD_REQUEST, "connect not found"),
            Code::DuplicateConnectionName => {
                ("MSSI.00015002", S::BAD_REQUEST, "connectionName repeat")
            }
            Code::DataFormat => ("MSSI.00017001", S::BAD_REQUEST, "data format is incorrect"),
            Code::NoPermission => ("MSSI.00017002", S::FORBIDDEN, "no permission"),
            Code::BindFailed => ("MSSI.00017006", S::BAD_REQUEST, "to bean failed"),
            Code::NotSwagger => ("MSSI.00017008", S::BAD_REQUEST, "is not a swagger"),
            Code::ConnectionInUse => ("MSSI.00017010", S::BAD_REQUEST, "param is invalid"),
            Code::FlowIsEnabled => ("MSSI.00017011", S::BAD_REQUEST, "flow is enable"),
            Code::FlowNotExist => ("MSSI.00020001", S::BAD_REQUEST, "flow is not exist"),
            Code::ConnectorNotExist => ("MSSI.00020002", S::BAD_REQUEST, "connector is not exist"),
            Code::ConnectNotExist => ("MSSI.00020003", S::BAD_REQUEST, "connect is not exist"),
            Code::Forbidden => {
                ("MSSI.00020004", S::FORBIDDEN, "forbidden operation. concat the project owner")
            }
            Code::TimeRangeInvalid => (
                "MSSI.00020005",
                S::BAD_REQUEST,
                "time_range is invalid, \
                 example:2020-11-10T00:00:00.000Zto2022-23-10T00:00:00.000Z",
            ),
            Code::TriggerTypeInvalid => {
                ("MSSI.00020007", S::BAD_REQUEST, "trigger type is invalid.")
            }
            Code::NoTriggerStep => (
                "MSSI.00020008",
                S::BAD_REQUEST,
                "flow has no trigger step. Please check flow step config.",
            ),
            Code::ParamInvalid => ("MSSI.00020011", S::BAD_REQUEST, "param is invalid."),
            Code::RunNotFound => ("MSSI.00020012", S::BAD_REQUEST, "running history is not exist."),
            Code::TimeRangeTooLong => {
                ("MSSI.00020015", S::BAD_REQUEST, "time_range exceeds 30 days.")
            }
            Code::FlowDisabled => ("MSSI.00020018", S::BAD_REQUEST, "flow status is disable"),
            Code::ActionNotExist => ("MSSI.00020019", S::BAD_REQUEST, "action in not exist"),
            Code::ActionNotInConnector => {
                ("MSSI.00020020", S::BAD_REQUEST, "action is not belong to connector")
            }
            Code::FlowUnknown => ("MSSI.00029999", S::INTERNAL_SERVER_ERROR, "unknown error"),
            Code::AbmInternal => {
                ("MSSI.00050001", S::INTERNAL_SERVER_ERROR, "Internal Server Error")
            }
            Code::AbmParamsInvalid => ("MSSI.00050018", S::BAD_REQUEST, "Some params are invalid"),
            Code::AbmQuota => ("MSSI.00050019", S::BAD_REQUEST, "Resource count over limit"),
            Code::AbmNotFound => ("MSSI.00050021", S::NOT_FOUND, "Resource not exist"),
            Code::AbmNoPermission => ("MSSI.00050022", S::FORBIDDEN, "No permission"),
            // Not in the MSSI table: transport-level failures get codes in the same family.
            Code::PayloadTooLarge => {
                ("MSSI.00020013", S::PAYLOAD_TOO_LARGE, "request body is too large")
            }
            Code::RouteNotFound => ("MSSI.00020014", S::NOT_FOUND, "resource is not found"),
            Code::HookNotFound => ("MSSI.00020001", S::NOT_FOUND, "flow is not exist"),
            Code::HookDisabled => ("MSSI.00020018", S::NOT_FOUND, "flow status is disable"),
            Code::MethodNotAllowed => {
                ("MSSI.00020010", S::METHOD_NOT_ALLOWED, "method is not allowed")
            }
        }
    }

    pub fn status(self) -> StatusCode {
        self.parts().1
    }

    pub fn as_str(self) -> &'static str {
        self.parts().0
    }
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Authentication failed: answered as API Gateway does, `401 APIGW.0301`.
    #[error("Incorrect IAM authentication information: {0}")]
    Unauthenticated(String),
    /// A documented MSSI failure; `detail` replaces the default text when given.
    #[error("{}", detail.as_deref().unwrap_or(code.parts().2))]
    Mssi { code: Code, detail: Option<String> },
    #[error("database error: {0}")]
    Database(sqlx::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
    /// An unexpected failure in a domain whose 500 has its own code (the ABM endpoints answer
    /// `MSSI.00050001`, not the flow domain's `MSSI.00029999`).
    #[error("{1:#}")]
    InternalIn(Domain, anyhow::Error),
}

/// The error-code family of an unexpected failure (contract §3.3, last row).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Domain {
    /// Flows, runs, connectors and everything else: `MSSI.00029999`.
    Flow,
    /// The application model: `MSSI.00050001`.
    Abm,
}

impl Domain {
    fn internal_code(self) -> Code {
        match self {
            Domain::Flow => Code::FlowUnknown,
            Domain::Abm => Code::AbmInternal,
        }
    }
}

impl From<sqlx::Error> for ApiError {
    /// Text PostgreSQL cannot store (a NUL, an invalid encoding) is the client's input, not a
    /// server failure: the extractors refuse most of it, and this catches what they cannot see.
    fn from(error: sqlx::Error) -> Self {
        let code = error.as_database_error().and_then(|d| d.code());
        if matches!(code.as_deref(), Some("22021" | "22P05")) {
            return ApiError::with(Code::DataFormat, "text may not contain NUL characters");
        }
        ApiError::Database(error)
    }
}

impl ApiError {
    pub fn code(code: Code) -> Self {
        ApiError::Mssi { code, detail: None }
    }

    /// The code with a message that says precisely what is wrong. The documented text leads,
    /// so clients matching on it still do.
    pub fn with(code: Code, detail: impl fmt::Display) -> Self {
        ApiError::Mssi { code, detail: Some(format!("{}: {detail}", code.parts().2)) }
    }

    pub fn unauthenticated(reason: impl Into<String>) -> Self {
        ApiError::Unauthenticated(reason.into())
    }

    /// An unexpected failure answered with `domain`'s internal code; `source` is logged, never
    /// sent.
    pub fn internal_in(domain: Domain, source: impl Into<anyhow::Error>) -> Self {
        ApiError::InternalIn(domain, source.into())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            ApiError::Mssi { code, .. } => code.status(),
            ApiError::Database(_) | ApiError::Internal(_) | ApiError::InternalIn(..) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }
}

#[derive(Serialize)]
struct Envelope<'a> {
    error_code: &'a str,
    error_msg: String,
    request_id: String,
}

/// The longest `error_msg` the contract allows (§3.1), in characters.
const MAX_ERROR_MSG_CHARS: usize = 512;

/// An `error_msg` cut to [`MAX_ERROR_MSG_CHARS`], ending in an ellipsis when it was cut.
fn bounded(text: String) -> (String, Option<String>) {
    if text.chars().count() <= MAX_ERROR_MSG_CHARS {
        return (text, None);
    }
    let mut cut: String = text.chars().take(MAX_ERROR_MSG_CHARS - 1).collect();
    cut.push('…');
    (cut, Some(text))
}

/// The whole text of an `error_msg` that was cut to fit the envelope, kept in the response
/// extensions for the logging middleware.
#[derive(Clone, Debug)]
pub struct FullMessage(pub Arc<String>);

/// Detail of a 500, kept in the response extensions for the logging middleware.
#[derive(Clone, Debug)]
pub struct InternalDetail(pub Arc<String>);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let (error_code, error_msg) = match &self {
            ApiError::Unauthenticated(_) => ("APIGW.0301", self.to_string()),
            ApiError::Mssi { code, .. } => (code.as_str(), self.to_string()),
            ApiError::Database(_) | ApiError::Internal(_) => {
                let (code, _, text) = Domain::Flow.internal_code().parts();
                (code, text.to_owned())
            }
            ApiError::InternalIn(domain, _) => {
                let (code, _, text) = domain.internal_code().parts();
                (code, text.to_owned())
            }
        };
        let (error_msg, full) = bounded(error_msg);
        let body = Envelope { error_code, error_msg, request_id: request_id::current() };
        let mut response = (status, axum::Json(body)).into_response();
        if let Some(full) = full {
            response.extensions_mut().insert(FullMessage(Arc::new(full)));
        }
        if status.is_server_error() {
            response.extensions_mut().insert(InternalDetail(Arc::new(format!("{self:#}"))));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::to_bytes;

    async fn render(err: ApiError) -> (StatusCode, serde_json::Value) {
        let response = err.into_response();
        let status = response.status();
        let bytes = to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn documented_code_keeps_its_status_and_text() {
        let (status, body) = render(ApiError::code(Code::FlowDisabled)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error_code"], "MSSI.00020018");
        assert_eq!(body["error_msg"], "flow status is disable");
        assert!(body.get("request_id").is_some());
    }

    #[tokio::test]
    async fn detail_follows_the_documented_text() {
        let (_, body) = render(ApiError::with(Code::ParamInvalid, "limit must be >= 1")).await;
        assert_eq!(body["error_msg"], "param is invalid.: limit must be >= 1");
    }

    /// A flow with 200 broken steps used to answer a message of almost 27,000 characters.
    #[tokio::test]
    async fn long_messages_are_cut_to_the_contract_limit_and_kept_whole_for_the_log() {
        let long = "é".repeat(600);
        let response = ApiError::with(Code::ParamInvalid, &long).into_response();
        let full = response.extensions().get::<FullMessage>().cloned().unwrap();
        assert!(full.0.ends_with(&long));
        let bytes = to_bytes(response.into_body(), 1 << 20).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let msg = body["error_msg"].as_str().unwrap();
        assert_eq!(msg.chars().count(), 512);
        assert!(msg.starts_with("param is invalid.: éé") && msg.ends_with("é…"), "{msg}");

        let (_, body) = render(ApiError::with(Code::ParamInvalid, "x".repeat(493))).await;
        assert_eq!(body["error_msg"].as_str().unwrap().chars().count(), 512);
        assert!(!body["error_msg"].as_str().unwrap().ends_with('…'));
    }

    #[tokio::test]
    async fn database_failures_never_leak_their_text() {
        let err = ApiError::Database(sqlx::Error::Protocol("SELECT secret FROM x".into()));
        let (status, body) = render(err).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body["error_code"], "MSSI.00029999");
        assert!(!body.to_string().contains("SELECT"));
    }

    #[tokio::test]
    async fn abm_failures_use_the_abm_code_and_keep_the_detail_for_the_log() {
        let source = sqlx::Error::Protocol("SELECT secret FROM abm_entities".into());
        let response = ApiError::internal_in(Domain::Abm, source).into_response();
        let detail = response.extensions().get::<InternalDetail>().cloned();
        assert!(detail.is_some_and(|d| d.0.contains("SELECT secret")));
        let status = response.status();
        let bytes = to_bytes(response.into_body(), 1 << 20).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body["error_code"], "MSSI.00050001");
        assert_eq!(body["error_msg"], "Internal Server Error");
        assert!(!body.to_string().contains("SELECT"));
    }

    #[tokio::test]
    async fn authentication_failures_look_like_the_gateway() {
        let (status, body) = render(ApiError::unauthenticated("verify aksk signature fail")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["error_code"], "APIGW.0301");
        assert_eq!(
            body["error_msg"],
            "Incorrect IAM authentication information: verify aksk signature fail"
        );
    }
}
