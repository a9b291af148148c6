#!/usr/bin/env bash
# Builds the Go programs certrotate's end-to-end tests run (issue 20), from Go modules at the
# versions pinned in versions.env, into a cache outside the source tree:
#
#   kube-apiserver, kube-controller-manager  k8s.io/kubernetes (a wrapper module)
#   etcd                                     go.etcd.io/etcd/server/v3 (a wrapper module)
#   kwok                                     sigs.k8s.io/kwok/cmd/kwok (a wrapper module)
#   tlspeer                                  test-support/tlspeer (this repository)
#   envoy-gateway-controller                 github.com/envoyproxy/gateway/cmd/envoy-gateway
#                                            (its `certgen`, run by the parity tests)
#   ratelimit                                github.com/envoyproxy/ratelimit/src/service_cmd
#                                            at the version Envoy Gateway's go.mod requires
#                                            (a wrapper module; run by the live rotation test)
#
# Usage:
#   build.sh [COMPONENT...]   build what is missing (default: the four above, and Envoy
#                             Gateway's chart rendered with helm); COMPONENT is kubernetes,
#                             etcd, kwok, tlspeer, helm, envoy-gateway-chart, envoy-gateway
#                             or ratelimit
#   build.sh --locate         print CONTROLPLANE_BIN=<dir> and TLSPEER_BIN=<dir> (the folders
#                             the binaries are, or would be, in) and exit; builds nothing
#
# Cache: ${CERTROTATE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/certrotate}
#   controlplane/<hash of versions.env and $recipe>/bin/   (+ stamps/<component>)
#   tlspeer/<hash of test-support/tlspeer's sources>/bin/tlspeer (+ stamp)
# A component whose stamp exists is not rebuilt. Go's own caches (GOCACHE, GOMODCACHE) stay
# where `go env` says; they are outside the tree too.
#
# Environment:
#   CERTROTATE_GO_PARALLEL  `go build -p` (default: the number of CPUs)
#   Run it under `nice -n 19` on a shared machine.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=versions.env
. "$here/versions.env"

cache_root=${CERTROTATE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/certrotate}

# Bump when a change to this script changes what it builds (not for comments or output).
recipe=1
cp_hash=$( (cat "$here/versions.env" && echo "recipe=$recipe") | sha256sum | cut -c1-16)
cp_dir=$cache_root/controlplane/$cp_hash
tlspeer_srcs=$(cd "$repo/test-support/tlspeer" 2>/dev/null && find . -type f \( -name '*.go' -o -name go.mod \) | LC_ALL=C sort)
tlspeer_hash=$( (cd "$repo/test-support/tlspeer" && echo "$tlspeer_srcs" && cat $tlspeer_srcs) | sha256sum | cut -c1-16)
tlspeer_dir=$cache_root/tlspeer/$tlspeer_hash

if [[ ${1:-} == --locate ]]; then
    echo "CONTROLPLANE_BIN=$cp_dir/bin"
    echo "TLSPEER_BIN=$tlspeer_dir/bin"
    exit 0
fi

components=("$@")
if [[ ${#components[@]} -eq 0 ]]; then
    components=(kubernetes etcd kwok tlspeer envoy-gateway-chart envoy-gateway ratelimit)
fi
for c in "${components[@]}"; do
    case $c in
        kubernetes | etcd | kwok | tlspeer | helm | envoy-gateway | ratelimit) ;;
        envoy-gateway-chart)
            # It needs helm: build that first when it is missing (a second helm is skipped).
            [[ -f $cp_dir/stamps/helm ]] || components=(helm "${components[@]}")
            ;;
        *)
            echo "build.sh: unknown component '$c' (kubernetes, etcd, kwok, tlspeer, helm, envoy-gateway-chart, envoy-gateway, ratelimit)" >&2
            exit 2
            ;;
    esac
done

command -v go >/dev/null || {
    echo "build.sh: 'go' is not on PATH; install Go 1.26 or newer" >&2
    exit 1
}

parallel=${CERTROTATE_GO_PARALLEL:-$(nproc)}
export CGO_ENABLED=0
export GOFLAGS="-buildvcs=false -trimpath -p=$parallel"

mkdir -p "$cp_dir/bin" "$cp_dir/stamps" "$tlspeer_dir/bin"
# One build at a time per cache (test binaries may call this concurrently).
exec 9>"$cache_root/.build.lock"
flock 9

