//! Test images for the Docker runtime, made from files of this machine.
//!
//! The engine the tests run against cannot pull images, so every image a test runs is imported
//! (like `docker import`) from a tar built in memory: the given files, every shared library they
//! load and the dynamic loader (as `ldd` names them), and an empty `/tmp`. Images are tagged by a
//! hash of their content, so a tag that exists is complete and current, and later calls reuse it.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use bollard::Docker;
use bollard::query_parameters::{CreateImageOptions, ListContainersOptions, RemoveContainerOptions};
use futures::StreamExt;
use sha2::{Digest, Sha256};

/// The repository prefix of every test image.
const REPOSITORY_PREFIX: &str = "llamactl-test";

/// Changes whenever the layout of the images changes, so that older images are not reused.
const LAYOUT_VERSION: &str = "llamactl-test-image layout 1";

/// The label llamactl puts on the containers of a manager.
const MANAGER_LABEL: &str = "io.llamactl.manager";

/// A client of the local engine (`DOCKER_HOST` or the default socket), with the API version
/// negotiated (the engine here speaks 1.41; bollard defaults to a newer version).
pub async fn docker() -> Docker {
    let docker = Docker::connect_with_defaults()
        .unwrap_or_else(|e| panic!("cannot connect to the Docker engine (DOCKER_HOST or the default socket): {e}"));
    docker
        .negotiate_version()
        .await
        .unwrap_or_else(|e| panic!("cannot negotiate the API version with the Docker engine (is it running?): {e}"))
}

/// One file of an image.
#[derive(Debug)]
struct ImageFile {
    data: Vec<u8>,
    mode: u32,
}

/// Imports (like `docker import`) an image whose root file system holds `files` — (host path,
/// absolute path in the image) — plus every shared library they need and the dynamic loader
/// (found by running `ldd` on each ELF file; symlinks are followed and the resolved file is
/// stored under the path `ldd` names), an empty `/tmp` (mode 1777), and with `entrypoint` as its
/// `ENTRYPOINT`.
///
/// The image is tagged `llamactl-test/<name>:<16 hex digits of SHA-256 over the file contents,
/// their paths and the entrypoint>`; when an image with that tag exists already nothing is
/// imported. Returns the tag.
///
/// Safe to call concurrently from threads and processes: imports are serialized by a lock file,
/// and the engine tags an image only once its import finished, so a tag that exists names a
/// complete image.
pub async fn import_image(docker: &Docker, name: &str, files: &[(PathBuf, String)], entrypoint: &[&str]) -> String {
    assert!(
        !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)),
        "image name {name:?} must be lowercase letters, digits, '.', '_' or '-'"
    );
    for (host, path) in files {
        assert!(path.starts_with('/'), "image path {path:?} of {} is not absolute", host.display());
    }
    let files = files.to_vec();
    let entrypoint: Vec<String> = entrypoint.iter().map(|s| (*s).to_owned()).collect();

    // Reading and hashing megabytes: off the async threads.
    let (files, entrypoint, hash, contents) = tokio::task::spawn_blocking(move || {
        let (hash, contents) = read_and_hash(&files, &entrypoint);
        (files, entrypoint, hash, contents)
    })
    .await
    .unwrap();
    let repository = format!("{REPOSITORY_PREFIX}/{name}");
    let tag = format!("{repository}:{hash}");
    if image_exists(docker, &tag).await {
        return tag;
    }

    // Another thread or process may be importing the same image: wait for it, then look again.
    let lock_path = std::env::temp_dir().join(format!("llamactl-test-image-{name}.lock"));
    let _lock = tokio::task::spawn_blocking(move || {
        let file = File::create(&lock_path).unwrap_or_else(|e| panic!("cannot create {}: {e}", lock_path.display()));
        file.lock().unwrap_or_else(|e| panic!("cannot lock {}: {e}", lock_path.display()));
        file
    })
    .await
    .unwrap();
    if image_exists(docker, &tag).await {
        return tag;
    }

    let archive = tokio::task::spawn_blocking(move || {
        let mut contents = contents;
        add_libraries(&files, &mut contents);
        build_archive(contents)
    })
    .await
    .unwrap();
    let entrypoint_json = serde_json::to_string(&entrypoint).unwrap();
    let options = CreateImageOptions {
        from_src: Some("-".to_owned()),
        repo: Some(repository),
        tag: Some(hash),
        changes: vec![format!("ENTRYPOINT {entrypoint_json}")],
        ..CreateImageOptions::default()
    };
    let mut progress = docker.create_image(Some(options), Some(bollard::body_full(archive.into())), None);
    while let Some(item) = progress.next().await {
        if let Err(e) = item {
            panic!("importing image {tag} failed: {e}");
        }
    }
    assert!(
        image_exists(docker, &tag).await,
        "importing image {tag} reported success, but the engine has no image with that tag"
    );
    remove_older_tags(docker, &repository_of(&tag), &tag).await;
    tag
}

