//! The HTTP surface: management API (`/api/v1/*`), OpenAI-compatible proxy (`/v1/*`),
//! llama.cpp native routes (`/llama-cpp/*`), health, readiness, metrics, and the OpenAPI
//! document that describes all of them.

pub mod activity;
pub mod backends;
pub mod body;
pub mod config_reload;
pub mod error;
pub mod extract;
pub mod instances;
pub mod keys;
pub mod logs;
pub mod resources;
pub mod router_models;
pub mod session;
pub mod system;
pub mod system_checks;
pub mod wire;

use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::routing::{any, get, post};
use utoipa::openapi::OpenApi as OpenApiDoc;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

use crate::auth::{inference_auth, management_auth};
use crate::proxy::{native, openai, router_compat};
use crate::state::AppState;

/// Path of the OpenAPI document.
pub const OPENAPI_PATH: &str = "/api/v1/openapi.json";

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut OpenApiDoc) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = |description: &str| {
            let mut http = Http::new(HttpAuthScheme::Bearer);
            http.description = Some(description.to_owned());
            SecurityScheme::Http(http)
        };
        components.add_security_scheme(
            "management_key",
            bearer("A management key (configuration `auth.management_keys`). Also accepted as X-API-Key or ?api_key=."),
        );
        components.add_security_scheme(
            "inference_key",
            bearer("An inference key (`llamactl-` + 64 hex digits) created with POST /api/v1/auth/keys."),
        );
    }
}

pub use llamactl_api::types::{NestedError, NestedErrorBody};

/// Adds the answers every route may give to its documentation: 401 and 403 on authenticated
/// routes, 400 where there is input, 413 and 415 where there is a body.
struct StandardResponses;

impl Modify for StandardResponses {
    fn modify(&self, openapi: &mut OpenApiDoc) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        for (path, item) in openapi.paths.paths.iter_mut() {
            let nested = path.starts_with("/v1/") || path.starts_with("/llama-cpp/");
            let operations = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
            for operation in operations.into_iter().flatten() {
                let secured = operation.security.as_ref().is_some_and(|s| !s.is_empty());
                let has_body = operation.request_body.is_some();
                let has_input =
                    has_body || path.contains('{') || operation.parameters.as_ref().is_some_and(|p| !p.is_empty());
                let responses = &mut operation.responses.responses;
                let mut add = |status: &str, description: &str, schema: &str| {
                    let content = ContentBuilder::new().schema(Some(Ref::from_schema_name(schema))).build();
                    let response =
                        ResponseBuilder::new().description(description).content("application/json", content).build();
                    responses.entry(status.to_owned()).or_insert(response.into());
                };
                if secured {
                    add("401", "No key, or an invalid or expired key", "NestedErrorBody");
                    add("403", "The key may not do this", "NestedErrorBody");
                }
                let error_schema = if nested { "NestedErrorBody" } else { "ErrorBody" };
                if has_input {
                    add("400", "Invalid input; the message names the field", error_schema);
                }
                if has_body {
                    add("413", "Body too large", error_schema);
                    add("415", "Unsupported content type", error_schema);
                }
            }
        }
    }
}

/// The parts of the document that are not collected from routed handlers: wildcard routes
/// (registered by hand) and the security schemes.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "llamactl",
        description = "Runs and supervises llama.cpp, mlx_lm and vLLM instances behind one OpenAI-compatible endpoint. \
                       Management routes need a management key, inference routes an inference or management key \
                       (unless the configuration turns authentication off). Errors of management routes are \
                       {\"error\": code, \"details\": message}; inference routes answer errors in the OpenAI form.",
        license(name = "MIT OR Apache-2.0")
    ),
    paths(openai::post, native::llama_cpp, native::raw),
    components(schemas(NestedErrorBody, NestedError, error::ErrorBody)),
    modifiers(&SecuritySchemes),
    tags(
        (name = "Instances", description = "Instance definitions, lifecycle, logs and events"),
        (name = "Keys", description = "Inference API keys"),
        (name = "Backends", description = "Backend tools and llama.cpp router models"),
        (name = "OpenAI", description = "The OpenAI-compatible endpoint"),
        (name = "llama.cpp", description = "llama-server's native endpoints"),
        (name = "Activity", description = "Records of proxied requests, their statistics, and requests in flight"),
        (name = "System", description = "Health, readiness, version, configuration, events, metrics"),
        (name = "Dashboard", description = "The web dashboard's sign-in (a session cookie in place of the key)"),
    )
)]
struct ApiDoc;

