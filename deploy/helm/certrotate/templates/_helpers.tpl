{{/*
Object names are fixed, as in the kustomize overlays: the code and deploy/policy name the
ServiceAccount `certrotate`, and one install serves one namespace.
*/}}

{{/*
The control plane's namespace: `namespace`, or the release's.
*/}}
{{- define "certrotate.namespace" -}}
{{- default .Release.Namespace .Values.namespace -}}
{{- end }}

{{/*
The name of a cluster-scoped object (ClusterRole, ClusterRoleBinding): `certrotate.NAMESPACE`,
so installs in two namespaces do not collide.
*/}}
{{- define "certrotate.clusterName" -}}
{{- printf "certrotate.%s" (include "certrotate.namespace" .) -}}
{{- end }}

{{/*
chart-version, for the helm.sh/chart label.
*/}}
{{- define "certrotate.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end }}

{{/*
Helm's labels, on every object's metadata (not on Pod templates: the overlays' Pod labels
are kept as they are). certrotate-cli/tests/helm_chart.rs removes exactly these four
before it compares the chart with the overlays.
*/}}
{{- define "certrotate.labels" -}}
helm.sh/chart: {{ include "certrotate.chart" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}

{{/*
The image: repository:tag, the tag defaulting to the chart's appVersion.
*/}}
{{- define "certrotate.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end }}

{{/*
What every Pod spec of a Job or CronJob holds besides its containers.
*/}}
{{- define "certrotate.podSpec" -}}
serviceAccountName: certrotate
restartPolicy: Never
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
One certrotate container. Takes a dict:
  root:   the chart's context
  name:   the container's name
  args:   its command line (the image's entrypoint is certrotate)
  events: true for a command that records Events (rotate, renew): POD_NAME names the
          reporting instance
  push:   true for a command that pushes metrics: CERTROTATE_PUSHGATEWAY from the
          ConfigMap, optional (no key, no push)
*/}}
{{- define "certrotate.container" -}}
name: {{ .name }}
image: {{ include "certrotate.image" .root }}
{{- with .root.Values.image.pullPolicy }}
imagePullPolicy: {{ . }}
{{- end }}
args:
  {{- $args := .args }}
  {{- if .root.Values.gatewayNamespaceMode }}
  {{- $args = concat .args (list "--profile" "envoy-gateway-gateway-namespace") }}
  {{- end }}
  {{- toYaml $args | nindent 2 }}
env:
  - name: POD_NAMESPACE
    valueFrom:
      fieldRef:
        fieldPath: metadata.namespace
  {{- if .events }}
  - name: POD_NAME
    valueFrom:
      fieldRef:
        fieldPath: metadata.name
  {{- end }}
  {{- if .push }}
  - name: CERTROTATE_PUSHGATEWAY
    valueFrom:
      configMapKeyRef:
        name: certrotate
        key: pushgateway
        optional: true
  {{- end }}
securityContext:
  {{- toYaml .root.Values.securityContext | nindent 2 }}
resources:
  {{- toYaml .root.Values.resources | nindent 2 }}
{{- end }}

{{/*
The rotation Job of deploy/overlays/job, and, with hook annotations, of
deploy/overlays/helm-hook. Takes a dict:
  root:        the chart's context
  name:        the Job's name
  values:      its values (backoffLimit, activeDeadlineSeconds, ttlSecondsAfterFinished, args)
  annotations: its annotations, or nothing
*/}}
{{- define "certrotate.job" -}}
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ .name }}
  namespace: {{ include "certrotate.namespace" .root }}
  labels:
    {{- include "certrotate.labels" .root | nindent 4 }}
    app.kubernetes.io/name: certrotate
    app.kubernetes.io/component: rotate
  {{- with .annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  backoffLimit: {{ .values.backoffLimit }}
  activeDeadlineSeconds: {{ .values.activeDeadlineSeconds }}
  ttlSecondsAfterFinished: {{ .values.ttlSecondsAfterFinished }}
  template:
    metadata:
      labels:
        app.kubernetes.io/name: certrotate
        app.kubernetes.io/component: rotate
    spec:
      {{- include "certrotate.podSpec" .root | nindent 6 }}
      containers:
        - {{- include "certrotate.container" (dict "root" .root "name" "certrotate" "args" .values.args "events" true "push" true) | nindent 10 }}
{{- end }}