fn repository_of(tag: &str) -> String {
    tag.rsplit_once(':').map_or(tag, |(repository, _)| repository).to_owned()
}

/// Removes the repository's other tags (images of earlier builds), so that rebuilding the
/// binaries does not pile up images. An image a container still uses stays.
async fn remove_older_tags(docker: &Docker, repository: &str, keep: &str) {
    let filters = HashMap::from([("reference".to_owned(), vec![repository.to_owned()])]);
    let options = bollard::query_parameters::ListImagesOptionsBuilder::default().filters(&filters).build();
    let Ok(images) = docker.list_images(Some(options)).await else { return };
    for tag in images.iter().flat_map(|i| i.repo_tags.iter()).filter(|t| t.as_str() != keep) {
        let _ = docker.remove_image(tag, None::<bollard::query_parameters::RemoveImageOptions>, None).await;
    }
}

/// Whether the engine has an image with this tag.
async fn image_exists(docker: &Docker, tag: &str) -> bool {
    match docker.inspect_image(tag).await {
        Ok(_) => true,
        Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => false,
        Err(e) => panic!("cannot inspect image {tag}: {e}"),
    }
}

/// Reads the given files of an image; returns the tag's hash (over their image paths, their
/// contents and the entrypoint) and the files by image path.
fn read_and_hash(files: &[(PathBuf, String)], entrypoint: &[String]) -> (String, BTreeMap<String, ImageFile>) {
    let mut hasher = Sha256::new();
    hasher.update(LAYOUT_VERSION.as_bytes());
    let mut contents = BTreeMap::new();
    for (host, path) in files {
        let file = read_file(host);
        // Lengths first, so that no two different inputs hash the same bytes.
        hasher.update((path.len() as u64).to_le_bytes());
        hasher.update(path.as_bytes());
        hasher.update((file.data.len() as u64).to_le_bytes());
        hasher.update(&file.data);
        contents.insert(path.clone(), file);
    }
    hasher.update((entrypoint.len() as u64).to_le_bytes());
    for arg in entrypoint {
        hasher.update((arg.len() as u64).to_le_bytes());
        hasher.update(arg.as_bytes());
    }
    let digest = hasher.finalize();
    let hash = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    (hash, contents)
}

/// Adds the shared libraries and the dynamic loader of the ELF files among `files` (already read
/// into `contents`), each under the path `ldd` names.
fn add_libraries(files: &[(PathBuf, String)], contents: &mut BTreeMap<String, ImageFile>) {
    for (host, path) in files {
        if !contents[path].data.starts_with(b"\x7fELF") {
            continue;
        }
        for library in shared_libraries(host) {
            if let Entry::Vacant(entry) = contents.entry(library) {
                let file = read_file(Path::new(entry.key()));
                entry.insert(file);
            }
        }
    }
}

/// A host file (symlinks followed) with its mode normalized: 0o755 when it is executable by
/// anyone, 0o644 otherwise.
fn read_file(host: &Path) -> ImageFile {
    let data = std::fs::read(host).unwrap_or_else(|e| panic!("cannot read {} for a test image: {e}", host.display()));
    let mode = std::fs::metadata(host).unwrap().permissions().mode();
    ImageFile { data, mode: if mode & 0o111 != 0 { 0o755 } else { 0o644 } }
}

