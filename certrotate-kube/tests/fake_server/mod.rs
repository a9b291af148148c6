//! The Kubernetes backend on a fresh kube-fake-client HTTP server.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

#[path = "../../../test-support/fake_server.rs"]
mod shared;

pub use shared::*;

use certrotate_kube::KubeStore;

/// A store talking to `server` over HTTP, with quick retries.
pub fn store_for(server: &FakeServer) -> KubeStore {
    let mut config = kube::Config::new(server.url.parse().unwrap());
    config.default_retry = false;
    let client = kube::Client::try_from(config).unwrap();
    KubeStore::new(client).with_retries(3, std::time::Duration::from_millis(10))
}

/// A store on a fresh server.
pub fn store() -> KubeStore {
    store_for(&start(&[]))
}

/// A store whose client gives up on an answer after `read_timeout` (the timeouts tests).
pub fn store_with_timeout(server: &FakeServer, read_timeout: std::time::Duration) -> KubeStore {
    let mut config = kube::Config::new(server.url.parse().unwrap());
    config.default_retry = false;
    config.read_timeout = Some(read_timeout);
    let client = kube::Client::try_from(config).unwrap();
    KubeStore::new(client).with_retries(3, std::time::Duration::from_millis(10))
}