start=$(date +%s)
log=$cp_dir/build.log
built_any=0

say() { printf '[build.sh %4ds] %s\n' $(($(date +%s) - start)) "$*"; }

# go build -v prints each package as it is compiled: show a count every 100 packages.
progress() {
    local what=$1 total=$2 n=0
    while IFS= read -r line; do
        printf '%s\n' "$line" >>"$log"
        case $line in
            "#"* | *": "* | *.go:*) printf '%s\n' "$line" >&2 ;;
            *)
                n=$((n + 1))
                if ((n % 100 == 0)); then say "$what: $n packages compiled (of at most $total)"; fi
                ;;
        esac
    done
    say "$what: $n packages compiled"
}

# Prints FIELD (GoMod: its go.mod; Dir: its files) of MODULE@VERSION in the module cache,
# downloading it if needed.
module_field() {
    (cd "$cp_dir" && GOFLAGS= go mod download -json "$1@$2") | sed -n "s/^[[:space:]]*\"$3\": \"\(.*\)\",\{0,1\}\$/\1/p"
}
gomod_of() { module_field "$1" "$2" GoMod; }

# Prints the `go` and `godebug` lines of a go.mod (godebug as a line or a block).
go_and_godebug() {
    awk '/^go [0-9]/ { print; next }
         /^godebug \(/ { inblock = 1; print; next }
         inblock { print; if ($0 ~ /^\)/) inblock = 0; next }
         /^godebug / { print }' "$1"
}

# build_module NAME TOTAL_HINT_PKGS... : runs `go build` in $cp_dir/src/NAME (go.mod already
# written there) for the given packages, with $ldflags, into $out.
go_build_in() {
    local name=$1 out=$2
    shift 2
    local dir=$cp_dir/src/$name
    say "$name: resolving modules (first time: downloads them)"
    local total
    total=$(cd "$dir" && GOFLAGS="$GOFLAGS -mod=mod" go list -deps "$@" 2>>"$log" | wc -l)
    say "$name: compiling ($total packages in the build, go build -p $parallel)"
    (cd "$dir" && GOFLAGS="$GOFLAGS -mod=mod" go build -v -ldflags "$ldflags" -o "$out" "$@" 2>&1) | progress "$name" "$total"
    return "${PIPESTATUS[0]}"
}

fresh_module() {
    rm -rf "$cp_dir/src/$1"
    mkdir -p "$cp_dir/src/$1"
    echo "$cp_dir/src/$1"
}

