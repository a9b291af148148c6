//! Validation: [`Profile::validate`], which names the field of every error, and the checks
//! of DNS names, object names, namespaces and Secret data keys it uses (public, for the
//! stores that check the same names).

use std::collections::BTreeMap;
use std::time::Duration;

use super::{EndpointTarget, Profile, WorkloadNamespaces, WorkloadSelect};
use crate::error::Error;
use crate::generate::{HmacKey, KeyEncoding, KeyUsage};
use crate::redact::quoted;

impl Profile {
    /// Checks names, templates and parameters; every error names the field.
    pub fn validate(&self) -> Result<(), Error> {
        let invalid = |field: String, reason: String| Error::InvalidParameter { field, reason };
        validate_label(&self.namespace).map_err(|r| invalid("namespace".into(), r))?;
        validate_dns_name(&self.cluster_domain).map_err(|r| invalid("cluster_domain".into(), r))?;
        validate_subdomain(&self.ca.secret).map_err(|r| invalid("ca.secret".into(), r))?;
        if self.ca.common_name.is_empty() || self.ca.common_name.len() > 64 {
            return Err(invalid(
                "ca.common_name".into(),
                "must be 1 to 64 characters".into(),
            ));
        }
        if self.components.is_empty() {
            return Err(invalid(
                "components".into(),
                "a profile needs at least one component".into(),
            ));
        }
        let mut names = BTreeMap::new();
        names.insert(self.ca.secret.clone(), "ca.secret".to_owned());
        let mut claim =
            |name: &str, field: String| match names.insert(name.to_owned(), field.clone()) {
                Some(other) => Err(invalid(
                    field,
                    format!("Secret {} is also used by {other}", quoted(name)),
                )),
                None => Ok(()),
            };
        for (key, value) in &self.labels {
            validate_label_pair(key, value)
                .map_err(|r| invalid(format!("labels[{}]", quoted(key)), r))?;
        }
        for (i, c) in self.components.iter().enumerate() {
            let field = format!("components[{i}]");
            validate_subdomain(&c.secret).map_err(|r| invalid(format!("{field}.secret"), r))?;
            claim(&c.secret, format!("{field}.secret"))?;
            self.leaf_params(c).and_then(|p| {
                for (j, d) in p.dns_names.iter().enumerate() {
                    validate_dns_name(d).map_err(|r| {
                        invalid(
                            format!("{field}.dns_names[{j}]"),
                            format!("{}: {r}", quoted(d)),
                        )
                    })?;
                }
                if p.common_name.is_empty() || p.common_name.len() > 64 {
                    return Err(invalid(
                        format!("{field}.common_name"),
                        "must be 1 to 64 characters".into(),
                    ));
                }
                Ok(())
            })?;
            for (j, e) in c.endpoints.iter().enumerate() {
                let field = format!("{field}.endpoints[{j}] (component {})", quoted(&c.secret));
                match e.target().map_err(|r| invalid(field.clone(), r))? {
                    EndpointTarget::Service { name, port } => {
                        validate_label(name)
                            .map_err(|r| invalid(field.clone(), format!("service: {r}")))?;
                        if port == 0 {
                            return Err(invalid(field, "port: must be 1 to 65535".into()));
                        }
                    }
                    EndpointTarget::Address(address) => {
                        validate_endpoint_address(address)
                            .map_err(|r| invalid(field.clone(), format!("address: {r}")))?;
                    }
                }
                // A probe sends the leaf's name as SNI: the leaf needs one.
                if c.dns_names.is_empty() && c.ip_addresses.is_empty() {
                    return Err(invalid(
                        field,
                        "the component's leaf has no DNS name or IP address for a probe to \
                         send"
                            .into(),
                    ));
                }
            }
        }
        for (i, h) in self.hmac.iter().enumerate() {
            validate_subdomain(&h.secret).map_err(|r| invalid(format!("hmac[{i}].secret"), r))?;
            claim(&h.secret, format!("hmac[{i}].secret"))?;
            validate_secret_key(&h.key).map_err(|r| invalid(format!("hmac[{i}].key"), r))?;
            if h.length < HmacKey::MIN_LEN || h.length > 4096 {
                return Err(invalid(
                    format!("hmac[{i}].length"),
                    format!("{} is outside {}..=4096 bytes", h.length, HmacKey::MIN_LEN),
                ));
            }
        }
        for (i, w) in self.workloads.iter().enumerate() {
            match &w.select {
                WorkloadSelect::Name(name) => validate_subdomain(name)
                    .map_err(|r| invalid(format!("workloads[{i}].name"), r))?,
                WorkloadSelect::Labels(labels) => {
                    if labels.is_empty() {
                        return Err(invalid(
                            format!("workloads[{i}].selector.match_labels"),
                            "empty: it would select every workload".into(),
                        ));
                    }
                    for (key, value) in labels {
                        validate_label_pair(key, value).map_err(|r| {
                            invalid(
                                format!("workloads[{i}].selector.match_labels[{}]", quoted(key)),
                                r,
                            )
                        })?;
                    }
                }
            }
            match &w.namespaces {
                WorkloadNamespaces::Profile | WorkloadNamespaces::All => {}
                WorkloadNamespaces::Listed(listed) => {
                    if listed.is_empty() {
                        return Err(invalid(
                            format!("workloads[{i}].namespaces"),
                            "empty: leave it out for the profile's namespace".into(),
                        ));
                    }
                    for (j, ns) in listed.iter().enumerate() {
                        validate_label(&self.render(ns))
                            .map_err(|r| invalid(format!("workloads[{i}].namespaces[{j}]"), r))?;
                    }
                }
            }
        }
        for (i, w) in self.webhooks.iter().enumerate() {
            validate_subdomain(&self.render(&w.name))
                .map_err(|r| invalid(format!("webhooks[{i}].name"), r))?;
        }
        if self.leaf.validity < Duration::from_secs(3600) {
            return Err(invalid("leaf.validity".into(), "shorter than 1h".into()));
        }
        if self.ca.validity < self.leaf.validity {
            return Err(invalid(
                "ca.validity".into(),
                "shorter than leaf.validity: leaves would be cut to the CA's lifetime".into(),
            ));
        }
        if KeyUsage::permitted(&self.leaf.key_usages, self.leaf.key_algorithm).is_empty() {
            return Err(invalid(
                "leaf.key_usages".into(),
                format!(
                    "none is permitted for {} keys (encipherment needs RSA)",
                    self.leaf.key_algorithm
                ),
            ));
        }
        if self.leaf.key_encoding == KeyEncoding::Pkcs1 && !self.leaf.key_algorithm.is_rsa() {
            return Err(invalid(
                "leaf.key_encoding".into(),
                "pkcs1 needs an RSA key algorithm".into(),
            ));
        }
        Ok(())
    }
}

