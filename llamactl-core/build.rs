// The SQL migrations live in this crate's `migrations/` folder (the workspace's top-level
// `migrations` is a link to it) and are embedded with `sqlx::migrate!`; this makes a new or
// changed migration file trigger a rebuild.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
