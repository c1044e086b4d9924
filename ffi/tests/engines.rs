//! The C API as engines use it: the committed header is what cbindgen makes of the
//! crate now; C programs (built here with the system C compiler) and C# programs (built
//! with Mono's `mcs`, run with `mono`) run the same two flows against a real development
//! cluster started here.
//!
//! - The first flow: authenticate (a wrong token first), a wrong game name, create and
//!   join from two clients, reliable and unreliable events, properties, an oversized
//!   payload, a caught panic, a leave.
//! - The authority flow: a `Host` room (room options, the actors and property values a
//!   joiner sees, a snapshot handed to the next host when the host leaves), a `Shared`
//!   room (spawn, state, taking state authority, the master client moved, despawn), a
//!   lobby's game list and a random join that finds nothing, and a dedicated server's
//!   room with join approval (one joiner let in, one refused).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use switchboard::dev::{DevCluster, DevOptions};
use switchboard_master::AuthConfig;
use switchboard_master::auth::JwtConfig;

const KEY: &[u8] = b"0123456789abcdef0123456789abcdef-engines";

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn generated_header() -> String {
    let config = cbindgen::Config::from_file(crate_dir().join("cbindgen.toml")).unwrap();
    let mut out = Vec::new();
    cbindgen::Builder::new()
        .with_crate(crate_dir())
        .with_config(config)
        .generate()
        .expect("cbindgen reads the crate")
        .write(&mut out);
    String::from_utf8(out).unwrap()
}

#[test]
fn the_committed_header_is_what_cbindgen_makes_now() {
    let path = crate_dir().join("include/switchboard.h");
    let fresh = generated_header();
    if std::env::var_os("SWITCHBOARD_WRITE_HEADER").is_some() {
        std::fs::write(&path, &fresh).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "ffi/include/switchboard.h is stale: regenerate it with \
         SWITCHBOARD_WRITE_HEADER=1 cargo test -p switchboard-ffi header"
    );
}

#[test]
fn a_panic_inside_comes_back_as_an_error() {
    assert_eq!(
        switchboard_ffi::sb_debug_panic(),
        switchboard_ffi::SB_ERR_PANIC
    );
    let mut buf = [0u8; 128];
    // SAFETY: buf is 128 writable bytes.
    let n = unsafe { switchboard_ffi::sb_last_error(buf.as_mut_ptr(), buf.len()) };
    let message = std::str::from_utf8(&buf[..n.min(buf.len())]).unwrap();
    assert!(message.contains("sb_debug_panic"), "{message}");
}

/// Where cargo put this crate's native libraries for this test run: the `deps` folder
/// next to the test (`target/debug/` holds the copies of the last `cargo build`, which
/// may be older).
fn native_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().to_path_buf()
}

fn token(user: &str) -> String {
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &serde_json::json!({ "sub": user, "exp": exp }),
        &jsonwebtoken::EncodingKey::from_secret(KEY).unwrap(),
    )
    .unwrap()
}

/// A development cluster whose master checks JWTs (so a wrong token is refused).
async fn cluster(tls: &Path) -> DevCluster {
    let opts = DevOptions {
        game_servers: 1,
        master_port: 0,
        cluster_port: 0,
        gs_base_port: 0,
        admin_port: 0,
        tls_dir: tls.to_path_buf(),
        ..DevOptions::default()
    };
    DevCluster::start_with(
        opts,
        |m| {
            m.auth = AuthConfig::Jwt(JwtConfig {
                algorithm: jsonwebtoken::Algorithm::HS256,
                key: KEY.to_vec(),
                leeway: Duration::from_secs(5),
                issuer: None,
                audience: None,
            })
        },
        |_| {},
    )
    .await
    .expect("cluster starts")
}

/// Which flow a program plays, and so its arguments.
#[derive(Clone, Copy)]
enum Flow {
    First,
    Authority,
}

/// Runs `program` with the flow's arguments while the cluster serves (the program
/// blocks: it runs on a blocking thread).
async fn run_flow(cluster: &DevCluster, mut program: Command, flow: Flow, room: &str) {
    program.args([
        cluster.master.to_string(),
        cluster.ca.display().to_string(),
        token("alice"),
        token("bob"),
        room.to_string(),
    ]);
    if let Flow::Authority = flow {
        program.args([cluster.server_secret.clone(), token("carol")]);
    }
    // The second client trusts "the system's roots": here, the development certificate.
    program.env("SSL_CERT_FILE", &cluster.ca);
    let out = tokio::task::spawn_blocking(move || program.output().unwrap())
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "the flow failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
}

/// Builds the C program `tests/c/{name}.c` against the static library.
fn build_c(dir: &Path, name: &str) -> PathBuf {
    let exe = dir.join(name);
    let cc = Command::new("cc")
        .arg(crate_dir().join(format!("tests/c/{name}.c")))
        .arg("-I")
        .arg(crate_dir().join("include"))
        .arg(native_dir().join("libswitchboard_ffi.a"))
        .args(["-Wall", "-Werror", "-lpthread", "-ldl", "-lm", "-o"])
        .arg(&exe)
        .output()
        .expect("a C compiler (cc) is installed");
    assert!(
        cc.status.success(),
        "cc: {}",
        String::from_utf8_lossy(&cc.stderr)
    );
    exe
}

/// Builds the C# program `tests/{name}.cs` with the binding, as a Mono command.
fn build_csharp(dir: &Path, name: &str) -> Command {
    let exe = dir.join(format!("{name}.exe"));
    let cs = crate_dir().join("../clients/csharp");
    let mcs = Command::new("mcs")
        .arg(format!("-out:{}", exe.display()))
        .arg(cs.join("Switchboard.cs"))
        .arg(cs.join("tests/Harness.cs"))
        .arg(cs.join(format!("tests/{name}.cs")))
        .output()
        .expect("Mono's C# compiler (mcs; apt-get install mono-mcs) is installed");
    assert!(
        mcs.status.success(),
        "mcs: {}{}",
        String::from_utf8_lossy(&mcs.stdout),
        String::from_utf8_lossy(&mcs.stderr)
    );
    let mut mono = Command::new("mono");
    mono.arg(&exe).env("LD_LIBRARY_PATH", native_dir());
    mono
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_c_program_plays_the_flow_through_the_c_api() {
    let dir = tempfile::tempdir().unwrap();
    let exe = build_c(dir.path(), "flow");
    let cluster = cluster(&dir.path().join("tls")).await;
    run_flow(&cluster, Command::new(&exe), Flow::First, "c-flow").await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_c_program_plays_room_authority_and_shared_objects_through_the_c_api() {
    let dir = tempfile::tempdir().unwrap();
    let exe = build_c(dir.path(), "authority");
    let cluster = cluster(&dir.path().join("tls")).await;
    run_flow(&cluster, Command::new(&exe), Flow::Authority, "c-auth").await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_csharp_program_plays_the_flow_through_the_binding_with_mono() {
    let dir = tempfile::tempdir().unwrap();
    let mono = build_csharp(dir.path(), "Flow");
    let cluster = cluster(&dir.path().join("tls")).await;
    run_flow(&cluster, mono, Flow::First, "cs-flow").await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_csharp_program_plays_room_authority_and_shared_objects_with_mono() {
    let dir = tempfile::tempdir().unwrap();
    let mono = build_csharp(dir.path(), "Authority");
    let cluster = cluster(&dir.path().join("tls")).await;
    run_flow(&cluster, mono, Flow::Authority, "cs-auth").await;
    cluster.shutdown().await;
}
