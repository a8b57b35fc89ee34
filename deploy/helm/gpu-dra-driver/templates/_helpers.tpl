{{/*
Names, labels and the pieces several templates share.
*/}}

{{/* The release's base name, at most 40 characters so that suffixes keep names under 63. */}}
{{- define "gpu-dra-driver.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "gpu-dra-driver.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels every object carries. */}}
{{- define "gpu-dra-driver.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "gpu-dra-driver.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of one component: call with (dict "root" $ "component" "controller"). */}}
{{- define "gpu-dra-driver.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gpu-dra-driver.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "gpu-dra-driver.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- /* The MPS daemon pods' image: mpsDaemons.image, or the plugin's own. */ -}}
{{- define "gpu-dra-driver.mpsImage" -}}
{{- .Values.mpsDaemons.image | default (include "gpu-dra-driver.image" .) -}}
{{- end -}}

{{- define "gpu-dra-driver.pluginServiceAccount" -}}
{{- printf "%s-kubelet-plugin" (include "gpu-dra-driver.fullname" .) -}}
{{- end -}}

{{- define "gpu-dra-driver.controllerServiceAccount" -}}
{{- printf "%s-controller" (include "gpu-dra-driver.fullname" .) -}}
{{- end -}}

{{- define "gpu-dra-driver.webhookService" -}}
{{- printf "%s-webhook" (include "gpu-dra-driver.fullname" .) -}}
{{- end -}}

{{/* The plugin's own directory on the host (and in its container). */}}
{{- define "gpu-dra-driver.pluginDir" -}}
{{- printf "%s/%s" (trimSuffix "/" .Values.hostPaths.pluginsDir) .Values.driverName -}}
{{- end -}}

{{- define "gpu-dra-driver.fakeGpus" -}}
{{- if hasPrefix "fake:" .Values.gpus -}}true{{- end -}}
{{- end -}}

{{/*
The strategies that get a plugin DaemonSet: the default one always, the other one too when a node
label may pick it. Returns a YAML list of {strategy, set, match}: `set` names the DaemonSet (and
is in its immutable selector, so it never changes for the default DaemonSet), `match` is the node
affinity expression that keeps the DaemonSets on disjoint nodes (none without a node label).
*/}}
{{- define "gpu-dra-driver.pluginSets" -}}
{{- $default := .Values.sharing.strategy -}}
{{- $other := ternary "timeslicing" "mps" (eq $default "mps") -}}
{{- $label := .Values.sharing.nodeLabel -}}
- strategy: {{ $default }}
  set: default
  {{- if $label }}
  match: {key: {{ $label | quote }}, operator: NotIn, values: [{{ $other | quote }}]}
  {{- end }}
{{- if $label }}
- strategy: {{ $other }}
  set: {{ $other }}
  match: {key: {{ $label | quote }}, operator: In, values: [{{ $other | quote }}]}
{{- end }}
{{- end -}}

{{/*
The plugin pods' affinity for one plugin set: the user's affinity, whose required node terms (or,
with real GPUs and none given, gpuNodeSelectorTerms) each get the set's expression ANDed in.
Call with (dict "root" $ "match" <expression or nil>).
*/}}
{{- define "gpu-dra-driver.pluginAffinity" -}}
{{- $values := .root.Values.kubeletPlugin -}}
{{- $affinity := deepCopy (default (dict) $values.affinity) -}}
{{- $nodeAffinity := default (dict) $affinity.nodeAffinity -}}
{{- $required := default (dict) (get $nodeAffinity "requiredDuringSchedulingIgnoredDuringExecution") -}}
{{- $terms := default (list) (get $required "nodeSelectorTerms") -}}
{{- if and (not $affinity.nodeAffinity) (not (include "gpu-dra-driver.fakeGpus" .root)) -}}
{{- $terms = deepCopy (default (list) $values.gpuNodeSelectorTerms) -}}
{{- end -}}
{{- if .match -}}
{{- if not $terms -}}
{{- $terms = list (dict) -}}
{{- end -}}
{{- $merged := list -}}
{{- range $terms -}}
{{- $term := deepCopy . -}}
{{- $_ := set $term "matchExpressions" (append (default (list) $term.matchExpressions) $.match) -}}
{{- $merged = append $merged $term -}}
{{- end -}}
{{- $terms = $merged -}}
{{- end -}}
{{- if $terms -}}
{{- $_ := set $required "nodeSelectorTerms" $terms -}}
{{- $_ := set $nodeAffinity "requiredDuringSchedulingIgnoredDuringExecution" $required -}}
{{- $_ := set $affinity "nodeAffinity" $nodeAffinity -}}
{{- end -}}
{{- if $affinity -}}
{{- toYaml $affinity -}}
{{- end -}}
{{- end -}}

{{/* The Secret holding the webhook's serving certificate (tls.crt, tls.key). */}}
{{- define "gpu-dra-driver.webhookSecret" -}}
{{- if eq .Values.webhook.certificate.source "secret" -}}
{{- .Values.webhook.certificate.secretName -}}
{{- else -}}
{{- printf "%s-webhook-tls" (include "gpu-dra-driver.fullname" .) -}}
{{- end -}}
{{- end -}}
