//! Proptest strategies and fixtures for property tests of the bundling rule.
//!
//! Enabled by the `testing` feature. A downstream project that embeds certrotate can check
//! its own use of [`bundle_ca_certs`](crate::bundle_ca_certs) against generated inputs:
//!
//! ```
//! use certrotate_core::testing::{Fixtures, old_bundle};
//! use proptest::prelude::*;
//!
//! let fx = Fixtures::new(42);
//! proptest!(ProptestConfig::with_cases(16), |(old in old_bundle(&fx, 6))| {
//!     let out = certrotate_core::bundle_ca_certs(fx.new_ca_pem().as_bytes(), old.pem.as_bytes(), fx.now())
//!         .expect("a valid new CA always bundles");
//!     prop_assert!(out.report.carried.len() <= 1);
//! });
//! ```

use proptest::prelude::*;
use time::OffsetDateTime;
use time::macros::datetime;

use crate::{Ca, CaParams, SeededEntropy};

/// A set of CAs minted once (ECDSA P-256, seeded) around a fixed `now`: some valid, some
/// expired, plus junk blocks, for building bundles.
#[derive(Debug)]
pub struct Fixtures {
    now: OffsetDateTime,
    new_ca: Ca,
    valid: Vec<Ca>,
    expired: Vec<Ca>,
}

impl Fixtures {
    /// Mints the fixtures from `seed`. `now` is 2026-06-01T00:00:00Z.
    pub fn new(seed: u64) -> Self {
        Self::at(seed, datetime!(2026-06-01 0:00 UTC))
    }

    /// Mints the fixtures from `seed` around `now`: valid CAs expire a year after `now`,
    /// expired ones expired a day before it.
    pub fn at(seed: u64, now: OffsetDateTime) -> Self {
        let mut entropy = SeededEntropy::new(seed);
        let year = std::time::Duration::from_secs(365 * 86_400);
        let mint = |name: String, issued: OffsetDateTime, entropy: &mut SeededEntropy| {
            let params = CaParams::new(name).with_validity(year);
            // Fixed valid parameters and a seeded entropy: minting cannot fail.
            #[allow(clippy::expect_used)]
            Ca::generate(&params, issued, entropy).expect("fixture CA")
        };
        let new_ca = mint("new".into(), now, &mut entropy);
        let valid = (0..4)
            .map(|i| mint(format!("valid-{i}"), now, &mut entropy))
            .collect();
        let long_ago = now - time::Duration::days(366);
        let expired = (0..3)
            .map(|i| mint(format!("expired-{i}"), long_ago, &mut entropy))
            .collect();
        Self {
            now,
            new_ca,
            valid,
            expired,
        }
    }

    /// The `now` the fixtures are built around.
    pub fn now(&self) -> OffsetDateTime {
        self.now
    }

    /// The new CA's PEM.
    pub fn new_ca_pem(&self) -> &str {
        self.new_ca.cert_pem()
    }

    /// The new CA.
    pub fn new_ca(&self) -> &Ca {
        &self.new_ca
    }

    /// CAs valid at `now`.
    pub fn valid(&self) -> &[Ca] {
        &self.valid
    }

    /// CAs expired at `now`.
    pub fn expired(&self) -> &[Ca] {
        &self.expired
    }
}

/// What one generated block of an old bundle is.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BlockKind {
    /// A CA valid at `now` (index into [`Fixtures::valid`]).
    Valid(usize),
    /// A CA expired at `now` (index into [`Fixtures::expired`]).
    Expired(usize),
    /// The new CA itself (a duplicate).
    NewCa,
    /// A private key block (must never be carried).
    PrivateKey,
    /// A `CERTIFICATE` block whose contents are not X.509.
    GarbageCertificate,
    /// A block with bad base64.
    BadBase64,
    /// Text between blocks.
    Text,
}

/// A generated old bundle: its PEM text and what each part is.
#[derive(Clone, Debug)]
pub struct OldBundle {
    /// The PEM text (LF or CRLF line endings).
    pub pem: String,
    /// What was put in, in order.
    pub kinds: Vec<BlockKind>,
}

/// A strategy for one block kind.
pub(crate) fn block_kind(fx: &Fixtures) -> impl Strategy<Value = BlockKind> + use<> {
    let valid = fx.valid.len();
    let expired = fx.expired.len();
    prop_oneof![
        4 => (0..valid).prop_map(BlockKind::Valid),
        2 => (0..expired).prop_map(BlockKind::Expired),
        1 => Just(BlockKind::NewCa),
        1 => Just(BlockKind::PrivateKey),
        1 => Just(BlockKind::GarbageCertificate),
        1 => Just(BlockKind::BadBase64),
        1 => Just(BlockKind::Text),
    ]
}

/// A strategy for old bundles of up to `max_blocks` parts, with LF or CRLF line endings.
pub fn old_bundle(fx: &Fixtures, max_blocks: usize) -> impl Strategy<Value = OldBundle> + '_ {
    (
        proptest::collection::vec(block_kind(fx), 0..=max_blocks),
        any::<bool>(),
    )
        .prop_map(move |(kinds, crlf)| {
            let mut pem = String::new();
            for kind in &kinds {
                pem.push_str(&render(fx, kind));
            }
            if crlf {
                pem = pem.replace('\n', "\r\n");
            }
            OldBundle { pem, kinds }
        })
}

/// The PEM text of one block kind.
pub(crate) fn render(fx: &Fixtures, kind: &BlockKind) -> String {
    match kind {
        BlockKind::Valid(i) => fx.valid[*i].cert_pem().to_owned(),
        BlockKind::Expired(i) => fx.expired[*i].cert_pem().to_owned(),
        BlockKind::NewCa => fx.new_ca.cert_pem().to_owned(),
        BlockKind::PrivateKey => fx.valid[0].key_pem().expose_secret().to_owned(),
        BlockKind::GarbageCertificate => {
            "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n"
                .to_owned()
        }
        BlockKind::BadBase64 => {
            "-----BEGIN CERTIFICATE-----\n!!!not base64!!!\n-----END CERTIFICATE-----\n".to_owned()
        }
        BlockKind::Text => "subject=CN = some comment openssl x509 -text left behind\n".to_owned(),
    }
}

/// The body of the `bundle` fuzz target, shared with the corpus replay in `cargo test`.
///
/// The input is split at the first NUL byte into `new` and `old` (all of it is `old` when
/// there is none, with a fixed fixture CA as `new`). Panics if an invariant of the bundling
/// rule breaks: a panic inside the rule, more than one carried certificate, a non-certificate
/// block carried, a report that does not account for every block, or a second application
/// that changes the bundle.
pub fn fuzz_bundle(data: &[u8], fx: &Fixtures) {
    let (new, old) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (fx.new_ca_pem().as_bytes(), data),
    };
    let Ok(out) = crate::bundle_ca_certs(new, old, fx.now()) else {
        return;
    };
    assert!(out.report.carried.len() <= 1, "at most one carried");
    assert!(
        !out.pem.contains("PRIVATE KEY"),
        "a private key was carried"
    );
    let blocks = crate::pem_blocks::blocks(old).count();
    let accounted = out.report.carried.len() + out.report.skipped.len();
    assert_eq!(accounted, blocks, "every block of old is reported once");
    let again = crate::bundle_ca_certs(new, out.pem.as_bytes(), fx.now())
        .expect("a bundle made from a valid new CA bundles again");
    assert_eq!(again.pem, out.pem, "idempotent");
}
