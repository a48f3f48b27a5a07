// The SQL migrations live in the workspace's top-level `migrations/` folder and are embedded with
// `sqlx::migrate!`; this makes a new or changed migration file trigger a rebuild.
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
