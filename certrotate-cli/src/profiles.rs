//! `--profile`: a built-in profile by name (with "did you mean" for a mistyped one), or a
//! profile file read as every input is (bounded, its ownership checked), then `-n` and
//! the command's adjustments, validated.

use std::path::Path;

use anyhow::{Context, Result, bail};
use certrotate_core::{Origin, Profile};

use crate::UsageError;
use crate::cli;
use crate::input::{check_profile_file, is_stdin, read_input_with};

pub(crate) fn load_profile(
    target: &cli::TargetArgs,
    adjust: impl FnOnce(&mut Profile),
) -> Result<Profile> {
    if let Some(conflict) = target.namespace_conflict() {
        return Err(UsageError(conflict).into());
    }
    let mut profile = if target.profile == "envoy-gateway" {
        Profile::envoy_gateway("envoy-gateway-system")
    } else if target.profile == "envoy-gateway-gateway-namespace" {
        // Envoy Gateway deployed with `provider.kubernetes.deploy.type: GatewayNamespace`:
        // each Gateway's proxies live in the Gateway's namespace.
        Profile::envoy_gateway("envoy-gateway-system").with_gateway_namespace_mode()
    } else {
        let path = Path::new(&target.profile);
        let is_file_name = matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("toml" | "yaml" | "yml")
        ) || target.profile.contains('/')
            || is_stdin(path);
        if !is_file_name {
            return Err(UsageError(unknown_profile(&target.profile)).into());
        }
        let text = String::from_utf8(read_input_with(path, check_profile_file)?)
            .with_context(|| format!("profile {}: not UTF-8", path.display()))?;
        let origin = Origin::new(path.display().to_string());
        match path.extension().and_then(|e| e.to_str()) {
            Some("toml") => Profile::from_toml(&text, &origin)?,
            Some("yaml" | "yml") => Profile::from_yaml(&text, &origin)?,
            _ => bail!(
                "--profile {:?}: not `envoy-gateway` nor a .toml/.yaml file",
                target.profile
            ),
        }
    };
    if let Some(ns) = &target.namespace {
        profile = profile.with_namespace(ns)?;
    }
    adjust(&mut profile);
    profile.validate()?;
    Ok(profile)
}

/// The profiles built into the binary.
pub const BUILT_IN_PROFILES: [&str; 2] = ["envoy-gateway", "envoy-gateway-gateway-namespace"];

/// `--profile NAME` that is neither built in nor a profile file: list the built-ins and
/// suggest the nearest, as kubectl and cargo do for a mistyped name.
fn unknown_profile(name: &str) -> String {
    let nearest = BUILT_IN_PROFILES
        .iter()
        .map(|p| (strsim::levenshtein(name, p), p))
        .filter(|(d, p)| *d <= p.len() / 3)
        .min();
    let mut message = format!(
        "--profile {name:?}: no such built-in profile (built in: {}), nor a profile file \
         (.toml, .yaml or .yml)",
        BUILT_IN_PROFILES.join(", ")
    );
    if let Some((_, p)) = nearest {
        message.push_str(&format!("; did you mean {p:?}?"));
    }
    message
}