fn management() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(instances::list))
        .routes(routes!(instances::get, instances::create, instances::update, instances::delete))
        .routes(routes!(instances::start))
        .routes(routes!(instances::stop))
        .routes(routes!(instances::restart))
        .routes(routes!(instances::events))
        .routes(routes!(router_models::list))
        .routes(routes!(router_models::load))
        .routes(routes!(router_models::unload))
        .routes(routes!(router_models::events))
        .routes(routes!(logs::logs))
        .routes(routes!(keys::list, keys::create))
        .routes(routes!(keys::get, keys::delete))
        .routes(routes!(keys::permissions))
        .routes(routes!(backends::llama_help))
        .routes(routes!(backends::llama_version))
        .routes(routes!(backends::llama_devices))
        .routes(routes!(backends::parse_llama))
        .routes(routes!(backends::parse_mlx))
        .routes(routes!(backends::parse_vllm))
        .routes(routes!(backends::router_models))
        .routes(routes!(backends::router_load))
        .routes(routes!(backends::router_unload))
        .routes(routes!(system::version))
        .routes(routes!(system::config))
        .routes(routes!(config_reload::reload, config_reload::last))
        .routes(routes!(system::nodes))
        .routes(routes!(system::node))
        .routes(routes!(system::events))
        .routes(routes!(system::metrics))
        .routes(routes!(activity::list))
        .routes(routes!(activity::stats))
        .routes(routes!(activity::inflight))
        .routes(routes!(activity::cancel))
        .routes(routes!(resources::system_metrics))
        .routes(routes!(resources::system_info))
}

fn inference() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(openai::models))
        .routes(routes!(router_compat::list))
        .routes(routes!(router_compat::load))
        .routes(routes!(router_compat::unload))
        .routes(routes!(router_compat::events))
}

fn public() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(system::health)).routes(routes!(system::ready)).routes(routes!(
        session::status,
        session::sign_in,
        session::sign_out
    ))
}

/// The OpenAPI document (the one committed at `openapi/openapi.json`).
pub fn openapi() -> OpenApiDoc {
    let mut doc = ApiDoc::openapi();
    doc.merge(public().into_openapi());
    doc.merge(management().into_openapi());
    doc.merge(inference().into_openapi());
    StandardResponses.modify(&mut doc);
    doc
}

/// Every route, with authentication and the documentation routes.
pub fn router(state: AppState) -> Router {
    let doc = openapi();
    let docs: Router<AppState> = if state.config.server.enable_swagger {
        Router::from(SwaggerUi::new("/swagger-ui").url(OPENAPI_PATH, doc))
    } else {
        Router::new().route(OPENAPI_PATH, get(move || std::future::ready(axum::Json(doc.clone()))))
    };
    let management = management()
        .split_for_parts()
        .0
        .route("/api/v1/instances/{name}/proxy/{*path}", any(native::raw))
        .route_layer(from_fn_with_state(state.clone(), management_auth))
        // Request spans for management calls only: the proxy's hot path stays lean.
        .layer(tower_http::trace::TraceLayer::new_for_http());
    let inference = inference()
        .split_for_parts()
        .0
        .route("/v1/{*path}", post(openai::post))
        .route("/llama-cpp/{name}/", any(native::llama_cpp_root))
        .route("/llama-cpp/{name}/{*path}", any(native::llama_cpp))
        .route_layer(from_fn_with_state(state.clone(), inference_auth))
        // Outside authentication, so that refused requests are recorded too.
        .route_layer(from_fn_with_state(state.clone(), crate::activity::layer::record));
    Router::new()
        .merge(public().split_for_parts().0)
        .merge(management)
        .merge(inference)
        .merge(docs)
        .fallback(crate::dashboard::serve)
        .with_state(state)
}
