//! `--endpoint SECRET=HOST:PORT` (issue 24): parsed and checked against the profile on
//! `rotate`, `status` and `check`; `check` and `status` probe each endpoint and show what
//! it trusts and serves, naming each CA by its generation in the CA Secret, without
//! changing an exit status.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
use support::run;

const NS: &str = "envoy-gateway-system";

#[test]
fn a_bad_endpoint_is_a_usage_error_naming_the_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();
    for (value, says) in [
        ("envoy-gateway", "expected SECRET=HOST:PORT"),
        ("envoy-gateway=localhost", "has no :PORT"),
        ("envoy-gateway=localhost:0", "is not a port"),
        ("envoy-gateway=localhost:http", "is not a port"),
        ("envoy-gateway=::1:18000", "put an IPv6 address in brackets"),
        (
            "envoy-gateway=[nope]:18000",
            "not an IPv6 address in brackets",
        ),
        ("envoy-gateway=*.x:1", "no wildcard"),
        ("Envoy=localhost:1", "not a Secret name"),
    ] {
        for command in ["rotate", "status", "check"] {
            let r = run(&[command, "--dir", dir, "--endpoint", value]);
            assert_eq!(r.code, 2, "{command} {value}: {}", r.stderr);
            assert!(r.stderr.contains("--endpoint"), "{value}: {}", r.stderr);
            assert!(r.stderr.contains(says), "{value}: {}", r.stderr);
        }
    }
    // A Secret the profile does not have: named with the ones it has, before any read.
    for command in ["rotate", "status", "check"] {
        let r = run(&[command, "--dir", dir, "--endpoint", "nope=[::1]:18000"]);
        assert_eq!(r.code, 2, "{command}: {}", r.stderr);
        assert!(
            r.stderr.contains("--endpoint nope=[::1]:18000")
                && r.stderr.contains("no component Secret nope"),
            "{}",
            r.stderr
        );
    }
    assert!(
        std::fs::read_dir(dir).unwrap().next().is_none(),
        "nothing written"
    );
}

#[test]
fn check_and_status_show_what_each_endpoint_trusts_and_serves() {
    let Some(tlspeer) = certrotate_controlplane::tlspeer() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();
    assert_eq!(run(&["rotate", "--dir", dir]).code, 0);
    // The Go peer serves the envoy-gateway Secret's folder, re-reading it per handshake.
    let server = certrotate_controlplane::go_peer::Server::start(
        &tlspeer,
        &tmp.path().join(NS).join("envoy-gateway"),
    )
    .unwrap();
    // A port just closed: nothing listens there.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("127.0.0.1:{}", l.local_addr().unwrap().port())
    };
    let endpoint = format!("envoy-gateway={}", server.addr);
    let unreachable = format!("envoy-gateway={closed}");
    let args = |command: &'static str| {
        vec![
            command,
            "--dir",
            dir,
            "--endpoint",
            endpoint.as_str(),
            "--endpoint",
            unreachable.as_str(),
        ]
    };

    let r = run(&args("check"));
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let out = &r.stdout;
    assert!(
        out.contains(&format!("{} (secret {NS}/envoy-gateway)", server.addr)),
        "{out}"
    );
    assert!(out.contains("trusts: [CN=envoy-gateway, "), "{out}");
    assert!(
        out.contains("serves: a leaf issued by [CN=envoy-gateway, "),
        "{out}"
    );
    assert_eq!(out.matches("(current)").count(), 2, "{out}");
    assert!(!out.contains("(next)"), "{out}");
    // The closed port shows nothing, and changes no exit status.
    assert!(
        out.contains(&format!("{closed} (secret {NS}/envoy-gateway)"))
            && out.contains("NO EVIDENCE cannot connect"),
        "{out}"
    );

    // The trust step: the peer now lists the next CA first, and still serves the current.
    let r = run(&["rotate", "--dir", dir, "--overwrite"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = run(&args("status"));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let trusts = r
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("trusts:"))
        .unwrap_or_else(|| panic!("{}", r.stdout));
    let next = trusts.find("(next)").expect(trusts);
    let current = trusts.find("(current)").expect(trusts);
    assert!(next < current, "{trusts}");
    assert!(
        r.stdout
            .contains("serves: a leaf issued by [CN=envoy-gateway, ")
            && r.stdout.contains("(current)\n"),
        "{}",
        r.stdout
    );

    // As data: the names, their roles, and the failure typed.
    let r = run(&[&args("check")[..], &["-o", "json"]].concat());
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let e = &v["endpoints"];
    assert_eq!(e[0]["address"], server.addr.as_str());
    assert_eq!(e[0]["server_name"], "envoy-gateway");
    assert_eq!(e[0]["client_certificate_requested"], true);
    assert_eq!(e[0]["trusts"][0]["role"], "next");
    assert_eq!(e[0]["trusts"][1]["role"], "current");
    assert_eq!(e[0]["serves_leaf_of"]["role"], "current");
    assert_eq!(e[1]["error"]["kind"], "connect");

    // As metrics (issue 24): per endpoint and CA generation, labels bounded.
    let r = run(&[&args("check")[..], &["-o", "openmetrics"]].concat());
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = &r.stdout;
    let series = |name: &str, endpoint: &str, ca: Option<&str>| {
        let ca = ca.map(|c| format!(",ca=\"{c}\"")).unwrap_or_default();
        format!("{name}{{namespace=\"{NS}\",secret=\"envoy-gateway\",endpoint=\"{endpoint}\"{ca}}}")
    };
    let addr = server.addr.as_str();
    for (line, value) in [
        (series("certrotate_endpoint_probe_ok", addr, None), 1),
        (series("certrotate_endpoint_probe_ok", &closed, None), 0),
        (
            series("certrotate_endpoint_trusts_ca", addr, Some("next")),
            1,
        ),
        (
            series("certrotate_endpoint_trusts_ca", addr, Some("current")),
            1,
        ),
        (
            series("certrotate_endpoint_serves_ca", addr, Some("current")),
            1,
        ),
        (
            series("certrotate_endpoint_serves_ca", addr, Some("next")),
            0,
        ),
    ] {
        assert!(
            m.contains(&format!("{line} {value}\n")),
            "{line} {value}:\n{m}"
        );
    }
    assert!(
        !m.contains(&series(
            "certrotate_endpoint_serves_ca",
            &closed,
            Some("current")
        )),
        "no serving series for an endpoint that showed nothing:\n{m}"
    );
}

/// A rotation gated on evidence: an endpoint that shows nothing (a closed port) holds the
/// phase at `trust`, never advancing without evidence; past `--convergence-timeout` the run
/// exits 6 naming the endpoint, and the phase stays. Without `--endpoint` the timeout is a
/// usage error.
#[test]
fn a_lagging_endpoint_holds_the_phase_and_the_timeout_exits_6() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();
    let r = run(&["rotate", "--dir", dir, "--convergence-timeout", "1h"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--endpoint"), "{}", r.stderr);

    assert_eq!(run(&["rotate", "--dir", dir]).code, 0);
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let endpoint = format!("envoy-gateway={closed}");
    let r = run(&[
        "rotate",
        "--dir",
        dir,
        "--overwrite",
        "--wait",
        "--convergence-interval",
        "0s",
        "--convergence-timeout",
        "0s",
        "--endpoint",
        &endpoint,
    ]);
    assert_eq!(r.code, 6, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("no evidence: cannot connect"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("convergence timeout"), "{}", r.stderr);
    assert!(r.stderr.contains(&closed), "{}", r.stderr);
    let status = run(&["status", "--dir", dir]).stdout;
    assert!(status.contains("phase:    trust"), "{status}");
}
