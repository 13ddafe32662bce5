#!/usr/bin/env bash
# The tools that render and validate infra/k8s, built once with Go from the module proxy and kept
# under $CXR_CACHE_DIR (a later run reuses them): kustomize, kubeconform, and JSON schemas for
# kubeconform made offline from the Kubernetes OpenAPI document and KEDA's CRDs, which ship in the
# source of their Go modules. Prints KUSTOMIZE=…, KUBECONFORM=…, K8S_SCHEMAS=… lines to source.
#   bash infra/k8s/tools.sh
set -euo pipefail
# shellcheck source=infra/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
export PATH="$PATH:/usr/local/go/bin"

KUSTOMIZE_VERSION=v5.8.1
KUBECONFORM_VERSION=v0.7.0
# The schemas: the Kubernetes API the manifests are checked against, and the KEDA release whose CRDs
# (ScaledObject, TriggerAuthentication) they use.
KUBERNETES_VERSION=v1.34.4
KEDA_VERSION=v2.21.0

_kustomize_build() { go_install_to "$1" kustomize "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION"; }
_kubeconform_build() { go_install_to "$1" kubeconform "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION"; }

# module_dir MODULE@VERSION: the module's source in the Go module cache (downloaded if missing).
module_dir() {
  (cd / && go mod download -json "$1") | node -e 'let s="";process.stdin.on("data",(d)=>(s+=d)).on("end",()=>{const m=JSON.parse(s);if(m.Error){console.error(m.Error);process.exit(1)}console.log(m.Dir)})'
}

kustomize="$(go_build_cached kustomize "$KUSTOMIZE_VERSION" _kustomize_build)"
kubeconform="$(go_build_cached kubeconform "$KUBECONFORM_VERSION" _kubeconform_build)"

converter="$INFRA_DIR/k8s/openapi-to-jsonschema.ts"
converter_hash="$(sha256sum "$converter" | cut -c1-12)"
schemas="$CXR_CACHE_DIR/k8s-schemas/kubernetes-$KUBERNETES_VERSION-keda-$KEDA_VERSION-$converter_hash"
if [[ ! -f "$schemas/.complete" ]]; then
  mkdir -p "$CXR_CACHE_DIR/k8s-schemas"
  (
    flock 9
    if [[ ! -f "$schemas/.complete" ]]; then
      start=$SECONDS
      log "making Kubernetes $KUBERNETES_VERSION and KEDA $KEDA_VERSION schemas into $schemas (first time only)" >&2
      k8s_dir="$(module_dir "k8s.io/kubernetes@$KUBERNETES_VERSION")"
      keda_dir="$(module_dir "github.com/kedacore/keda/v2@$KEDA_VERSION")"
      tmp="$schemas.tmp.$$"
      rm -rf "$tmp"
      "$REPO_DIR/node_modules/.bin/tsx" "$converter" "$tmp" "$k8s_dir/api/openapi-spec/swagger.json" \
        "$keda_dir"/config/crd/bases/*.yaml >&2
      touch "$tmp/.complete"
      rm -rf "$schemas"
      mv "$tmp" "$schemas"
      log "made the schemas in $((SECONDS - start))s" >&2
    fi
  ) 9>"$CXR_CACHE_DIR/k8s-schemas/.lock"
fi

echo "KUSTOMIZE=$kustomize"
echo "KUBECONFORM=$kubeconform"
echo "K8S_SCHEMAS=$schemas"
