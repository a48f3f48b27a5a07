//! The HTTP surface: management API (`/api/v1/*`), OpenAI-compatible proxy (`/v1/*`),
//! llama.cpp native routes (`/llama-cpp/*`), health, readiness, metrics, and the OpenAPI
//! document that describes all of them.

pub mod backends;
pub mod error;
pub mod instances;
pub mod keys;
pub mod logs;
pub mod system;

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
use crate::proxy::{native, openai};
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
    modifiers(&SecuritySchemes),
    tags(
        (name = "Instances", description = "Instance definitions, lifecycle, logs and events"),
        (name = "Keys", description = "Inference API keys"),
        (name = "Backends", description = "Backend tools and llama.cpp router models"),
        (name = "OpenAI", description = "The OpenAI-compatible endpoint"),
        (name = "llama.cpp", description = "llama-server's native endpoints"),
        (name = "System", description = "Health, readiness, version, configuration, events, metrics"),
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
        .routes(routes!(system::nodes))
        .routes(routes!(system::node))
        .routes(routes!(system::events))
        .routes(routes!(system::metrics))
}

fn inference() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(openai::models))
}

fn public() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(system::health)).routes(routes!(system::ready))
}

/// The OpenAPI document (the one committed at `openapi/openapi.json`).
pub fn openapi() -> OpenApiDoc {
    let mut doc = ApiDoc::openapi();
    doc.merge(public().into_openapi());
    doc.merge(management().into_openapi());
    doc.merge(inference().into_openapi());
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
        .route_layer(from_fn_with_state(state.clone(), management_auth));
    let inference = inference()
        .split_for_parts()
        .0
        .route("/v1/{*path}", post(openai::post))
        .route("/llama-cpp/{name}/", any(native::llama_cpp_root))
        .route("/llama-cpp/{name}/{*path}", any(native::llama_cpp))
        .route_layer(from_fn_with_state(state.clone(), inference_auth));
    Router::new()
        .merge(public().split_for_parts().0)
        .merge(management)
        .merge(inference)
        .merge(docs)
        .fallback(system::fallback)
        .with_state(state)
}
