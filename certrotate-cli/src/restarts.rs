//! `--restart-command`: the commands that restart a profile's start-only workloads on a
//! host, checked against the profile.

use super::*;

/// `--restart-command`s by workload name, each naming a start-only workload of the profile.
pub(crate) fn restart_commands(
    profile: &Profile,
    args: &cli::RestartArgs,
) -> Result<BTreeMap<String, certrotate_kube::host::RestartCommand>, UsageError> {
    let mut commands = BTreeMap::new();
    for flag in &args.commands {
        // A host restarts workloads the profile names; those it selects by label (Envoy's
        // proxies on a cluster) have no name to give a command.
        let named: Vec<&str> = profile
            .workloads
            .iter()
            .filter_map(|w| match &w.select {
                certrotate_core::profile::WorkloadSelect::Name(name) => Some(name.as_str()),
                certrotate_core::profile::WorkloadSelect::Labels(_) | _ => None,
            })
            .collect();
        if !named.contains(&flag.workload.as_str()) {
            let known = named;
            return Err(UsageError(format!(
                "--restart-command {}=...: profile {} has no start-only workload {} (it has: {})",
                flag.workload,
                profile.name,
                flag.workload,
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                },
            )));
        }
        let Some(command) =
            certrotate_kube::host::RestartCommand::new(flag.argv.clone(), args.restart_timeout)
        else {
            return Err(UsageError(format!(
                "--restart-command {}=: empty",
                flag.workload
            )));
        };
        if commands.insert(flag.workload.clone(), command).is_some() {
            return Err(UsageError(format!(
                "--restart-command {}: given twice",
                flag.workload
            )));
        }
    }
    Ok(commands)
}
