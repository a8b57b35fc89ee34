#!/usr/bin/env bash
# Smoke-test a built control plane: etcd, kube-apiserver, kube-scheduler and kube-controller-manager
# on 127.0.0.1 with the flags from FLAGS.md, for about 20 s, then stop everything.
#
#   e2e/cluster/smoke.sh "$(e2e/cluster/build.sh)" [feature-gates]
#
# Leaves logs and credentials in a temp dir (printed) and exits non-zero on any failure.
set -euo pipefail

bin=${1:?usage: $0 BIN_DIR [FEATURE_GATES]}
gates=${2:-}
work=$(mktemp -d /tmp/gpu-dra-smoke.XXXXXX)
log() { echo "smoke: $*" >&2; }

pids=()
# Stop in reverse start order (etcd last), so the API server can finish its own shutdown.
stop_all() {
    local i pid n
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        pid=${pids[$i]}
        kill "$pid" 2>/dev/null || continue
        for ((n = 0; n < 100; n++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
}
trap stop_all EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
etcd_client=$(free_port) etcd_peer=$(free_port) api_port=$(free_port) sched_port=$(free_port) kcm_port=$(free_port)

# Credentials: a service-account signing key and a static admin token.
openssl genrsa -out "$work/sa.key" 2048 2>/dev/null
openssl rsa -in "$work/sa.key" -pubout -out "$work/sa.pub" 2>/dev/null
token=$(openssl rand -hex 16)
echo "${token},admin,admin,system:masters" >"$work/tokens.csv"

"$bin/etcd" --name=default --data-dir="$work/etcd" \
    --listen-client-urls="http://127.0.0.1:$etcd_client" --advertise-client-urls="http://127.0.0.1:$etcd_client" \
    --listen-peer-urls="http://127.0.0.1:$etcd_peer" --initial-advertise-peer-urls="http://127.0.0.1:$etcd_peer" \
    --initial-cluster="default=http://127.0.0.1:$etcd_peer" --unsafe-no-fsync \
    >"$work/etcd.log" 2>&1 &
pids+=($!)

"$bin/kube-apiserver" --etcd-servers="http://127.0.0.1:$etcd_client" \
    --bind-address=127.0.0.1 --secure-port="$api_port" --cert-dir="$work/pki" \
    --token-auth-file="$work/tokens.csv" --authorization-mode=RBAC \
    --service-account-issuer=https://kubernetes.default.svc \
    --service-account-key-file="$work/sa.pub" --service-account-signing-key-file="$work/sa.key" \
    --service-cluster-ip-range=10.0.0.0/24 --allow-privileged=true \
    --disable-admission-plugins=ServiceAccount --endpoint-reconciler-type=none \
    ${gates:+--feature-gates="$gates"} \
    >"$work/kube-apiserver.log" 2>&1 &
pids+=($!)

api="https://127.0.0.1:$api_port"
t0=$(date +%s)
until curl -fsk --max-time 2 -H "Authorization: Bearer $token" "$api/readyz" >/dev/null 2>&1; do
    if ! kill -0 "${pids[1]}" 2>/dev/null || (($(date +%s) - t0 > 60)); then
        log "kube-apiserver exited or not ready after 60 s; see $work/kube-apiserver.log"
        exit 1
    fi
    sleep 0.5
done
log "kube-apiserver ready after $(($(date +%s) - t0)) s"

cat >"$work/admin.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster: {server: "$api", certificate-authority: "$work/pki/apiserver.crt"}
users:
- name: admin
  user: {token: "$token"}
contexts:
- name: local
  context: {cluster: local, user: admin}
current-context: local
EOF

curl -fsS --cacert "$work/pki/apiserver.crt" -H "Authorization: Bearer $token" "$api/version"
echo
curl -fsS --cacert "$work/pki/apiserver.crt" -H "Authorization: Bearer $token" "$api/apis/resource.k8s.io/v1" |
    python3 -c 'import json, sys; print("resource.k8s.io/v1:", " ".join(sorted(r["name"] for r in json.load(sys.stdin)["resources"])))'

"$bin/kube-scheduler" --kubeconfig="$work/admin.kubeconfig" --leader-elect=false \
    --bind-address=127.0.0.1 --secure-port="$sched_port" ${gates:+--feature-gates="$gates"} \
    >"$work/kube-scheduler.log" 2>&1 &
pids+=($!)
"$bin/kube-controller-manager" --kubeconfig="$work/admin.kubeconfig" --leader-elect=false \
    --controllers=resourceclaim-controller,device-taint-eviction-controller,garbage-collector-controller,namespace-controller \
    --service-account-private-key-file="$work/sa.key" \
    --bind-address=127.0.0.1 --secure-port="$kcm_port" ${gates:+--feature-gates="$gates"} \
    >"$work/kube-controller-manager.log" 2>&1 &
pids+=($!)

sleep 20
status=0
for name in kube-scheduler:$sched_port kube-controller-manager:$kcm_port; do
    if out=$(curl -fsk --max-time 2 "https://127.0.0.1:${name#*:}/healthz"); then
        log "${name%:*} /healthz: $out"
    else
        log "${name%:*} /healthz failed"
        status=1
    fi
done
for i in "${!pids[@]}"; do
    kill -0 "${pids[$i]}" 2>/dev/null || { log "process ${pids[$i]} exited early"; status=1; }
done
if grep -E '^F[0-9]{4}|panic:' "$work"/*.log; then
    status=1
fi
log "logs in $work"
exit "$status"
