//! Where a request's `model` leads: an instance, `instance/sub-model`, a router's model by its
//! own id or alias (unique across instances), or an id containing `/` or `:` that is a model's
//! own id (`org/model:Q4_K_M`). The longest match over known names wins; a tie between
//! different targets is ambiguous.

/// Where a `model` value leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The instance.
    pub instance: String,
    /// For a router instance's model: the model the router gets.
    pub sub_model: Option<String>,
}

/// Why a `model` leads nowhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    /// No instance or model has this name.
    NotFound,
    /// Several do: `instance` or `instance/model` for each.
    Ambiguous(Vec<String>),
}

/// One router instance's models as routing sees them: `(id, aliases)`.
pub type KnownModels<'a> = (&'a str, Vec<(&'a str, &'a [String])>);

/// Resolves `model` against the instances (`is_instance`) and the router instances' known
/// models (`routers`).
///
/// ```
/// use llamactl_server::proxy::model_route::{resolve, Route, RouteError};
/// let aliases: Vec<String> = vec!["fast".into()];
/// let routers = [("r", vec![("org/tiny:Q8", &aliases[..]), ("beta", &[][..])]), ("s", vec![("beta", &[][..])])];
/// let is_instance = |name: &str| ["r", "s", "qwen", "org"].contains(&name);
/// let route = |instance: &str, sub: Option<&str>| Route { instance: instance.into(), sub_model: sub.map(Into::into) };
/// assert_eq!(resolve("qwen", is_instance, &routers), Ok(route("qwen", None)));
/// assert_eq!(resolve("r/beta", is_instance, &routers), Ok(route("r", Some("beta"))));
/// assert_eq!(resolve("fast", is_instance, &routers), Ok(route("r", Some("org/tiny:Q8"))));
/// // The model's own id is longer than the instance "org".
/// assert_eq!(resolve("org/tiny:Q8", is_instance, &routers), Ok(route("r", Some("org/tiny:Q8"))));
/// assert_eq!(resolve("org/other", is_instance, &routers), Ok(route("org", Some("other"))));
/// assert_eq!(resolve("beta", is_instance, &routers), Err(RouteError::Ambiguous(vec!["r/beta".into(), "s/beta".into()])));
/// assert_eq!(resolve("nope", is_instance, &routers), Err(RouteError::NotFound));
/// ```
pub fn resolve(
    model: &str,
    is_instance: impl Fn(&str) -> bool,
    routers: &[KnownModels<'_>],
) -> Result<Route, RouteError> {
    // (matched length, route)
    let mut matches: Vec<(usize, Route)> = Vec::new();
    if is_instance(model) {
        matches.push((model.len(), Route { instance: model.to_owned(), sub_model: None }));
    }
    for (instance, models) in routers {
        for (id, aliases) in models {
            if *id == model || aliases.iter().any(|a| a == model) {
                matches
                    .push((model.len(), Route { instance: (*instance).to_owned(), sub_model: Some((*id).to_owned()) }));
            }
        }
    }
    // `instance/model`: the part before each `/` that names an instance.
    for (at, _) in model.match_indices('/') {
        let (instance, rest) = (&model[..at], &model[at + 1..]);
        if !rest.is_empty() && is_instance(instance) {
            let known = routers.iter().find(|(name, _)| *name == instance);
            let sub = known
                .and_then(|(_, models)| {
                    models.iter().find(|(id, aliases)| *id == rest || aliases.iter().any(|a| a == rest))
                })
                .map_or(rest, |(id, _)| id);
            matches.push((instance.len(), Route { instance: instance.to_owned(), sub_model: Some(sub.to_owned()) }));
        }
    }
    let Some(longest) = matches.iter().map(|(len, _)| *len).max() else { return Err(RouteError::NotFound) };
    let mut best: Vec<Route> = matches.into_iter().filter(|(len, _)| *len == longest).map(|(_, r)| r).collect();
    best.dedup();
    if best.len() == 1 {
        return Ok(best.remove(0));
    }
    let mut names: Vec<String> = best
        .iter()
        .map(|r| match &r.sub_model {
            Some(sub) => format!("{}/{sub}", r.instance),
            None => r.instance.clone(),
        })
        .collect();
    names.sort();
    names.dedup();
    Err(RouteError::Ambiguous(names))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(instance: &str, sub: Option<&str>) -> Route {
        Route { instance: instance.into(), sub_model: sub.map(Into::into) }
    }

    #[test]
    fn an_instance_and_a_model_of_the_same_name_are_ambiguous() {
        let routers = [("r", vec![("qwen", &[][..])])];
        let is_instance = |n: &str| n == "qwen" || n == "r";
        assert_eq!(
            resolve("qwen", is_instance, &routers),
            Err(RouteError::Ambiguous(vec!["qwen".into(), "r/qwen".into()]))
        );
        // Naming the instance settles it.
        assert_eq!(resolve("r/qwen", is_instance, &routers), Ok(route("r", Some("qwen"))));
    }

    #[test]
    fn instance_slash_alias_goes_to_the_model_s_id() {
        let aliases = ["a".to_owned()];
        let routers = [("r", vec![("alpha", &aliases[..])])];
        assert_eq!(resolve("r/a", |n| n == "r", &routers), Ok(route("r", Some("alpha"))));
        // A router not running yet (no known models) still takes `instance/model`.
        assert_eq!(resolve("cold/any:Q4", |n| n == "cold", &[]), Ok(route("cold", Some("any:Q4"))));
        assert_eq!(resolve("r/", |n| n == "r", &routers), Err(RouteError::NotFound));
    }

    #[test]
    fn the_longest_instance_prefix_wins() {
        // Instances "a" and "a/b" cannot both exist (names have no '/'), but prefixes of
        // different lengths can: "team" and "team-x" do not collide, "org" and a model id do.
        let routers = [("org", vec![("x/y", &[][..])])];
        assert_eq!(resolve("org/x/y", |n| n == "org", &routers), Ok(route("org", Some("x/y"))));
    }
}
