//! The routes, with their OpenAPI description generated from the handlers'
//! annotations, served at /openapi.json; Swagger UI at /docs, its assets
//! compiled into the binary (utoipa-swagger-ui's `vendored` feature).

use crate::api::{self, AppState};
use std::sync::Arc;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "dbx-gateway",
        description = "HTTP access to the named databases of a dbx.toml: SQL with bound parameters, key-value, documents and vectors. Errors are application/problem+json carrying dbx's error kind."
    ),
    modifiers(&Bearer),
    tags(
        (name = "service", description = "Liveness, readiness, metrics"),
        (name = "databases", description = "The configured databases"),
        (name = "sql", description = "SQL with bound parameters ($1..$N)"),
        (name = "kv", description = "Key-value"),
        (name = "docs", description = "Documents"),
        (name = "vectors", description = "Vector collections and search"),
    )
)]
struct ApiDoc;

struct Bearer;

impl utoipa::Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// Every route, the OpenAPI document and the docs page.
pub(crate) fn router(state: Arc<AppState>) -> axum::Router {
    let v1 = OpenApiRouter::new()
        .routes(routes!(api::list_databases))
        .routes(routes!(api::db_health))
        .routes(routes!(api::sql_query))
        .routes(routes!(api::sql_execute))
        .routes(routes!(api::sql_transaction))
        .routes(routes!(api::kv_scan))
        .routes(routes!(api::kv_get, api::kv_set, api::kv_delete))
        .routes(routes!(api::kv_incr))
        .routes(routes!(api::docs_find))
        .routes(routes!(api::docs_insert))
        .routes(routes!(api::docs_update))
        .routes(routes!(api::docs_delete))
        .routes(routes!(api::docs_count))
        .routes(routes!(api::vec_create))
        .routes(routes!(api::vec_upsert))
        .routes(routes!(api::vec_search))
        .routes(routes!(api::vec_delete))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            api::auth,
        ));
    let (router, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(api::healthz))
        .routes(routes!(api::readyz))
        .routes(routes!(api::metrics_text))
        .merge(v1)
        .split_for_parts();
    router
        .merge(SwaggerUi::new("/docs").url("/openapi.json", doc))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            api::observe,
        ))
        .with_state(state)
}