/// The absolute paths of the shared libraries and the dynamic loader that `ldd` lists for an
/// ELF file (none for a static executable).
fn shared_libraries(host: &Path) -> Vec<String> {
    let output =
        Command::new("ldd").arg(host).output().unwrap_or_else(|e| panic!("cannot run ldd on {}: {e}", host.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let all = format!("{stdout}{stderr}");
    if all.contains("not a dynamic executable") || all.contains("statically linked") {
        return Vec::new();
    }
    assert!(output.status.success(), "ldd {} failed ({}): {all}", host.display(), output.status);
    let mut libraries = Vec::new();
    for line in stdout.lines().map(str::trim).filter(|l| !l.is_empty()) {
        // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)", "/lib64/ld-linux-x86-64.so.2 (0x...)",
        // "linux-vdso.so.1 (0x...)" (in the kernel: nothing to copy), "libfoo.so => not found".
        let target = line.split_once("=>").map_or(line, |(_, target)| target).trim();
        assert!(target != "not found", "{} needs a library that is not on this machine: {line}", host.display());
        let path = target.split_once(" (").map_or(target, |(path, _)| path).trim();
        if path.starts_with('/') {
            libraries.push(path.to_owned());
        }
    }
    libraries
}

/// The uncompressed tar of an image's root file system: a directory for every parent path,
/// the files, and `/tmp`.
fn build_archive(contents: BTreeMap<String, ImageFile>) -> Vec<u8> {
    let mut directories: BTreeMap<String, u32> = BTreeMap::new();
    directories.insert("tmp".to_owned(), 0o1777);
    for path in contents.keys() {
        let mut parent = Path::new(path.trim_start_matches('/')).parent();
        while let Some(dir) = parent.filter(|d| !d.as_os_str().is_empty()) {
            directories.entry(dir.to_str().unwrap().to_owned()).or_insert(0o755);
            parent = dir.parent();
        }
    }

    let mut builder = tar::Builder::new(Vec::new());
    // BTreeMap order puts every directory before what it holds.
    for (dir, mode) in &directories {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_mode(*mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_size(0);
        builder.append_data(&mut header, format!("{dir}/"), std::io::empty()).unwrap();
    }
    for (path, file) in &contents {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(file.mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_size(file.data.len() as u64);
        builder.append_data(&mut header, path.trim_start_matches('/'), file.data.as_slice()).unwrap();
    }
    builder.into_inner().unwrap()
}

/// The workspace's fault-injection test backend at `/usr/local/bin/llamactl-test-backend`,
/// which is the entrypoint. Returns the tag.
pub async fn test_backend_image(docker: &Docker) -> String {
    const PATH: &str = "/usr/local/bin/llamactl-test-backend";
    import_image(docker, "test-backend", &[(PathBuf::from(crate::test_backend()), PATH.to_owned())], &[PATH]).await
}

/// llama-server (the provisioned one, see [`crate::llama_server`]) at `/app/llama-server`, the
/// entrypoint, which is the layout of the official `ghcr.io/ggml-org/llama.cpp:server` image.
/// The model is not in the image: tests mount it. Returns the tag.
pub async fn llama_server_image(docker: &Docker) -> String {
    const PATH: &str = "/app/llama-server";
    import_image(docker, "llama-server", &[(crate::llama_server(), PATH.to_owned())], &[PATH]).await
}

/// The options that list every container (running or not) of a manager.
fn manager_filter(manager_id: &str) -> ListContainersOptions {
    ListContainersOptions {
        all: true,
        filters: Some(HashMap::from([("label".to_owned(), vec![format!("{MANAGER_LABEL}={manager_id}")])])),
        ..ListContainersOptions::default()
    }
}

/// Removes (forcibly, with their anonymous volumes) every container labelled
/// `io.llamactl.manager=<manager_id>`, e.g. after a test. Containers that vanish meanwhile are
/// fine.
pub async fn remove_containers_of(docker: &Docker, manager_id: &str) {
    let containers = docker
        .list_containers(Some(manager_filter(manager_id)))
        .await
        .unwrap_or_else(|e| panic!("cannot list the containers of manager {manager_id}: {e}"));
    for id in containers.into_iter().filter_map(|c| c.id) {
        let options = RemoveContainerOptions { force: true, v: true, ..RemoveContainerOptions::default() };
        match docker.remove_container(&id, Some(options)).await {
            // 404: gone already; 409: its removal is in progress (auto-remove or another call).
            Ok(()) | Err(bollard::errors::Error::DockerResponseServerError { status_code: 404 | 409, .. }) => {}
            Err(e) => panic!("cannot remove container {id} of manager {manager_id}: {e}"),
        }
    }
}

/// The containers (running or not) labelled `io.llamactl.manager=<manager_id>`, as (name without
/// the leading '/', state such as "running" or "exited", labels).
pub async fn containers_of(docker: &Docker, manager_id: &str) -> Vec<(String, String, HashMap<String, String>)> {
    let containers = docker
        .list_containers(Some(manager_filter(manager_id)))
        .await
        .unwrap_or_else(|e| panic!("cannot list the containers of manager {manager_id}: {e}"));
    containers
        .into_iter()
        .map(|c| {
            let name = c
                .names
                .as_ref()
                .and_then(|names| names.first())
                .map(|n| n.trim_start_matches('/').to_owned())
                .unwrap_or_default();
            let state = c.state.map(|s| s.to_string()).unwrap_or_default();
            (name, state, c.labels.unwrap_or_default())
        })
        .collect()
}

/// Removes a manager's containers when dropped — also when a test fails half-way — so that a
/// failed test leaves nothing running.
#[derive(Debug)]
pub struct RemoveContainersOnDrop(pub String);

impl Drop for RemoveContainersOnDrop {
    fn drop(&mut self) {
        let manager_id = self.0.clone();
        // Drop cannot await: a thread of its own with a runtime of its own.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let docker = docker().await;
                remove_containers_of(&docker, &manager_id).await;
            });
        });
        let _ = cleanup.join();
    }
}
