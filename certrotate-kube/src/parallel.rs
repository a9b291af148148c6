//! Key generation across cores: RSA keys take tens of milliseconds each, and a rotation
//! needs one per component plus the CA.

use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use certrotate_core::{Entropy, Error, KeyAlgorithm, PrivateKeyDer, SystemEntropy};

type Pending = JoinHandle<Result<PrivateKeyDer, Error>>;
/// The keys made ahead, per algorithm.
type Queues = Arc<Mutex<Vec<(KeyAlgorithm, Vec<Pending>)>>>;

/// The operating system's randomness, with RSA keys generated ahead on other cores: the
/// first RSA request makes its key at once and starts `batch - 1` more in the background,
/// which the following requests take (a step that needs one key waits for one). Other
/// algorithms take tens of microseconds and are generated on demand.
///
/// Clones share the keys made ahead, and each takes them under a lock held only to pick
/// one: the plans of many reconciles at once each generate their keys in parallel (an
/// [`Engine`](crate::Engine) gives each plan a clone).
#[derive(Clone, Debug)]
pub struct ParallelKeys {
    batch: usize,
    pending: Queues,
}

impl ParallelKeys {
    /// Generates RSA keys up to `batch` at a time.
    pub fn new(batch: usize) -> Self {
        Self {
            batch: batch.max(1),
            pending: Arc::new(Mutex::new(Vec::new())),
        }
    }
}

impl Entropy for ParallelKeys {
    fn fill(&mut self, dest: &mut [u8]) {
        SystemEntropy.fill(dest);
    }

    fn generate_key(&mut self, algorithm: KeyAlgorithm) -> Result<PrivateKeyDer, Error> {
        if !algorithm.is_rsa() || self.batch == 1 {
            return SystemEntropy.generate_key(algorithm);
        }
        let ahead = {
            // A panic while the lock was held left the queues whole: each change is one
            // push or pop.
            let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            let index = match pending.iter().position(|(a, _)| *a == algorithm) {
                Some(i) => i,
                None => {
                    pending.push((algorithm, Vec::new()));
                    pending.len() - 1
                }
            };
            let queue = &mut pending[index].1;
            let ahead = queue.pop();
            if ahead.is_none() {
                for _ in 1..self.batch {
                    queue.push(std::thread::spawn(move || {
                        SystemEntropy.generate_key(algorithm)
                    }));
                }
            }
            ahead
        };
        if let Some(handle) = ahead {
            return handle.join().unwrap_or_else(|_| {
                Err(Error::InvalidParameter {
                    field: "key generation".into(),
                    reason: "a key generation thread panicked".into(),
                })
            });
        }
        SystemEntropy.generate_key(algorithm)
    }
}
