//! The control plane's certificates (rcgen) and kubeconfig files.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use time::{Duration, OffsetDateTime};

use crate::{Error, io_err};

/// The files of the control plane's PKI, written into its folder.
pub(crate) struct Pki {
    pub(crate) ca_crt: PathBuf,
    pub(crate) ca_pem: String,
    pub(crate) serving_crt: PathBuf,
    pub(crate) serving_key: PathBuf,
    pub(crate) admin_crt: PathBuf,
    pub(crate) admin_key: PathBuf,
    pub(crate) kcm_crt: PathBuf,
    pub(crate) kcm_key: PathBuf,
    /// The service-account signing key.
    pub(crate) sa_key: PathBuf,
    /// Its public key (the API server reads only public keys from `--service-account-key-file`).
    pub(crate) sa_pub: PathBuf,
}

impl Pki {
    /// A CA; the API server's serving certificate (127.0.0.1, localhost and the
    /// in-cluster names); client certificates for an admin (`system:masters`) and for the
    /// controller manager (`system:kube-controller-manager`, bound by RBAC's bootstrap
    /// policy); and a service-account signing key. All ECDSA P-256, valid for a week
    /// around now.
    pub(crate) fn generate(dir: &Path) -> Result<Pki, Error> {
        // Test support: certificates valid around the real time the API server checks them at.
        #[allow(clippy::disallowed_methods)]
        let now = OffsetDateTime::now_utc();
        let validity = |params: &mut CertificateParams| {
            params.not_before = now - Duration::hours(1);
            params.not_after = now + Duration::days(7);
        };
        let key = |what| KeyPair::generate().map_err(|source| Error::Cert { what, source });
        let cert_err = |what| move |source| Error::Cert { what, source };

        let ca_key = key("the CA key")?;
        let mut ca_params = CertificateParams::default();
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "certrotate-e2e-ca");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        validity(&mut ca_params);
        let ca_cert = ca_params.self_signed(&ca_key).map_err(cert_err("the CA"))?;
        let ca_pem = ca_cert.pem();
        let issuer = Issuer::new(ca_params, ca_key);

        let leaf = |what: &'static str,
                    cn: &str,
                    org: Option<&str>,
                    sans: Vec<SanType>,
                    usage: ExtendedKeyUsagePurpose|
         -> Result<(String, String), Error> {
            let leaf_key = key(what)?;
            let mut params = CertificateParams::default();
            params.distinguished_name.push(DnType::CommonName, cn);
            if let Some(org) = org {
                params
                    .distinguished_name
                    .push(DnType::OrganizationName, org);
            }
            params.subject_alt_names = sans;
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            params.extended_key_usages = vec![usage];
            validity(&mut params);
            let cert = params
                .signed_by(&leaf_key, &issuer)
                .map_err(cert_err(what))?;
            Ok((cert.pem(), leaf_key.serialize_pem()))
        };
        let dns = |name: &str| -> Result<SanType, Error> {
            Ok(SanType::DnsName(
                name.try_into().map_err(cert_err("a DNS name"))?,
            ))
        };
        let serving = leaf(
            "the API server's certificate",
            "kube-apiserver",
            None,
            vec![
                SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
                SanType::IpAddress(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))),
                dns("localhost")?,
                dns("kubernetes")?,
                dns("kubernetes.default")?,
                dns("kubernetes.default.svc")?,
                dns("kubernetes.default.svc.cluster.local")?,
            ],
            ExtendedKeyUsagePurpose::ServerAuth,
        )?;
        let admin = leaf(
            "the admin's certificate",
            "certrotate-e2e-admin",
            Some("system:masters"),
            Vec::new(),
            ExtendedKeyUsagePurpose::ClientAuth,
        )?;
        let kcm = leaf(
            "the controller manager's certificate",
            "system:kube-controller-manager",
            None,
            Vec::new(),
            ExtendedKeyUsagePurpose::ClientAuth,
        )?;
        let sa = key("the service-account key")?;

        let write = |name: &str, contents: &str| -> Result<PathBuf, Error> {
            let path = dir.join(name);
            std::fs::write(&path, contents)
                .map_err(io_err(format!("writing {}", path.display())))?;
            Ok(path)
        };
        Ok(Pki {
            ca_crt: write("ca.crt", &ca_pem)?,
            serving_crt: write("apiserver.crt", &serving.0)?,
            serving_key: write("apiserver.key", &serving.1)?,
            admin_crt: write("admin.crt", &admin.0)?,
            admin_key: write("admin.key", &admin.1)?,
            kcm_crt: write("kube-controller-manager.crt", &kcm.0)?,
            kcm_key: write("kube-controller-manager.key", &kcm.1)?,
            sa_key: write("service-account.key", &sa.serialize_pem())?,
            sa_pub: write("service-account.pub", &sa.public_key_pem())?,
            ca_pem,
        })
    }
}

/// How a kubeconfig authenticates.
pub(crate) enum Credentials<'a> {
    /// A client certificate and key, by file.
    Files(&'a Path, &'a Path),
    /// A bearer token.
    Token(&'a str),
}

/// Writes a kubeconfig with one cluster, user and context (the current one).
pub(crate) fn write_kubeconfig(
    path: &Path,
    server: &str,
    ca: &Path,
    credentials: Credentials<'_>,
    namespace: Option<&str>,
) -> Result<(), Error> {
    // JSON is YAML: no hand-written quoting.
    let user = match credentials {
        Credentials::Files(crt, key) => serde_json::json!({
            "client-certificate": crt,
            "client-key": key,
        }),
        Credentials::Token(token) => serde_json::json!({ "token": token }),
    };
    let mut context = serde_json::json!({ "cluster": "e2e", "user": "e2e" });
    if let Some(ns) = namespace {
        context["namespace"] = ns.into();
    }
    let kubeconfig = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{ "name": "e2e", "cluster": { "server": server, "certificate-authority": ca } }],
        "users": [{ "name": "e2e", "user": user }],
        "contexts": [{ "name": "e2e", "context": context }],
        "current-context": "e2e",
    });
    std::fs::write(path, kubeconfig.to_string())
        .map_err(io_err(format!("writing {}", path.display())))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// kube-rs reads both kubeconfigs the harness writes: the admin's (client certificate
    /// files, an EC key in PKCS#8) and a token's.
    #[tokio::test]
    async fn kube_rs_loads_the_kubeconfigs() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::generate(dir.path()).unwrap();
        let admin = dir.path().join("admin.kubeconfig");
        let creds = Credentials::Files(&pki.admin_crt, &pki.admin_key);
        write_kubeconfig(&admin, "https://127.0.0.1:6443", &pki.ca_crt, creds, None).unwrap();
        let kc = kube::config::Kubeconfig::read_from(&admin).unwrap();
        let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .unwrap();
        assert_eq!(config.cluster_url.to_string(), "https://127.0.0.1:6443/");
        assert_eq!(config.root_cert.as_ref().map(Vec::len), Some(1));
        assert!(config.auth_info.client_certificate.is_some());
        // Building the client loads the certificate and key into rustls.
        kube::Client::try_from(config).unwrap();

        let token = dir.path().join("token.kubeconfig");
        let creds = Credentials::Token("abc.def");
        write_kubeconfig(
            &token,
            "https://127.0.0.1:6443",
            &pki.ca_crt,
            creds,
            Some("ns"),
        )
        .unwrap();
        let kc = kube::config::Kubeconfig::read_from(&token).unwrap();
        let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .unwrap();
        assert_eq!(config.default_namespace, "ns");
        assert!(config.auth_info.token.is_some() && config.auth_info.client_certificate.is_none());
    }
}