/// Checks a TLS server's address to connect to: `HOST:PORT`, the host a DNS name (no
/// wildcard), an IPv4 address, or an IPv6 address in brackets, the port 1 to 65535.
pub fn validate_endpoint_address(address: &str) -> Result<(), String> {
    let (host, port) = address
        .rsplit_once(':')
        .ok_or_else(|| format!("{} has no :PORT", quoted(address)))?;
    match port.parse::<u16>() {
        Ok(p) if p > 0 => {}
        _ => return Err(format!("{} is not a port (1 to 65535)", quoted(port))),
    }
    if let Some(inner) = host.strip_prefix('[') {
        inner
            .strip_suffix(']')
            .and_then(|ip| ip.parse::<std::net::Ipv6Addr>().ok())
            .ok_or_else(|| format!("{} is not an IPv6 address in brackets", quoted(host)))?;
    } else if host.contains(':') {
        return Err(format!(
            "{}: put an IPv6 address in brackets, as in [::1]:{port}",
            quoted(address)
        ));
    } else if host.contains('*') {
        return Err(format!(
            "{}: a host to connect to has no wildcard",
            quoted(host)
        ));
    } else if host.parse::<std::net::Ipv4Addr>().is_err() {
        validate_dns_name(host)
            .map_err(|e| format!("{} is not a host name or IP address: {e}", quoted(host)))?;
    }
    Ok(())
}

/// Checks a DNS name for a SAN: labels of 1 to 63 letters, digits and hyphens, not starting
/// or ending with a hyphen; a `*` only as the whole leftmost label; 253 characters at most.
pub(crate) fn validate_dns_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 253 {
        return Err(format!("must be 1 to 253 characters, got {}", name.len()));
    }
    for (i, label) in name.split('.').enumerate() {
        if label == "*" && i == 0 && name.len() > 1 {
            continue;
        }
        check_label(label).map_err(|r| format!("label {}: {r}", quoted(label)))?;
    }
    Ok(())
}

