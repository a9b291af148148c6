//! Key generation across cores: RSA keys take tens of milliseconds each, and a rotation
//! needs one per component plus the CA.

use std::thread::JoinHandle;

use certrotate_core::{Entropy, Error, KeyAlgorithm, PrivateKeyDer, SystemEntropy};

type Pending = JoinHandle<Result<PrivateKeyDer, Error>>;

/// The operating system's randomness, with RSA keys generated ahead on other cores: the
/// first RSA request makes its key at once and starts `batch - 1` more in the background,
/// which the following requests take (a step that needs one key waits for one). Other
/// algorithms take tens of microseconds and are generated on demand.
#[derive(Debug)]
pub struct ParallelKeys {
    batch: usize,
    pending: Vec<(KeyAlgorithm, Vec<Pending>)>,
}

impl ParallelKeys {
    /// Generates RSA keys up to `batch` at a time.
    pub fn new(batch: usize) -> Self {
        Self {
            batch: batch.max(1),
            pending: Vec::new(),
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
        let index = match self.pending.iter().position(|(a, _)| *a == algorithm) {
            Some(i) => i,
            None => {
                self.pending.push((algorithm, Vec::new()));
                self.pending.len() - 1
            }
        };
        let queue = &mut self.pending[index].1;
        if let Some(handle) = queue.pop() {
            return handle.join().unwrap_or_else(|_| {
                Err(Error::InvalidParameter {
                    field: "key generation".into(),
                    reason: "a key generation thread panicked".into(),
                })
            });
        }
        for _ in 1..self.batch {
            queue.push(std::thread::spawn(move || {
                SystemEntropy.generate_key(algorithm)
            }));
        }
        SystemEntropy.generate_key(algorithm)
    }
}
