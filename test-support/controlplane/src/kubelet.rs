//! A harness "kubelet": nothing copies a Secret into a pod's files here, so a test mirrors
//! the Secrets it chooses into folders as the kubelet does for a mounted Secret (the atomic
//! `..data` swap, `KEY -> ..data/KEY`), after a delay, or never after the first copy (a
//! `subPath` mount). TLS peers reading those folders then see what the API server holds,
//! late, as real pods do.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::Api;

/// When a mirror copies a change of its Secret.
#[derive(Clone, Copy, Debug)]
pub enum Sync {
    /// This long after it saw the change (the kubelet's sync period and cache delay).
    After(Duration),
    /// Never: the files stay as first copied (a `subPath` mount).
    Never,
}

/// One Secret mirrored into a folder by a thread of its own, until dropped.
pub struct Mirror {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    dir: PathBuf,
}

/// How often a mirror reads its Secret.
const POLL: Duration = Duration::from_millis(100);

impl Mirror {
    /// Mirrors Secret `namespace/name` into `dir` (created), polling it with a client of
    /// `config` made on the mirror's own thread and runtime (a client made on the test's
    /// runtime would stall whenever the test blocks, and hang dropping the mirror).
    pub fn start(
        config: kube::Config,
        namespace: &str,
        name: &str,
        dir: PathBuf,
        sync: Sync,
    ) -> Mirror {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let (namespace, name, folder) = (namespace.to_owned(), name.to_owned(), dir.clone());
        let thread = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                let Ok(client) = kube::Client::try_from(config) else {
                    return;
                };
                let api = Api::<Secret>::namespaced(client, &namespace);
                run(&api, &name, &folder, sync, &flag).await;
            });
        });
        Mirror {
            stop,
            thread: Some(thread),
            dir,
        }
    }

    /// Whether the first copy is there.
    pub fn mounted(&self) -> bool {
        self.dir.join("..data").exists()
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn run(api: &Api<Secret>, name: &str, dir: &Path, sync: Sync, stop: &AtomicBool) {
    let mut copied: Option<String> = None;
    let mut version = 0u64;
    // (resourceVersion seen, when it was first seen): real time, as the kubelet's, so a
    // slow poll does not stretch the delay.
    let mut pending: Option<(String, std::time::Instant)> = None;
    while !stop.load(Ordering::SeqCst) {
        if let Ok(Some(secret)) = api.get_opt(name).await {
            let rv = secret.metadata.resource_version.clone().unwrap_or_default();
            let due = match (&copied, sync) {
                // The first copy, when the pod starts.
                (None, _) => true,
                (Some(c), _) if *c == rv => false,
                (Some(_), Sync::Never) => false,
                (Some(_), Sync::After(delay)) => match &pending {
                    Some((seen, since)) if *seen == rv => since.elapsed() >= delay,
                    _ => {
                        // Test support copying on a real program's schedule: real time is
                        // the point.
                        #[allow(clippy::disallowed_methods)]
                        let now = std::time::Instant::now();
                        pending = Some((rv.clone(), now));
                        false
                    }
                },
            };
            if due {
                version += 1;
                if write(dir, &secret, version).is_ok() {
                    copied = Some(rv);
                    pending = None;
                }
            }
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The kubelet's atomic writer: the keys into a new `..N` folder, `..data` swapped to it by
/// a rename, `KEY -> ..data/KEY` links, the previous version removed.
fn write(dir: &Path, secret: &Secret, version: u64) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let folder = format!("..{version}");
    let path = dir.join(&folder);
    std::fs::create_dir_all(&path)?;
    let data = secret.data.clone().unwrap_or_default();
    for (key, value) in &data {
        std::fs::write(path.join(key), &value.0)?;
    }
    let previous = std::fs::read_link(dir.join("..data")).ok();
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&folder, &tmp)?;
    std::fs::rename(&tmp, dir.join("..data"))?;
    for key in data.keys() {
        let link = dir.join(key);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(Path::new("..data").join(key), &link)?;
        }
    }
    if let Some(previous) = previous
        && previous != Path::new(&folder)
    {
        let _ = std::fs::remove_dir_all(dir.join(previous));
    }
    Ok(())
}