fn check_label(label: &str) -> Result<(), String> {
    if label.is_empty() || label.len() > 63 {
        return Err("must be 1 to 63 characters".into());
    }
    if !label
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err("only letters, digits and '-' are allowed".into());
    }
    if label.starts_with('-') || label.ends_with('-') {
        return Err("must not start or end with '-'".into());
    }
    Ok(())
}

/// Checks a label as Kubernetes does: the key an optional DNS-subdomain prefix and `/`,
/// then a name of 1 to 63 letters, digits, `-`, `_` and `.` that starts and ends with a
/// letter or digit; the value empty or such a name.
pub(crate) fn validate_label_pair(key: &str, value: &str) -> Result<(), String> {
    fn name(text: &str, what: &str) -> Result<(), String> {
        let ends_ok = |b: Option<&u8>| b.is_some_and(u8::is_ascii_alphanumeric);
        let bytes = text.as_bytes();
        if text.is_empty() || text.len() > 63 {
            return Err(format!("{what} must be 1 to 63 characters"));
        }
        if !bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            || !ends_ok(bytes.first())
            || !ends_ok(bytes.last())
        {
            return Err(format!(
                "{what} may hold only letters, digits, '-', '_' and '.', and must start and \
                 end with a letter or digit"
            ));
        }
        Ok(())
    }
    let key_name = match key.rsplit_once('/') {
        Some((prefix, key_name)) => {
            validate_subdomain(prefix).map_err(|r| format!("the key's prefix: {r}"))?;
            key_name
        }
        None => key,
    };
    name(key_name, "the key's name")?;
    if !value.is_empty() {
        name(value, "the value")?;
    }
    Ok(())
}

/// Checks a Kubernetes object name (RFC 1123 subdomain: lower case, 253 characters).
pub fn validate_subdomain(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 253 {
        return Err(format!("{} must be 1 to 253 characters", quoted(name)));
    }
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(format!("{} must be lower case", quoted(name)));
    }
    for label in name.split('.') {
        check_label(label).map_err(|r| format!("{}: {r}", quoted(name)))?;
    }
    Ok(())
}

/// Checks a Secret data key as Kubernetes does: 1 to 253 letters, digits, `-`, `_` and `.`,
/// neither `.` nor `..`, and not starting with `..` (reserved by the Secret volume layout:
/// `..data`, `..2024_...`). A key may start with one dot (`.hmac`).
pub fn validate_secret_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > 253 {
        return Err(format!(
            "a Secret key must be 1 to 253 characters, got {}",
            key.len()
        ));
    }
    if !key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(format!(
            "{key:?}: a Secret key may hold only letters, digits, '-', '_' and '.'"
        ));
    }
    if key == "." || key.starts_with("..") {
        return Err(format!(
            "{key:?}: a Secret key must not be '.' nor start with '..' (reserved by the Secret volume layout)"
        ));
    }
    Ok(())
}

/// Checks a namespace (RFC 1123 label: lower case, 63 characters).
pub fn validate_label(name: &str) -> Result<(), String> {
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(format!("{} must be lower case", quoted(name)));
    }
    check_label(name).map_err(|r| format!("{}: {r}", quoted(name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Red-team: a label with an empty key was accepted, and written; the API server
    /// refuses it, so a rotation would fail at its first write instead of at the start.
    #[test]
    fn labels_are_checked_as_kubernetes_does() {
        for (key, value) in [
            ("app", "envoy"),
            ("app.kubernetes.io/part-of", "envoy-gateway"),
            ("control-plane", ""),
            ("a_b.c", "A-1_b.2"),
        ] {
            assert!(validate_label_pair(key, value).is_ok(), "{key}={value}");
        }
        for (key, value) in [
            ("", ""),
            ("-app", "x"),
            ("app", "-x"),
            ("app", "a b"),
            ("Example.COM/app", "x"),
            ("/app", "x"),
            ("app/", "x"),
            (&"k".repeat(64), "x"),
            ("app", &"v".repeat(64)),
        ] {
            assert!(
                validate_label_pair(key, value).is_err(),
                "{key:?}={value:?}"
            );
        }
        let mut profile = Profile::envoy_gateway("ns");
        profile.labels.insert(String::new(), String::new());
        let error = profile.validate().unwrap_err().to_string();
        assert!(error.contains("labels"), "{error}");
    }
}
