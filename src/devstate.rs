//! Where `switchboard dev` keeps its files, and the state file through which `probe`,
//! `admin` and `bench` find a running `dev` without anything copied by hand.
//!
//! The directory is the user's own: `$SWITCHBOARD_DEV_HOME` if set, else
//! `$XDG_RUNTIME_DIR/switchboard` (private to the user by that variable's definition), else
//! `<tmp>/switchboard-<uid>`. It is created with mode 0700, and a directory of that name
//! that belongs to somebody else, or that others may write, is refused: another user must
//! not be able to plant a certificate that this user's clients would trust.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

/// The user's `dev` directory (not created here; see [`ensure_private_dir`]).
pub fn dev_home() -> PathBuf {
    if let Some(dir) = std::env::var_os("SWITCHBOARD_DEV_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("switchboard");
    }
    std::env::temp_dir().join(format!("switchboard-{}", user_tag()))
}

#[cfg(unix)]
fn user_tag() -> String {
    nix::unistd::getuid().to_string()
}

#[cfg(not(unix))]
fn user_tag() -> String {
    std::env::var("USERNAME").unwrap_or_else(|_| "dev".into())
}

/// The default directory of the development certificate: `tls` in [`dev_home`].
pub fn default_tls_dir() -> PathBuf {
    dev_home().join("tls")
}

/// Creates `dir` readable by its owner only, or checks that an existing `dir` is the
/// user's own and closed to others.
pub fn ensure_private_dir(dir: &Path) -> anyhow::Result<()> {
    if let Some(parent) = dir.parent() {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    let mut builder = fs::DirBuilder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    match builder.create(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => check_private(dir),
        Err(e) => Err(e).with_context(|| format!("creating {}", dir.display())),
    }
}

#[cfg(unix)]
fn check_private(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    // Not following a symbolic link: a link planted by someone else is refused too.
    let meta = fs::symlink_metadata(dir).with_context(|| format!("{}", dir.display()))?;
    let me = nix::unistd::getuid().as_raw();
    if !meta.is_dir() {
        bail!(
            "{} exists and is not a directory; remove it or choose another directory",
            dir.display()
        );
    }
    if meta.uid() != me {
        bail!(
            "{} belongs to uid {}, not to you (uid {me}); remove it or set SWITCHBOARD_DEV_HOME",
            dir.display(),
            meta.uid()
        );
    }
    // Others may not write into it (plant a certificate or a state file).
    if meta.mode() & 0o022 != 0 {
        bail!(
            "{} is open to other users (mode {:o}); `chmod 700` it or remove it",
            dir.display(),
            meta.mode() & 0o777
        );
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(dir: &Path) -> anyhow::Result<()> {
    if !dir.is_dir() {
        bail!("{} exists and is not a directory", dir.display());
    }
    Ok(())
}

/// What a running `switchboard dev` tells the other commands (`dev.json` in
/// [`dev_home`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DevState {
    /// The `dev` process.
    pub pid: u32,
    /// The master's client address.
    pub master: String,
    /// The certificate to trust.
    pub ca: PathBuf,
    /// The master's admin endpoint (`http://...`).
    pub admin: String,
    /// The admin API's bearer token.
    pub admin_token: String,
    /// The secret dedicated servers authenticate with.
    pub server_secret: String,
    /// The game servers' client addresses.
    pub game_servers: Vec<String>,
}

impl DevState {
    /// The state file's path.
    pub fn path() -> PathBuf {
        dev_home().join("dev.json")
    }

    /// Writes the state file (owner-only: it holds the admin token), unless another
    /// running `dev` has it: that one stays the one the other commands find. Returns
    /// whether this one is registered.
    pub fn write(&self) -> anyhow::Result<bool> {
        let home = dev_home();
        ensure_private_dir(&home)?;
        let path = Self::path();
        if let Ok(other) = Self::find()
            && other.pid != self.pid
        {
            return Ok(false);
        }
        let tmp = home.join(format!(".dev.json.{}", std::process::id()));
        let _ = fs::remove_file(&tmp);
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts
            .open(&tmp)
            .with_context(|| format!("writing {}", tmp.display()))?;
        io::Write::write_all(&mut f, serde_json::to_string_pretty(self)?.as_bytes())
            .with_context(|| format!("writing {}", tmp.display()))?;
        fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
        Ok(true)
    }

    /// The state of a running `dev`, if there is one.
    pub fn read() -> Option<DevState> {
        Self::find().ok()
    }

    /// The state of a running `dev`, or why there is none to use: no file, its process
    /// gone, or a directory that is not the user's own (whose file anyone could have
    /// planted: never trusted).
    pub fn find() -> Result<DevState, String> {
        let home = dev_home();
        let path = Self::path();
        let none = |why: String| format!("no running `switchboard dev` found ({why})");
        if !home.exists() {
            return Err(none(format!("no {}", path.display())));
        }
        check_private(&home).map_err(|e| none(format!("{e:#}; not trusted")))?;
        let text = fs::read_to_string(&path).map_err(|_| none(format!("no {}", path.display())))?;
        let state: DevState =
            serde_json::from_str(&text).map_err(|e| none(format!("{}: {e}", path.display())))?;
        if !state.alive() {
            return Err(none(format!(
                "{} names process {}, which is gone",
                path.display(),
                state.pid
            )));
        }
        Ok(state)
    }

    fn alive(&self) -> bool {
        if cfg!(target_os = "linux") {
            Path::new("/proc").join(self.pid.to_string()).exists()
        } else {
            true
        }
    }

    /// Removes the state file if it is still this process's (a later `dev` may have
    /// replaced it).
    pub fn remove_if_ours() {
        let path = Self::path();
        let ours = fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str::<DevState>(&t).ok())
            .is_some_and(|s| s.pid == std::process::id());
        if ours {
            let _ = fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn a_directory_open_to_others_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("home");
        ensure_private_dir(&dir).unwrap();
        let mode = fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        // Created again: fine, it is ours and closed.
        ensure_private_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        let e = ensure_private_dir(&dir).unwrap_err().to_string();
        assert!(e.contains("open to other users"), "{e}");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        if nix::unistd::getuid().is_root() {
            // Somebody else's directory of that name is refused, however closed.
            std::os::unix::fs::chown(&dir, Some(65534), None).unwrap();
            let e = ensure_private_dir(&dir).unwrap_err().to_string();
            assert!(e.contains("belongs to uid 65534"), "{e}");
        }
        // A symbolic link in its place is refused, whoever made it.
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&dir, &link).unwrap();
        let e = ensure_private_dir(&link).unwrap_err().to_string();
        assert!(e.contains("not a directory"), "{e}");
    }
}
