//! The router: every MSSI route behind authentication, the public ones (token issuing,
//! health, metrics, the OpenAPI document) beside them, and the layers every request passes.

mod abm;
mod abm_admin;
mod connections;
mod connectors;
mod flows;
mod hooks;
mod iam;
mod runs;
mod schedules;
mod system;
mod templates;

use axum::extract::DefaultBodyLimit;
use axum::http::Request;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;
use utoipa::openapi::{self, OpenApi as OpenApiDoc};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::error::{ApiError, Code};
use crate::{auth, request_id, telemetry, AppState};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Workbench",
        description = "Self-hosted server of the MSSI (MacroVerse SmartStage for Integrators) API"
    ),
    modifiers(&Security)
)]
struct ApiDoc;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, doc: &mut OpenApiDoc) {
        use openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-Auth-Token"))),
        );
        components.add_security_scheme(
            "aksk",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("Authorization"))),
        );
    }
}

/// The whole HTTP application.
pub fn app(state: AppState) -> Router {
    let (mssi, mut doc) = OpenApiRouter::<AppState>::with_openapi(ApiDoc::openapi())
        // Each resource module contributes its routes here.
        .merge(abm::router())
        .merge(abm_admin::router())
        .merge(flows::router())
        .merge(runs::router())
        .merge(schedules::router())
        .merge(connections::router())
        .merge(connectors::router())
        .merge(templates::router())
        .split_for_parts();
    let mssi = mssi.layer(from_fn_with_state(state.clone(), auth::authenticate));
    secure(&mut doc);

    let (public, public_doc) =
        OpenApiRouter::new().merge(iam::router()).merge(system::router()).split_for_parts();
    doc.merge(public_doc);
    doc.merge(<hooks::HookDoc as OpenApi>::openapi());
    document_errors(&mut doc);

    Router::new()
        .merge(mssi)
        .merge(public)
        .merge(hooks::router())
        .merge(system::openapi_router(&doc))
        .fallback(|| async { ApiError::code(Code::RouteNotFound) })
        .method_not_allowed_fallback(|| async { ApiError::code(Code::MethodNotAllowed) })
        .layer(from_fn(telemetry::middleware))
        .layer(from_fn(request_id::middleware))
        .layer(DefaultBodyLimit::max(state.config.body_limit))
        .layer(CatchPanicLayer::custom(|_| {
            axum::response::IntoResponse::into_response(ApiError::Internal(anyhow::anyhow!(
                "handler panicked"
            )))
        }))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
            tracing::info_span!(
                "request",
                method = %req.method(),
                path = %req.uri().path(),
                request_id = tracing::field::Empty,
            )
        }))
        .with_state(state)
}

fn operations(doc: &mut OpenApiDoc) -> impl Iterator<Item = &mut openapi::path::Operation> {
    doc.paths.paths.values_mut().flat_map(|item| {
        [&mut item.get, &mut item.post, &mut item.put, &mut item.delete, &mut item.patch]
            .into_iter()
            .flatten()
    })
}

/// Marks every authenticated operation with its security schemes.
fn secure(doc: &mut OpenApiDoc) {
    use openapi::security::SecurityRequirement;
    for op in operations(doc) {
        op.security = Some(vec![
            SecurityRequirement::new("token", Vec::<String>::new()),
            SecurityRequirement::new("aksk", Vec::<String>::new()),
        ]);
    }
}

/// Documents the error statuses any operation can answer with, so the document matches what
/// the server does.
fn document_errors(doc: &mut OpenApiDoc) {
    use openapi::{ContentBuilder, RefOr, ResponseBuilder};

    let text = || openapi::ObjectBuilder::new().schema_type(openapi::Type::String);
    let schema = openapi::ObjectBuilder::new()
        .property("error_code", text())
        .property("error_msg", text())
        .property("request_id", text())
        .required("error_code")
        .required("error_msg")
        .build();
    let content = ContentBuilder::new().schema(Some(schema)).build();
    let error = |desc: &str| {
        let response =
            ResponseBuilder::new().description(desc).content("application/json", content.clone());
        RefOr::T(response.build())
    };
    for op in operations(doc) {
        for (status, desc) in [
            ("400", "Invalid request (MSSI error envelope)"),
            ("401", "Authentication failed"),
            ("403", "Not allowed for this caller or project"),
            ("404", "No such resource"),
            ("413", "Request body too large"),
        ] {
            op.responses.responses.entry(status.to_owned()).or_insert_with(|| error(desc));
        }
    }
}