build_kubernetes() {
    local v=$KUBERNETES_VERSION
    local minor patch major
    major=${v#v}
    major=${major%%.*}
    minor=$(echo "$v" | cut -d. -f2)
    patch=$(echo "$v" | cut -d. -f3)
    local staging_v=v0.$minor.$patch
    local upstream
    upstream=$(gomod_of k8s.io/kubernetes "$v")
    [[ -f $upstream ]] || {
        echo "build.sh: no go.mod for k8s.io/kubernetes@$v" >&2
        return 1
    }
    local dir
    dir=$(fresh_module kubernetes)
    {
        echo "// Generated by test-support/controlplane/build.sh from k8s.io/kubernetes@$v's go.mod."
        echo "module certrotate.test/kubernetes"
        echo
        go_and_godebug "$upstream"
        echo
        echo "require k8s.io/kubernetes $v"
        echo
        echo "// Upstream replaces these with ./staging/...; the release publishes each as $staging_v."
        echo "replace ("
        awk -v sv="$staging_v" '$2 == "=>" && $3 ~ /^\.\/staging\// { printf "\t%s => %s %s\n", $1, $1, sv }' "$upstream"
        echo ")"
    } >"$dir/go.mod"
    say "kubernetes: wrapper module with $(grep -c " => .* $staging_v" "$dir/go.mod") staging modules at $staging_v"
    local x
    ldflags="-s -w"
    for x in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        ldflags+=" -X $x.gitVersion=$v -X $x.gitMajor=$major -X $x.gitMinor=$minor -X $x.gitTreeState=clean"
    done
    go_build_in kubernetes "$1/" k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager
}

build_etcd() {
    local upstream dir
    upstream=$(gomod_of go.etcd.io/etcd/server/v3 "$ETCD_VERSION")
    dir=$(fresh_module etcd)
    {
        echo "// Generated by test-support/controlplane/build.sh: etcd's server module has relative"
        echo "// replace lines, so it cannot be built with go install pkg@version."
        echo "module certrotate.test/etcd"
        echo
        go_and_godebug "$upstream"
        echo
        echo "require go.etcd.io/etcd/server/v3 $ETCD_VERSION"
    } >"$dir/go.mod"
    ldflags="-s -w"
    go_build_in etcd "$1/etcd" go.etcd.io/etcd/server/v3
}

build_kwok() {
    local upstream dir
    upstream=$(gomod_of sigs.k8s.io/kwok "$KWOK_VERSION")
    dir=$(fresh_module kwok)
    {
        echo "// Generated by test-support/controlplane/build.sh."
        echo "module certrotate.test/kwok"
        echo
        go_and_godebug "$upstream"
        echo
        echo "require sigs.k8s.io/kwok $KWOK_VERSION"
    } >"$dir/go.mod"
    ldflags="-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION"
    go_build_in kwok "$1/kwok" sigs.k8s.io/kwok/cmd/kwok || return
    # The release's own Stage configuration: nodes initialized and heartbeating (so the node
    # lifecycle controller keeps them Ready), pods made Ready, completed, and deleted (or a
    # deleted pod stays Terminating for ever: there is no kubelet).
    local stages
    stages=$(module_field sigs.k8s.io/kwok "$KWOK_VERSION" Dir)/kustomize/stage
    for f in node/fast/node-initialize.yaml node/heartbeat/node-heartbeat.yaml \
        pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
        echo "---"
        cat "$stages/$f" || return
    done >"$1/kwok-stages.yaml"
}

build_helm() {
    local upstream dir
    upstream=$(gomod_of helm.sh/helm/v3 "$HELM_VERSION")
    dir=$(fresh_module helm)
    {
        echo "// Generated by test-support/controlplane/build.sh."
        echo "module certrotate.test/helm"
        echo
        go_and_godebug "$upstream"
        echo
        echo "require helm.sh/helm/v3 $HELM_VERSION"
    } >"$dir/go.mod"
    ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
    go_build_in helm "$1/helm" helm.sh/helm/v3/cmd/helm
}

# Envoy Gateway's Helm chart at the pinned tag, rendered as upstream's release does (its
# values.tmpl.yaml filled with envsubst, the chart's version set to the tag), CRDs included;
# and the rate-limit Deployment, which is not in the chart (the controller creates it at run
# time), from upstream's golden file. Needs helm (built first when missing).
build_envoy_gateway_chart() {
    local src work eg=$1/envoy-gateway
    src=$(module_field github.com/envoyproxy/gateway "$ENVOY_GATEWAY_VERSION" Dir)
    [[ -d $src/charts/gateway-helm ]] || {
        echo "build.sh: no charts/gateway-helm in github.com/envoyproxy/gateway@$ENVOY_GATEWAY_VERSION" >&2
        return 1
    }
    work=$(mktemp -d)
    # The module cache is read-only: render a copy.
    cp -r "$src/charts/gateway-helm" "$work/" && chmod -R u+w "$work"
    GatewayImage=docker.io/envoyproxy/gateway:$ENVOY_GATEWAY_VERSION GatewayImagePullPolicy=IfNotPresent \
        envsubst '${GatewayImage} ${GatewayImagePullPolicy}' \
        <"$work/gateway-helm/values.tmpl.yaml" >"$work/gateway-helm/values.yaml"
    sed -i -e "s/^version: .*/version: $ENVOY_GATEWAY_VERSION/" \
        -e "s/^appVersion: .*/appVersion: \"$ENVOY_GATEWAY_VERSION\"/" "$work/gateway-helm/Chart.yaml"
    mkdir -p "$eg"
    "$cp_dir/bin/helm" template eg "$work/gateway-helm" --namespace envoy-gateway-system \
        --include-crds >"$eg/install.yaml" || { rm -rf "$work"; return 1; }
    cp "$src/internal/infrastructure/kubernetes/ratelimit/testdata/deployments/default.yaml" \
        "$eg/ratelimit-deployment.yaml"
    rm -rf "$work"
    say "envoy-gateway-chart: $(grep -c '^kind: ' "$eg/install.yaml") objects rendered (bin/envoy-gateway/install.yaml)"
}

# Envoy Gateway's controller binary (`envoy-gateway`: `server`, `certgen`, ...) at the pinned
# tag. Its go.mod has no replace lines, so a wrapper module that requires it is enough.
build_envoy_gateway() {
    local upstream dir
    upstream=$(gomod_of github.com/envoyproxy/gateway "$ENVOY_GATEWAY_VERSION")
    dir=$(fresh_module envoy-gateway)
    {
        echo "// Generated by test-support/controlplane/build.sh."
        echo "module certrotate.test/envoy-gateway"
        echo
        go_and_godebug "$upstream"
        echo
        echo "require github.com/envoyproxy/gateway $ENVOY_GATEWAY_VERSION"
    } >"$dir/go.mod"
    ldflags="-s -w -X github.com/envoyproxy/gateway/internal/cmd/version.envoyGatewayVersion=$ENVOY_GATEWAY_VERSION"
    go_build_in envoy-gateway "$1/envoy-gateway-controller" github.com/envoyproxy/gateway/cmd/envoy-gateway
}

# The rate limit service (envoyproxy/ratelimit's `src/service_cmd`) at the version Envoy
# Gateway's go.mod requires: the release pins it there (a pseudo-version: the commit of the
# release's image is not in the module proxy), so ENVOY_GATEWAY_VERSION pins both and this
# component shares the control plane's cache key. No replace lines upstream either.
build_ratelimit() {
    local eg_mod upstream dir version
    eg_mod=$(gomod_of github.com/envoyproxy/gateway "$ENVOY_GATEWAY_VERSION")
    version=$(awk '$1 == "github.com/envoyproxy/ratelimit" { print $2; exit }' "$eg_mod")
    [[ -n $version ]] || {
        echo "build.sh: github.com/envoyproxy/gateway@$ENVOY_GATEWAY_VERSION's go.mod requires no github.com/envoyproxy/ratelimit" >&2
        return 1
    }
    say "ratelimit: github.com/envoyproxy/ratelimit@$version (required by Envoy Gateway $ENVOY_GATEWAY_VERSION)"
    upstream=$(gomod_of github.com/envoyproxy/ratelimit "$version")
    dir=$(fresh_module ratelimit)
    {
        echo "// Generated by test-support/controlplane/build.sh."
        echo "module certrotate.test/ratelimit"
        echo
        go_and_godebug "$upstream"
        echo
        echo "require github.com/envoyproxy/ratelimit $version"
    } >"$dir/go.mod"
    ldflags="-s -w"
    go_build_in ratelimit "$1/ratelimit" github.com/envoyproxy/ratelimit/src/service_cmd || return
    echo "$version" >"$1/ratelimit.version"
}

build_tlspeer() {
    say "tlspeer: compiling test-support/tlspeer"
    (cd "$repo/test-support/tlspeer" && go build -ldflags "-s -w" -o "$1/tlspeer" . 2>&1) | tee -a "$log" >&2
    return "${PIPESTATUS[0]}"
}

for c in "${components[@]}"; do
    if [[ $c == tlspeer ]]; then
        stamp=$tlspeer_dir/stamp
        bin=$tlspeer_dir/bin
    else
        stamp=$cp_dir/stamps/$c
        bin=$cp_dir/bin
    fi
    if [[ -f $stamp ]]; then
        continue
    fi
    built_any=1
    tmp=$(mktemp -d "$bin/.tmp.XXXXXX")
    c_start=$(date +%s)
    say "$c: building (log: $log)"
    if ! "build_${c//-/_}" "$tmp"; then
        rm -rf "$tmp"
        say "$c: FAILED; see $log"
        exit 1
    fi
    mv -f "$tmp"/* "$bin"/
    rmdir "$tmp"
    { echo "built $(date -u +%FT%TZ) in $(($(date +%s) - c_start))s with $(go version)"; } >"$stamp"
    say "$c: done in $(($(date +%s) - c_start))s"
done

if ((built_any)); then
    du_h() { du -sh "$1" 2>/dev/null | cut -f1; }
    say "finished in $(($(date +%s) - start))s wall"
    say "disk: binaries $(du_h "$cp_dir/bin") + $(du_h "$tlspeer_dir/bin") (cache $(du_h "$cache_root"));" \
        "Go module cache $(du_h "$(go env GOMODCACHE)"); Go build cache $(du_h "$(go env GOCACHE)")"
fi
echo "CONTROLPLANE_BIN=$cp_dir/bin"
echo "TLSPEER_BIN=$tlspeer_dir/bin"
